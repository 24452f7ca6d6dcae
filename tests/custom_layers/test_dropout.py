"""Dropout: the same mask as keras.layers.Dropout for the same seed, and the
statistics of inverted dropout (rate dropped, 1/(1 − rate) scaling, identity at
inference and at rate 0)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import custom_layers


@pytest.mark.parametrize("seed", [0, 1234])
@pytest.mark.parametrize("noise_shape", [None, (None, 1, 5)], ids=["full", "broadcast"])
def test_same_seed_draws_the_same_mask_as_keras(seed, noise_shape):
    x = tf.constant(np.random.default_rng(seed).uniform(1.0, 2.0, (4, 3, 5)), tf.float32)
    custom = custom_layers.Dropout(0.4, noise_shape=noise_shape, seed=seed)
    builtin = keras.layers.Dropout(0.4, noise_shape=noise_shape, seed=seed)
    outputs = []
    for _ in range(3):  # successive calls advance both seed generators alike
        expected = builtin(x, training=True)
        np.testing.assert_array_equal(custom(x, training=True), expected)
        outputs.append(expected.numpy())
    assert not np.array_equal(outputs[0], outputs[1])


def test_same_seed_draws_the_same_mask_inside_tf_function():
    x = tf.ones((6, 7))
    custom, builtin = custom_layers.Dropout(0.5, seed=9), keras.layers.Dropout(0.5, seed=9)
    custom_step = tf.function(lambda x: custom(x, training=True))
    builtin_step = tf.function(lambda x: builtin(x, training=True))
    for _ in range(2):
        np.testing.assert_array_equal(custom_step(x), builtin_step(x))


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_drops_a_fraction_rate_and_scales_the_rest(rate):
    x = tf.ones((200, 500))
    y = custom_layers.Dropout(rate, seed=5)(x, training=True).numpy()
    dropped = y == 0
    # 10⁵ Bernoulli(rate) draws: the standard deviation of the fraction is < 0.002.
    assert abs(dropped.mean() - rate) < 0.01
    np.testing.assert_allclose(y[~dropped], 1.0 / (1.0 - rate), rtol=1e-6)


def test_gradient_is_the_scaled_mask():
    x = tf.constant(np.random.default_rng(0).uniform(1.0, 2.0, (8, 9)), tf.float32)
    layer = custom_layers.Dropout(0.3, seed=2)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    np.testing.assert_allclose(tape.gradient(y, x), y / x, rtol=1e-6)


def test_noise_shape_broadcasts_the_mask():
    layer = custom_layers.Dropout(0.5, noise_shape=(None, 1, 6), seed=3)
    y = layer(tf.ones((4, 5, 6)), training=True)
    assert y.shape == (4, 5, 6)
    np.testing.assert_array_equal(y, tf.broadcast_to(y[:, :1], y.shape))


@pytest.mark.parametrize("rate, training", [(0.5, False), (0.5, None), (0.0, True)])
def test_identity_at_inference_and_at_rate_zero(rate, training):
    x = tf.constant(np.random.default_rng(1).standard_normal((5, 6)), tf.float32)
    layer = custom_layers.Dropout(rate, seed=0)
    y = layer(x) if training is None else layer(x, training=training)
    np.testing.assert_array_equal(y, x)


def test_rate_one_drops_every_unit_as_keras_does():
    layer = custom_layers.Dropout(1.0, seed=1)
    x = tf.ones((2, 3))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    np.testing.assert_array_equal(y, np.zeros((2, 3)))
    np.testing.assert_array_equal(tape.gradient(y, x), np.zeros((2, 3)))
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_stateless_layers_are_built_at_construction_unless_a_subclass_builds():
    assert custom_layers.Dropout(0.5).built and custom_layers.MaxPooling2D().built

    class Noisy(custom_layers.Dropout):
        def build(self, input_shape):
            self.scale = self.add_weight(shape=(), initializer="ones", trainable=False)

    layer = Noisy(0.5)
    assert not layer.built
    layer(tf.ones((2, 3)))
    assert layer.built and len(layer.weights) == 1
