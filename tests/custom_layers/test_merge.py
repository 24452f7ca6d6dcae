"""Add: Keras' outputs, gradients summed back over broadcast axes, a residual
block, configs and conversion."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import custom_layers
from custom_layers import ops
from tests.custom_layers.test_ops import assert_op_matches_reference


@pytest.mark.parametrize("shapes", [[(2, 3, 4), (2, 3, 4)], [(2, 3, 4), (2, 1, 4), (4,)]],
                         ids=["same", "broadcast"])
def test_add_op_gradients_match_autodiff_and_finite_differences(shapes):
    rng = np.random.default_rng(len(shapes))

    def reference(*inputs):
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total

    assert_op_matches_reference(lambda *inputs: ops.add(inputs), reference,
                                [rng.standard_normal(shape) for shape in shapes])


def test_add_layer_equals_keras_in_a_residual_block_and_converts():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(6)(inputs)
    outputs = keras.layers.Add()([inputs, hidden])
    original = keras.Model(inputs, outputs)
    converted = custom_layers.convert(original)
    assert type(converted.layers[-1]) is custom_layers.Add and converted.kept_layers == []
    x = tf.constant(np.random.default_rng(0).standard_normal((3, 6)), tf.float32)
    gradients = []
    for model in (original, converted):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(x)
        gradients.append(tape.gradient(y, [x, *model.trainable_weights],
                                       output_gradients=tf.range(1.0, 7.0)[None] * tf.ones_like(y)))
        np.testing.assert_allclose(y, original(x), rtol=1e-6)
    for actual, expected in zip(*gradients):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    config = custom_layers.Add(name="plus").get_config()
    assert keras.layers.Add.from_config(json.loads(json.dumps(config))).name == "plus"


def test_add_needs_a_list_and_combines_masks():
    with pytest.raises(ValueError, match="should be called on a list of inputs"):
        custom_layers.Add()(tf.ones((2, 3)))
    mask = custom_layers.Add().compute_mask(None, [tf.constant([True, False]), tf.constant([True, True])])
    np.testing.assert_array_equal(mask, [True, False])
