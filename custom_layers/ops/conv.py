"""Convolution (1-D and 2-D), forward and hand-written backward.

The lecture's 2-D convolution (a correlation, as in every DL library) is

    y[p, q] = Σ_mn x[p·s + m·d, q·s + n·d] · w[m, n]          (stride s, dilation d)

summed over input channels for each output channel. Its backward pass, derived
in the lecture for s = d = 1:

    dE/dw[m, n] = Σ_pq x[m + p, n + q] · dE/dy[p, q]
        — the correlation of the input with the output gradient;
    dE/dx       = the *full* correlation of dE/dy with the flipped kernel
        — every x[i, j] collects dE/dy from each output whose window covered it.

With a stride the sums run over p·s, with a dilation over m·d. Both sums are
computed by the backend's kernels for exactly these quantities
(:mod:`custom_layers.backends`): TensorFlow's ``Conv2DBackpropFilter`` and
``Conv2DBackpropInput`` (the latter *is* the full correlation with the
flipped kernel), on JAX convolutions of ``lax.conv_general_dilated`` — dE/dw
with the batch axis playing the channel axis.

A 1-D convolution is the 2-D one with a height-1 image; the size-1 axis is
inserted and removed by :mod:`custom_layers.ops.reshaping`, whose backward
removes and inserts it again, so the backward pass is the same.

Padding: "valid" and "same" (TensorFlow's split, the odd pixel after) go to the
kernels by name — oneDNN's fast CPU backward kernels refuse explicit amounts —
and "causal" (1-D) and dilated convolutions as explicit (before, after)
amounts: "causal" all on the left.
"""

from __future__ import annotations

from typing import Sequence

from custom_layers.backends import kernels
from custom_layers.ops._gradient import custom_gradient
from custom_layers.ops.reshaping import expand_dims, squeeze

Padding = Sequence[Sequence[int]]  # ((top, bottom), (left, right))


def explicit_padding(
    input_size: Sequence[int | None],
    kernel_size: Sequence[int],
    strides: Sequence[int],
    dilation_rate: Sequence[int],
    padding: str,
) -> list[list[int]]:
    """(before, after) zero-padding per spatial axis for a padding mode.

    "same" follows TensorFlow: the output has ceil(n / s) positions and the
    odd pixel of padding goes after. It needs static spatial sizes when s > 1.
    """
    pads = []
    for size, k, s, d in zip(input_size, kernel_size, strides, dilation_rate):
        reach = (k - 1) * d  # distance from the first to the last tap
        if padding == "valid":
            pads.append([0, 0])
        elif padding == "causal":
            pads.append([reach, 0])
        elif padding == "same":
            if s == 1:
                total = reach
            else:
                if size is None:
                    raise ValueError(
                        "padding='same' with strides > 1 needs a static spatial size; "
                        f"received input size {tuple(input_size)}."
                    )
                out = -(-size // s)
                total = max((out - 1) * s + reach + 1 - size, 0)
            pads.append([total // 2, total - total // 2])
        else:
            raise ValueError(
                f"Invalid padding {padding!r}. Expected one of 'valid', 'same', 'causal'."
            )
    return pads


def conv2d(
    x,
    kernel,
    strides: Sequence[int] = (1, 1),
    padding: str = "valid",
    dilation_rate: Sequence[int] = (1, 1),
):
    """2-D correlation of NHWC ``x`` with an HWIO ``kernel`` (no bias).

    Backward: dE/dw[m,n] = Σ_pq x[m+p, n+q]·dE/dy[p,q]; dE/dx = full
    correlation of dE/dy with the flipped kernel (module docstring).
    """
    return _convolution(kernels("conv2d"), x, kernel, tuple(strides), tuple(dilation_rate),
                        padding)


def _convolution(backend, x, kernel, strides, dilation_rate, padding):
    """The correlation over x's spatial axes (two, or one where the backend's
    kernels take it), its backward the two derived sums."""
    if max(strides) > 1 and max(dilation_rate) > 1:
        raise ValueError(
            "strides > 1 together with dilation_rate > 1 is not supported; "
            f"received strides={strides}, dilation_rate={dilation_rate}."
        )
    if max(dilation_rate) == 1 and padding in ("valid", "same"):
        pads = padding  # by name: the backends' own split equals `explicit_padding`
    else:
        pads = explicit_padding(x.shape[1:-1], kernel.shape[:-2], strides, dilation_rate, padding)

    @custom_gradient
    def forward(x, kernel):
        y = backend.conv2d(x, kernel, strides, dilation_rate, pads)

        def grad(upstream):
            # dE/dx: full correlation of dE/dy with the flipped kernel.
            grad_x = backend.conv2d_backprop_input(x, kernel, upstream, strides, dilation_rate, pads)
            # dE/dw[m,n] = Σ_pq x[m+p, n+q] · dE/dy[p,q].
            grad_kernel = backend.conv2d_backprop_filter(
                x, kernel, upstream, strides, dilation_rate, pads)
            return grad_x, grad_kernel

        return y, grad

    return forward(x, kernel)


def conv1d(
    x,
    kernel,
    stride: int = 1,
    padding: str = "valid",
    dilation_rate: int = 1,
):
    """1-D correlation of NWC ``x`` with a WIO ``kernel``: the 2-D op on a
    height-1 image, so the backward pass is the same derivation (run on one
    spatial axis where the backend's kernels take one)."""
    backend = kernels("conv1d")
    if backend.NATIVE_CONV1D:
        return _convolution(backend, x, kernel, (stride,), (dilation_rate,), padding)
    y = conv2d(
        expand_dims(x, 1),
        expand_dims(kernel, 0),
        strides=(1, stride),
        padding=padding,
        dilation_rate=(1, dilation_rate),
    )
    return squeeze(y, 1)


def bias_add(y, bias):
    """y + b per output channel (last axis); dE/db = Σ over batch and positions
    of dE/dy (each channel's bias is shared by every position), dE/dy passes."""
    backend = kernels("bias_add")

    @custom_gradient
    def forward(y, bias):
        def grad(upstream):
            return upstream, backend.bias_add_backprop(upstream)

        return backend.bias_add(y, bias), grad

    return forward(y, bias)
