"""custom_layers.losses: Keras' cross-entropy values, the gradient p − t
written out, drop-ins in compile, configs that cross over."""

import json

import keras
import numpy as np
import pytest

import custom_layers
from custom_layers import losses
from custom_layers.backends import kernels
from custom_layers.ops.cross_entropy import cross_entropy
from custom_layers.testing import check_gradients

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((6, 4)) * 2
LABELS = np.array([0, 3, 1, 1, 2, 3])


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _gradient(function, x):
    """dE/dx of a scalar function by the backend's autodiff."""
    return kernels("test").autodiff_gradients(function, [x])[0]


@pytest.mark.parametrize("name", ["SparseCategoricalCrossentropy", "CategoricalCrossentropy"])
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
def test_value_and_gradient_equal_keras(name, from_logits):
    targets = LABELS if name.startswith("Sparse") else np.eye(4)[LABELS]
    outputs = LOGITS if from_logits else _softmax(LOGITS)
    outputs = keras.ops.convert_to_tensor(outputs, "float32")
    values, gradients = [], []
    for loss in (getattr(losses, name)(from_logits=from_logits),
                 getattr(keras.losses, name)(from_logits=from_logits)):
        values.append(loss(targets, outputs))
        gradients.append(_gradient(lambda o, loss=loss: loss(targets, o), outputs))
    np.testing.assert_allclose(values[0], values[1], rtol=1e-6)
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-5, atol=1e-7)
    if from_logits:  # softmax and cross-entropy fused: (p − t)/N
        expected = (_softmax(LOGITS) - np.eye(4)[LABELS]) / len(LABELS)
        np.testing.assert_allclose(gradients[0], expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
def test_the_written_out_gradient_matches_autodiff_and_finite_differences(from_logits):
    targets = keras.ops.convert_to_tensor(np.eye(4)[LABELS], "float64")
    ops = keras.ops

    def reference(outputs):
        if from_logits:
            return -ops.sum(targets * ops.log_softmax(outputs), axis=-1)
        q = ops.clip(outputs / ops.sum(outputs, -1, keepdims=True), 1e-7, 1 - 1e-7)
        return -ops.sum(targets * ops.log(q), axis=-1)

    # -log p curves as 1/p²: the finite differences' fixed step resolves it to
    # ~1e-5 on probabilities of 0.1-0.5, so they get 1e-4 there (autodiff: 1e-6).
    outputs = LOGITS if from_logits else _softmax(0.3 * LOGITS)
    check_gradients(lambda o: cross_entropy(targets, o, from_logits), reference,
                    [keras.ops.convert_to_tensor(outputs, "float64")], rtol=1e-6, numeric=True,
                    numeric_rtol=1e-5 if from_logits else 1e-4)


def test_a_model_compiles_and_trains_with_the_custom_loss_and_saves(tmp_path):
    model = keras.Sequential([keras.Input((4,)), custom_layers.Dense(3),
                              custom_layers.Activation("softmax")])
    model.compile("adam", loss=losses.SparseCategoricalCrossentropy())
    x = RNG.standard_normal((16, 4)).astype("float32")
    history = model.fit(x, RNG.integers(0, 3, 16), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "loss.keras")
    assert type(keras.saving.load_model(tmp_path / "loss.keras").loss) is \
        losses.SparseCategoricalCrossentropy


@pytest.mark.parametrize("name", ["SparseCategoricalCrossentropy", "CategoricalCrossentropy"])
def test_configs_cross_over(name):
    keras_config = getattr(keras.losses, name)(from_logits=True).get_config()
    ours = getattr(losses, name).from_config(keras_config)
    assert ours.from_logits and json.loads(json.dumps(ours.get_config())) == keras_config
    assert getattr(keras.losses, name).from_config(ours.get_config()).get_config() == keras_config


def test_options_without_a_derived_backward_are_refused():
    with pytest.raises(NotImplementedError, match="does not implement ignored classes"):
        losses.SparseCategoricalCrossentropy(ignore_class=0)
    with pytest.raises(NotImplementedError, match="label smoothing"):
        losses.CategoricalCrossentropy(label_smoothing=0.1)


def test_get_by_keras_name_or_class_name_and_an_unknown_name_lists_ours():
    assert isinstance(losses.get("sparse_categorical_crossentropy"),
                      losses.SparseCategoricalCrossentropy)
    assert isinstance(losses.get("CategoricalCrossentropy"), losses.CategoricalCrossentropy)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert losses.get(loss) is loss
    with pytest.raises(ValueError, match="Unknown loss 'hinge': custom_layers derives the backward "
                                         "pass of sparse_categorical_crossentropy, "
                                         "categorical_crossentropy"):
        losses.get("hinge")
