"""Average pooling, forward and hand-written backward.

Each output is the mean of its window, y[p] = (1/|W_p|) Σ_{m ∈ W_p} x[m]
(|W_p| counts only the inputs inside the tensor when "same" padding pads
the border, as Keras and TensorFlow count), so every input of the window
receives an equal share of the window's gradient:

    dE/dx[m] = Σ_{p: m ∈ W_p} dE/dy[p] / |W_p|.

TensorFlow's ``AvgPoolGrad`` kernel computes exactly this spreading, as
``MaxPoolGrad`` computes max pooling's routing. Global average pooling is the
window that covers all steps: dE/dx[m] = dE/dy / N for each of the N steps
(with a mask, the unmasked steps share it and masked steps get 0).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from custom_layers.ops.reshaping import expand_dims, squeeze

_TF_PADDING = {"valid": "VALID", "same": "SAME"}


def avg_pool2d(x: tf.Tensor, pool_size: Sequence[int] = (2, 2),
               strides: Sequence[int] | None = None, padding: str = "valid") -> tf.Tensor:
    """Mean over windows of NHWC ``x``; the window's gradient shared equally."""
    if padding not in _TF_PADDING:
        raise ValueError(f"Invalid padding {padding!r}. Expected one of 'valid', 'same'.")
    strides = pool_size if strides is None else strides
    ksize, strides4, tf_padding = [1, *pool_size, 1], [1, *strides, 1], _TF_PADDING[padding]

    @tf.custom_gradient
    def forward(x):
        def grad(upstream):
            return tf.raw_ops.AvgPoolGrad(orig_input_shape=tf.shape(x), grad=upstream,
                                          ksize=ksize, strides=strides4, padding=tf_padding)

        return tf.nn.avg_pool2d(x, ksize, strides4, tf_padding), grad

    return forward(x)


def avg_pool1d(x: tf.Tensor, pool_size: int = 2, strides: int | None = None,
               padding: str = "valid") -> tf.Tensor:
    """Mean over windows of NWC ``x``: the 2-D op on a height-1 image."""
    strides = pool_size if strides is None else strides
    return squeeze(avg_pool2d(expand_dims(x, 1), (1, pool_size), (1, strides), padding), 1)


def global_avg_pool(x: tf.Tensor, axes: Sequence[int], keepdims: bool = False,
                    mask: tf.Tensor | None = None) -> tf.Tensor:
    """Mean over ``axes`` (the steps); dE/dx = dE/dy / N broadcast back, or
    with a ``mask`` (true where a step counts, broadcastable to ``x``) the
    mean over the unmasked steps, dE/dx = w·dE/dy / Σw."""
    axes = list(axes)

    @tf.custom_gradient
    def forward(x):
        if mask is None:
            weights = None
            count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), axes)), x.dtype)
            total = tf.reduce_sum(x, axes, keepdims=True)
        else:
            weights = tf.cast(tf.cast(mask, tf.bool), x.dtype)
            count = tf.reduce_sum(weights * tf.ones_like(x), axes, keepdims=True)
            total = tf.reduce_sum(tf.where(weights > 0, x, tf.zeros_like(x)), axes, keepdims=True)
        y = total / count

        def grad(upstream):
            if not keepdims:
                upstream = tf.reshape(upstream, tf.shape(y))
            share = upstream / count
            return (share if weights is None else weights * share) * tf.ones_like(x)

        return (y if keepdims else tf.squeeze(y, axes)), grad

    return forward(x)
