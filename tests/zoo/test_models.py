"""The model registry and builders: names, overrides, shapes, custom/keras parity."""

import numpy as np
import pytest
import keras

import custom_layers
from zoo import cnn1d, create_model, deep_cnn, deep_mlp, lenet5, list_models, resnet
from zoo.models import model_arguments

PAPER_PRESETS = ["bn_paper_mlp", "bn_paper_baseline_mlp", "dropout_paper_mlp", "mnist1d_paper_cnn"]


def test_registry_lists_families_and_presets():
    names = list_models()
    for expected in ["deep_mlp", "deep_cnn", "cnn1d", "lenet5", "resnet", "resnet20", *PAPER_PRESETS]:
        assert expected in names
    assert names == sorted(names)


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ValueError, match="Unknown model 'resnet9000'.*deep_cnn"):
        create_model("resnet9000")


def test_unknown_override_names_the_valid_ones():
    with pytest.raises(ValueError, match="Unknown argument.*depth.*weight_decay"):
        create_model("deep_cnn", depth=3)


def test_presets_show_their_own_defaults_and_accept_overrides():
    arguments = model_arguments("bn_paper_mlp")
    assert arguments["hidden_units"] == (100, 100, 100)
    assert arguments["activation"] == "sigmoid" and arguments["batch_norm"] is True
    model = create_model("bn_paper_mlp", batch_norm=False, input_shape=(40, 1))
    assert not any("batch_norm" in layer.name for layer in model.layers)
    for name in PAPER_PRESETS:
        assert "paper" in create_model(name).name or name in create_model(name).name


def test_bn_paper_mlp_structure():
    model = create_model("bn_paper_mlp")
    dense = [layer for layer in model.layers if isinstance(layer, custom_layers.Dense)]
    assert [layer.units for layer in dense] == [100, 100, 100, 10]
    assert sum(isinstance(layer, custom_layers.BatchNormalization) for layer in model.layers) == 3


def test_dropout_paper_mlp_has_input_and_hidden_dropout_and_max_norm():
    model = create_model("dropout_paper_mlp")
    rates = [layer.rate for layer in model.layers if isinstance(layer, custom_layers.Dropout)]
    assert rates == [0.2, 0.5, 0.5, 0.5]
    hidden = model.get_layer("dense_1")
    assert isinstance(hidden.kernel_constraint, keras.constraints.MaxNorm)


