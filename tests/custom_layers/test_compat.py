"""The private TensorFlow and Keras pieces custom_layers relies on fail loudly when they move."""

import pytest
import tensorflow as tf

from custom_layers._compat import UpstreamChanged
from custom_layers.testing import autodiff_gradients


def test_autodiff_gradients_counts_and_leaves_the_registry_as_it_was():
    from tensorflow.python.framework import ops

    before = dict((name, entry["type"]) for name, entry in ops._gradient_registry._registry.items())
    x = tf.Variable([[1.0, -2.0]])

    @tf.function
    def gradient():
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(tf.nn.relu(tf.matmul(x, tf.ones((2, 3)))))
        return tape.gradient(y, x)

    with autodiff_gradients() as counts:
        gradient()
    assert {"MatMul", "Relu", "Sum"} <= set(counts)
    after = dict((name, entry["type"]) for name, entry in ops._gradient_registry._registry.items()
                 if name in before)
    assert after == before


def test_a_moved_gradient_registry_fails_loudly(monkeypatch):
    from tensorflow.python.framework import ops

    monkeypatch.setattr(ops, "_gradient_registry", object())
    with pytest.raises(UpstreamChanged, match="_gradient_registry"):
        with autodiff_gradients():
            pass
