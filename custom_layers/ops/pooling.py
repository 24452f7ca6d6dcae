"""Max pooling, forward and hand-written backward ("unpooling").

Forward: each output is the largest input in its window,

    y[p, q] = max_{(m, n) ∈ window(p, q)} x[m, n].

Backward, as in the lecture: the max passes on only the input that won, so
dE/dy[p, q] is routed back to the argmax of its window and every other input
of the window gets zero; where windows overlap, an input collects the gradient
of every window it won:

    dE/dx[m, n] = Σ_{(p, q): argmax window(p, q) = (m, n)} dE/dy[p, q].

Each backend has a kernel that computes exactly this routing, ties going to the
first maximum in the window (:mod:`custom_layers.backends`): TensorFlow's
``MaxPoolGrad`` (which, unlike ``max_pool_with_argmax``, compiles under XLA),
XLA's ``SelectAndScatter`` on JAX. 1-D pooling is 2-D pooling of a height-1
image. Channels-first inputs pool in place where the backend's kernels take
that layout (JAX); otherwise they are transposed to channels last around the
op (TensorFlow's CPU kernels take NHWC only).
"""

from __future__ import annotations

from typing import Sequence

from custom_layers.backends import kernels
from custom_layers.ops._gradient import custom_gradient
from custom_layers.ops.reshaping import expand_dims, squeeze, transpose

PADDINGS = ("valid", "same")
DATA_FORMATS = ("channels_last", "channels_first")


def pooling_windows(pool_size, strides, padding, data_format):
    """The window and strides over all four axes of an NHWC (channels_last)
    or NCHW (channels_first) input, after checking the arguments."""
    if padding not in PADDINGS:
        raise ValueError(f"Invalid padding {padding!r}. Expected one of 'valid', 'same'.")
    if data_format not in DATA_FORMATS:
        raise ValueError(f"Invalid data_format {data_format!r}. Expected one of "
                         "'channels_last', 'channels_first'.")
    pool_size = tuple(pool_size)
    strides = pool_size if strides is None else tuple(strides)
    if data_format == "channels_first":
        return (1, 1, *pool_size), (1, 1, *strides)
    return (1, *pool_size, 1), (1, *strides, 1)


def pool_channels_last(pool, x, *arguments):
    """``pool`` (a channels-last op) applied to NCHW ``x``: NCHW → NHWC → pool → NCHW."""
    return transpose(pool(transpose(x, (0, 2, 3, 1)), *arguments), (0, 3, 1, 2))


def max_pool2d(
    x,
    pool_size: Sequence[int] = (2, 2),
    strides: Sequence[int] | None = None,
    padding: str = "valid",
    data_format: str = "channels_last",
):
    """Max over (pool_size) windows of NHWC (or NCHW) ``x``; the gradient goes
    to the argmax of each window (dE/dx[m,n] = Σ dE/dy[p,q] over windows won)."""
    window, window_strides = pooling_windows(pool_size, strides, padding, data_format)
    backend = kernels("max_pool2d")
    if data_format == "channels_first" and not backend.CHANNELS_FIRST_POOLING:
        return pool_channels_last(max_pool2d, x, pool_size, strides, padding)

    @custom_gradient
    def forward(x):
        y = backend.max_pool2d(x, window, window_strides, padding)

        def grad(upstream):
            return backend.max_pool2d_backprop(x, y, upstream, window, window_strides, padding)

        return y, grad

    return forward(x)


def max_pool1d(
    x,
    pool_size: int = 2,
    strides: int | None = None,
    padding: str = "valid",
    data_format: str = "channels_last",
):
    """Max over windows of NWC (or NCW) ``x``: the 2-D op on a height-1 image."""
    strides = pool_size if strides is None else strides
    height = 2 if data_format == "channels_first" else 1
    y = max_pool2d(expand_dims(x, height), (1, pool_size), (1, strides), padding, data_format)
    return squeeze(y, height)
