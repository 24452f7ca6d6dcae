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
image.
"""

from __future__ import annotations

from typing import Sequence

from custom_layers.backends import kernels
from custom_layers.ops._gradient import custom_gradient
from custom_layers.ops.reshaping import expand_dims, squeeze

PADDINGS = ("valid", "same")


def max_pool2d(
    x,
    pool_size: Sequence[int] = (2, 2),
    strides: Sequence[int] | None = None,
    padding: str = "valid",
):
    """Max over (pool_size) windows of NHWC ``x``; the gradient goes to the
    argmax of each window (dE/dx[m,n] = Σ dE/dy[p,q] over windows won)."""
    if padding not in PADDINGS:
        raise ValueError(f"Invalid padding {padding!r}. Expected one of 'valid', 'same'.")
    pool_size = tuple(pool_size)
    strides = pool_size if strides is None else tuple(strides)
    backend = kernels("max_pool2d")

    @custom_gradient
    def forward(x):
        y = backend.max_pool2d(x, pool_size, strides, padding)

        def grad(upstream):
            return backend.max_pool2d_backprop(x, y, upstream, pool_size, strides, padding)

        return y, grad

    return forward(x)


def max_pool1d(
    x,
    pool_size: int = 2,
    strides: int | None = None,
    padding: str = "valid",
):
    """Max over windows of NWC ``x``: the 2-D op on a height-1 image."""
    strides = pool_size if strides is None else strides
    y = max_pool2d(expand_dims(x, 1), (1, pool_size), (1, strides), padding)
    return squeeze(y, 1)
