"""LoRA, quantization and sparse inputs on Dense and the convolutions:
Keras' API and behaviour (the gradients' checks are in test_ops.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import custom_layers


@pytest.mark.parametrize("layer, shape", [
    (lambda: custom_layers.Dense(4), (None, 3)),
    (lambda: custom_layers.Conv1D(4, 3), (None, 7, 2)),
], ids=["dense", "conv1d"])
def test_enable_lora_freezes_the_kernel_trains_the_factors_and_saves_them_merged(layer, shape, tmp_path):
    layer = layer()
    layer.build(shape)
    layer.enable_lora(2)
    assert [w.name for w in layer.trainable_weights] == ["bias", "lora_kernel_a", "lora_kernel_b"]
    assert [w.name for w in layer.non_trainable_weights] == ["kernel"]
    assert layer.lora_kernel_a.dtype == layer.lora_kernel_b.dtype == "float32"
    layer.lora_kernel_b.assign(np.ones(layer.lora_kernel_b.shape))  # B starts at 0: move it
    np.testing.assert_allclose(
        layer.kernel,
        layer._kernel + np.reshape(np.reshape(layer.lora_kernel_a, (-1, 2)) @ layer.lora_kernel_b,
                                   layer._kernel.shape), rtol=1e-6)

    model = keras.Sequential([keras.Input(shape[1:]), layer])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).standard_normal((8, *shape[1:])).astype("float32")
    kernel_before = layer._kernel.numpy().copy()
    model.fit(x, np.zeros(model(x).shape), epochs=1, verbose=0)
    np.testing.assert_array_equal(layer._kernel.numpy(), kernel_before)  # frozen

    model.save(tmp_path / "lora.keras")
    reloaded = keras.saving.load_model(tmp_path / "lora.keras")
    np.testing.assert_allclose(reloaded(x), model(x), rtol=1e-5, atol=1e-6)
    revived = reloaded.layers[0]
    assert revived.lora_enabled and not np.any(revived.lora_kernel_b.numpy())  # merged into W


def test_enable_lora_refuses_what_keras_refuses():
    with pytest.raises(ValueError, match="Cannot enable lora on a layer that isn't yet built"):
        custom_layers.Dense(2).enable_lora(2)
    layer = custom_layers.Dense(2)
    layer.build((None, 3))
    layer.enable_lora(1)
    with pytest.raises(ValueError, match="lora is already enabled"):
        layer.enable_lora(1)
    constrained = custom_layers.Conv2D(2, 2, kernel_constraint="non_neg")
    constrained.build((None, 4, 4, 1))
    with pytest.raises(ValueError, match="Lora is incompatible with kernel constraints"):
        constrained.enable_lora(2)


def test_a_lora_model_converts_from_keras_with_its_factors():
    inputs = keras.Input((3,))
    original = keras.Model(inputs, keras.layers.Dense(4, lora_rank=2)(inputs))
    original.layers[1].lora_kernel_b.assign(np.full((2, 4), 0.5))
    converted = custom_layers.convert(original)
    assert converted.layers[1].lora_enabled
    x = tf.constant(np.random.default_rng(2).standard_normal((5, 3)), tf.float32)
    np.testing.assert_allclose(converted(x), original(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer, shape", [(lambda: custom_layers.Dense(2), (None, 3)),
                                          (lambda: custom_layers.Conv2D(2, 3), (None, 5, 5, 1))],
                         ids=["dense", "conv2d"])
def test_quantization_is_refused_by_name(layer, shape):
    layer = layer()
    layer.build(shape)
    with pytest.raises(NotImplementedError, match=r"does not support quantization \(quantize\('int8'\)\)"):
        layer.quantize("int8")


def test_a_sparse_input_gives_keras_outputs_and_a_sparse_kernel_gradient():
    x = np.random.default_rng(3).uniform(size=(8, 6)).astype("float32")
    sparse = tf.sparse.from_dense(x * (x > 0.7))
    custom, builtin = custom_layers.Dense(3), keras.layers.Dense(3)
    custom.build((None, 6))
    builtin.build((None, 6))
    custom.set_weights(builtin.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        outputs = [custom(sparse), builtin(sparse)]
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-6, atol=1e-6)
    gradient = tape.gradient(outputs[0], custom.kernel)
    assert isinstance(gradient, tf.IndexedSlices)
    np.testing.assert_allclose(tf.convert_to_tensor(gradient),
                               tf.convert_to_tensor(tape.gradient(outputs[1], builtin.kernel)),
                               rtol=1e-6, atol=1e-6)
