"""Max pooling, forward and hand-written backward ("unpooling").

Forward: each output is the largest input in its window,

    y[p, q] = max_{(m, n) ∈ window(p, q)} x[m, n].

Backward, as in the lecture: the max passes on only the input that won, so
dE/dy[p, q] is routed back to the argmax of its window and every other input
of the window gets zero; where windows overlap, an input collects the gradient
of every window it won:

    dE/dx[m, n] = Σ_{(p, q): argmax window(p, q) = (m, n)} dE/dy[p, q].

TensorFlow's ``MaxPoolGrad`` kernel computes exactly this routing (ties go to
the first maximum in the window) and, unlike ``max_pool_with_argmax``, it
compiles under XLA, so it is the backward used here. 1-D pooling is 2-D pooling
of a height-1 image.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from custom_layers.ops.reshaping import expand_dims, squeeze

_TF_PADDING = {"valid": "VALID", "same": "SAME"}


def max_pool2d(
    x: tf.Tensor,
    pool_size: Sequence[int] = (2, 2),
    strides: Sequence[int] | None = None,
    padding: str = "valid",
) -> tf.Tensor:
    """Max over (pool_size) windows of NHWC ``x``; the gradient goes to the
    argmax of each window (dE/dx[m,n] = Σ dE/dy[p,q] over windows won)."""
    if padding not in _TF_PADDING:
        raise ValueError(f"Invalid padding {padding!r}. Expected one of 'valid', 'same'.")
    strides = pool_size if strides is None else strides
    ksize = [1, *pool_size, 1]
    strides4 = [1, *strides, 1]
    tf_padding = _TF_PADDING[padding]

    @tf.custom_gradient
    def forward(x):
        y = tf.nn.max_pool2d(x, ksize, strides4, tf_padding)

        def grad(upstream):
            return tf.raw_ops.MaxPoolGrad(
                orig_input=x, orig_output=y, grad=upstream,
                ksize=ksize, strides=strides4, padding=tf_padding,
            )

        return y, grad

    return forward(x)


def max_pool1d(
    x: tf.Tensor,
    pool_size: int = 2,
    strides: int | None = None,
    padding: str = "valid",
) -> tf.Tensor:
    """Max over windows of NWC ``x``: the 2-D op on a height-1 image."""
    strides = pool_size if strides is None else strides
    y = max_pool2d(expand_dims(x, 1), (1, pool_size), (1, strides), padding)
    return squeeze(y, 1)
