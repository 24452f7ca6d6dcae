"""custom_layers.convert: a Keras model with its covered layers swapped for
their custom twins computes the same outputs and gradients."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import custom_layers


def keras_model():
    """A functional CNN with a nested Sequential block and layers convert() does not cover."""
    block = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.3)],
                             name="block")
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Rescaling(0.5)(x)
    x = keras.layers.Flatten()(x)
    x = block(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs)


def covered(model):
    found = []
    for layer in model.layers:
        found += covered(layer) if isinstance(layer, keras.Model) else [layer]
    return [layer for layer in found if type(layer).__name__ in custom_layers.layers.__all__]


def test_a_converted_model_computes_the_same_outputs_and_gradients_with_custom_layers():
    original = keras_model()
    with pytest.warns(custom_layers.UncoveredLayersWarning,
                      match=r"kept 1 layer\(s\) without a custom twin: rescaling \(Rescaling\)"):
        converted = custom_layers.convert(original)
    assert converted.kept_layers == ["rescaling (Rescaling)"]
    assert len(converted.converted_layers) == 8
    assert all(type(layer).__module__.startswith("custom_layers") for layer in covered(converted))
    assert all(type(layer).__module__.startswith("keras") for layer in covered(original))
    x = tf.constant(np.random.default_rng(0).standard_normal((4, 6, 6, 2)), tf.float32)
    np.testing.assert_allclose(converted(x, training=False), original(x, training=False),
                               rtol=1e-5, atol=1e-6)
    gradients = []
    for model in (original, converted):  # inference mode: dropout off, moving statistics
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x, training=False) * tf.range(1.0, 4.0))
        gradients.append(tape.gradient(loss, model.trainable_weights))
    assert len(gradients[1]) == len(gradients[0]) == 7
    for actual, expected in zip(*gradients):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-6)


def test_a_sequential_model_converts_and_round_trips_through_a_keras_file(tmp_path):
    original = keras.Sequential([keras.Input((5, 3)), keras.layers.Conv1D(4, 3),
                                 keras.layers.MaxPooling1D(), keras.layers.Dense(2)])
    converted = custom_layers.convert(original)
    assert converted.kept_layers == []
    converted.save(tmp_path / "converted.keras")
    reloaded = keras.saving.load_model(tmp_path / "converted.keras")
    x = np.random.default_rng(1).standard_normal((2, 5, 3)).astype("float32")
    np.testing.assert_allclose(reloaded(x), original(x), rtol=1e-5, atol=1e-6)
    assert type(reloaded.layers[0]) is custom_layers.Conv1D
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its layers are ours already: nothing kept, no warning
        again = custom_layers.convert(reloaded)
    assert again.kept_layers == again.converted_layers == []


def test_an_activation_without_a_derived_backward_is_kept():
    original = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                                 keras.layers.Activation("hard_silu")])
    with pytest.warns(custom_layers.UncoveredLayersWarning, match="activation"):
        converted = custom_layers.convert(original)
    assert type(converted.layers[-1]) is keras.layers.Activation
    assert type(converted.layers[0]) is custom_layers.Dense


def test_subclassed_models_and_non_models_are_refused():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs)

    model = Subclassed()
    model(tf.zeros((1, 3)))
    with pytest.raises(ValueError, match="needs a Sequential or functional model; .* is a "
                                         "subclassed model \\(Subclassed\\)"):
        custom_layers.convert(model)
    with pytest.raises(TypeError, match="convert\\(\\) takes a keras.Model; received Dense"):
        custom_layers.convert(keras.layers.Dense(2))
