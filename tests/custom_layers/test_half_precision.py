"""Every op in bfloat16 and float16: its output and its hand-written gradients
agree with the same op in float32, on the same (half-representable) inputs, to
the half type's precision — what ``--precision mixed_bfloat16`` and
``mixed_float16`` train with."""

import numpy as np
import pytest
import tensorflow as tf

from custom_layers import ops

#: Relative error (Frobenius norm) allowed against float32: a few units of the
#: type's rounding (2⁻⁸ for bfloat16, 2⁻¹¹ for float16) after a sum.
TOLERANCE = {"bfloat16": 3e-2, "float16": 4e-3}

KEEP = tf.constant(np.random.default_rng(7).uniform(size=(4, 6, 5)) >= 0.3)

#: (id, op over float tensors, input shapes)
OPS = [
    ("dense", lambda x, w, b: ops.dense(x, w, b), [(8, 6), (6, 5), (5,)]),
    ("dense-3d", lambda x, w: ops.dense(x, w), [(2, 4, 6), (6, 3)]),
    ("conv2d-same", lambda x, w: ops.conv2d(x, w, padding="same"), [(2, 6, 6, 3), (3, 3, 3, 4)]),
    ("conv2d-stride2-valid", lambda x, w: ops.conv2d(x, w, (2, 2)), [(2, 7, 7, 3), (3, 3, 3, 4)]),
    ("conv2d-dilated", lambda x, w: ops.conv2d(x, w, dilation_rate=(2, 2), padding="same"),
     [(2, 7, 7, 2), (3, 3, 2, 3)]),
    ("conv1d-causal", lambda x, w: ops.conv1d(x, w, padding="causal"), [(3, 9, 2), (3, 2, 4)]),
    ("bias_add", lambda y, b: ops.bias_add(y, b), [(2, 5, 5, 3), (3,)]),
    ("max_pool2d", lambda x: ops.max_pool2d(x, (2, 2)), [(2, 6, 6, 3)]),
    ("max_pool1d-same", lambda x: ops.max_pool1d(x, 3, 2, "same"), [(2, 9, 3)]),
    ("dropout", lambda x: ops.dropout(x, KEEP, 0.3), [(4, 6, 5)]),
    ("batch_norm_training-fused",
     lambda x, g, b: ops.batch_norm_training(x, g, b)[0], [(4, 5, 5, 3), (3,), (3,)]),
    ("batch_norm_training-reference",
     lambda x, g, b: ops.batch_norm_training(x, g, b, implementation="reference")[0],
     [(16, 6), (6,), (6,)]),
    ("batch_norm_inference",
     lambda x, g, b: ops.batch_norm_inference(x, tf.zeros_like(g) + 0.5, tf.ones_like(g) * 2.0,
                                              g, b),
     [(6, 4), (4,), (4,)]),
]


def _outputs_and_gradients(op, inputs, upstream_seed=1):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        y = op(*inputs)
    upstream = tf.cast(np.random.default_rng(upstream_seed).standard_normal(y.shape), y.dtype)
    gradients = tape.gradient(y, inputs, output_gradients=upstream)
    return [y, *gradients]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("op, shapes", [row[1:] for row in OPS], ids=[row[0] for row in OPS])
def test_half_precision_op_and_its_gradients_match_float32(op, shapes, dtype):
    rng = np.random.default_rng(0)
    # Inputs rounded to the half type first: float32 then computes on the same values.
    values = [tf.cast(tf.cast(rng.standard_normal(shape), dtype), tf.float32) for shape in shapes]
    half = _outputs_and_gradients(op, [tf.cast(v, dtype) for v in values])
    exact = _outputs_and_gradients(op, values)
    assert half[0].dtype == tf.as_dtype(dtype)
    for index, (actual, expected) in enumerate(zip(half, exact)):
        assert actual is not None, f"no gradient for input {index - 1}"
        actual = tf.cast(actual, tf.float64).numpy()
        expected = tf.cast(expected, tf.float64).numpy()
        error = np.linalg.norm(actual - expected) / np.linalg.norm(expected)
        assert error <= TOLERANCE[dtype], (index, error)