@pytest.mark.parametrize("input_shape", [(28, 28, 1), (32, 32, 3), (8, 8, 1)])
def test_deep_cnn_builds_for_image_shapes(input_shape):
    model = deep_cnn(input_shape=input_shape, num_classes=7, filters=(8, 16, 16))
    assert model.output_shape == (None, 7)
    out = model.predict(np.zeros((2, *input_shape), "float32"), verbose=0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("builder, input_shape", [
    (deep_mlp, (28, 28, 1)), (deep_mlp, (40,)), (cnn1d, (40, 1)), (cnn1d, (17, 3)),
])
def test_builders_at_several_shapes(builder, input_shape):
    model = builder(input_shape=input_shape, num_classes=3)
    assert model.output_shape == (None, 3)
    assert model.predict(np.zeros((2, *input_shape), "float32"), verbose=0).shape == (2, 3)


@pytest.mark.parametrize("builder, input_shape, arguments", [
    (deep_cnn, (12, 12, 1), dict(filters=(8, 8), dropout_rate=0.5)),
    (deep_mlp, (20,), dict(hidden_units=(16, 16), batch_norm=True, dropout_rate=0.3)),
    (cnn1d, (40, 1), dict(filters=(8, 8), dropout_rate=0.2)),
    (lenet5, (16, 16, 1), dict(batch_norm=True, dropout_rate=0.2)),
    (lenet5, (16, 16, 1), dict(activation="tanh", pooling="average")),
    (resnet, (12, 12, 3), dict(depth=8, filters=(4, 8, 8), dropout_rate=0.1)),
])
def test_custom_and_keras_variants_agree_with_shared_weights(builder, input_shape, arguments):
    custom = builder(input_shape=input_shape, layers="custom", **arguments)
    builtin = builder(input_shape=input_shape, layers="keras", **arguments)
    assert [type(layer).__name__ for layer in custom.layers] == \
        [type(layer).__name__ for layer in builtin.layers]
    assert any(type(layer).__module__.startswith("custom_layers") for layer in custom.layers)
    assert not any(type(layer).__module__.startswith("custom_layers") for layer in builtin.layers)
    builtin.set_weights(custom.get_weights())
    x = np.random.default_rng(0).random((6, *input_shape)).astype("float32")
    np.testing.assert_allclose(custom.predict(x, verbose=0), builtin.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_weight_decay_is_l2_on_kernels():
    model = deep_mlp(input_shape=(4,), hidden_units=(3,), weight_decay=0.01)
    kernels = [layer.kernel for layer in model.layers if hasattr(layer, "kernel")]
    expected = sum(0.01 * float(np.sum(np.square(k.numpy()))) for k in kernels)
    np.testing.assert_allclose(sum(float(loss) for loss in model.losses), expected, rtol=1e-5)
    assert deep_mlp(input_shape=(4,), weight_decay=0.0).losses == []


def test_the_classic_networks_have_the_papers_shapes():
    lenet = create_model("lenet5")
    assert lenet.count_params() == 61_706  # LeNet-5 on 28×28 digits
    assert [layer.filters for layer in lenet.layers if hasattr(layer, "filters")] == [6, 16]
    resnet20 = create_model("resnet20")
    convolutions = [layer for layer in resnet20.layers if isinstance(layer, custom_layers.Conv2D)]
    shortcuts = [layer for layer in convolutions if "shortcut" in layer.name]
    assert len(convolutions) - len(shortcuts) + 1 == 20  # 6n + 2 layers with weights, n = 3
    assert len(shortcuts) == 2 and all(layer.kernel_size == (1, 1) for layer in shortcuts)
    assert resnet20.get_layer("stage3_block3_add").output.shape[1:] == (7, 7, 64)
    assert create_model("resnet", depth=32).name == "resnet32"
    for depth in (21, 2):
        with pytest.raises(ValueError, match="depth"):
            create_model("resnet", depth=depth)


def test_conv_nets_start_he_with_batch_norm_in_the_head_the_rest_glorot():
    model = deep_cnn(input_shape=(8, 8, 1), filters=(4,))
    assert type(model.get_layer("conv_1_1").kernel_initializer).__name__ == "HeNormal"
    assert type(model.get_layer("dense_1").kernel_initializer).__name__ == "HeNormal"
    assert type(model.get_layer("classifier").kernel_initializer).__name__ == "GlorotUniform"
    assert not model.get_layer("dense_1").use_bias  # batch norm in the head: its β is the bias
    assert isinstance(model.get_layer("dense_batch_norm_1"), custom_layers.BatchNormalization)
    assert "dense_batch_norm_1" not in [layer.name for layer in deep_cnn(
        input_shape=(8, 8, 1), filters=(4,), head_batch_norm=False).layers]
    sigmoid = create_model("bn_paper_mlp")
    assert type(sigmoid.get_layer("dense_1").kernel_initializer).__name__ == "GlorotUniform"
    relu_mlp = create_model("deep_mlp")  # measured best with Glorot (benchmarks/initialisation.py)
    assert type(relu_mlp.get_layer("dense_1").kernel_initializer).__name__ == "GlorotUniform"
    chosen = deep_cnn(input_shape=(8, 8, 1), filters=(4,), kernel_initializer="glorot_uniform")
    assert type(chosen.get_layer("conv_1_1").kernel_initializer).__name__ == "GlorotUniform"
    with pytest.raises(ValueError, match="initializer"):
        deep_cnn(kernel_initializer="no_such_initializer")
