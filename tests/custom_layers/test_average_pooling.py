"""Global average pooling with a mask: the mean over the unmasked steps, as
Keras computes it, and its gradient shared among those steps only."""

import keras
import numpy as np
import tensorflow as tf

import custom_layers


def test_masked_steps_are_left_out_of_the_mean_and_of_the_gradient():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, 5, 3)), tf.float32)
    mask = tf.constant([[True, True, False, False, False], [True, True, True, True, False]])
    outputs, gradients = [], []
    for layer in (custom_layers.GlobalAveragePooling1D(), keras.layers.GlobalAveragePooling1D()):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, mask=mask)
            energy = tf.reduce_sum(y * tf.range(1.0, 4.0))
        outputs.append(y)
        gradients.append(tape.gradient(energy, x))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-6)
    np.testing.assert_allclose(outputs[0][0], x.numpy()[0, :2].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-6)
    assert not np.any(gradients[0].numpy()[0, 2:])  # masked steps get no gradient
