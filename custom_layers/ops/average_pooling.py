"""Average pooling, forward and hand-written backward.

Each output is the mean of its window, y[p] = (1/|W_p|) Σ_{m ∈ W_p} x[m]
(|W_p| counts only the inputs inside the tensor when "same" padding pads
the border, as Keras and TensorFlow count), so every input of the window
receives an equal share of the window's gradient:

    dE/dx[m] = Σ_{p: m ∈ W_p} dE/dy[p] / |W_p|.

TensorFlow's ``AvgPoolGrad`` kernel computes exactly this spreading, as
``MaxPoolGrad`` computes max pooling's routing; on JAX it is a windowed sum
of dE/dy/|W| dilated by the stride (:mod:`custom_layers.backends`). Global average pooling is the
window that covers all steps: dE/dx[m] = dE/dy / N for each of the N steps
(with a mask, the unmasked steps share it and masked steps get 0).
"""

from __future__ import annotations

import math
from typing import Sequence

from keras import ops

from custom_layers.backends import kernels
from custom_layers.ops._gradient import custom_gradient
from custom_layers.ops.pooling import pool_channels_last, pooling_windows
from custom_layers.ops.reshaping import expand_dims, squeeze


def avg_pool2d(x, pool_size: Sequence[int] = (2, 2),
               strides: Sequence[int] | None = None, padding: str = "valid",
               data_format: str = "channels_last"):
    """Mean over windows of NHWC (or NCHW) ``x``; the window's gradient shared equally."""
    window, window_strides = pooling_windows(pool_size, strides, padding, data_format)
    backend = kernels("avg_pool2d")
    if data_format == "channels_first" and not backend.CHANNELS_FIRST_POOLING:
        return pool_channels_last(avg_pool2d, x, pool_size, strides, padding)

    @custom_gradient
    def forward(x):
        def grad(upstream):
            return backend.avg_pool2d_backprop(x, upstream, window, window_strides, padding)

        return backend.avg_pool2d(x, window, window_strides, padding), grad

    return forward(x)


def avg_pool1d(x, pool_size: int = 2, strides: int | None = None,
               padding: str = "valid", data_format: str = "channels_last"):
    """Mean over windows of NWC (or NCW) ``x``: the 2-D op on a height-1 image."""
    strides = pool_size if strides is None else strides
    height = 2 if data_format == "channels_first" else 1
    y = avg_pool2d(expand_dims(x, height), (1, pool_size), (1, strides), padding, data_format)
    return squeeze(y, height)


def global_avg_pool(x, axes: Sequence[int], keepdims: bool = False, mask=None):
    """Mean over ``axes`` (the steps); dE/dx = dE/dy / N broadcast back, or
    with a ``mask`` (true where a step counts, broadcastable to ``x``) the
    mean over the unmasked steps, dE/dx = w·dE/dy / Σw."""
    axes = tuple(axes)
    sizes = [x.shape[axis] for axis in axes]

    @custom_gradient
    def forward(x):
        if mask is None:
            weights = None
            if all(isinstance(size, int) for size in sizes):
                count = ops.convert_to_tensor(math.prod(sizes), x.dtype)
            else:
                shape = ops.shape(x)
                count = ops.cast(ops.prod(ops.stack([shape[axis] for axis in axes])), x.dtype)
            total = ops.sum(x, axes, keepdims=True)
        else:
            weights = ops.cast(ops.cast(mask, "bool"), x.dtype)
            count = ops.sum(weights * ops.ones_like(x), axes, keepdims=True)
            total = ops.sum(ops.where(weights > 0, x, ops.zeros_like(x)), axes, keepdims=True)
        y = total / count

        def grad(upstream):
            if not keepdims:
                upstream = ops.reshape(upstream, ops.shape(y))
            share = upstream / count
            return (share if weights is None else weights * share) * ops.ones_like(x)

        return (y if keepdims else ops.squeeze(y, axes)), grad

    return forward(x)
