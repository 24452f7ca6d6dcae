"""Convolution (1-D and 2-D), forward and hand-written backward.

The lecture's 2-D convolution (a correlation, as in every DL library) is

    y[p, q] = Σ_mn x[p·s + m·d, q·s + n·d] · w[m, n]          (stride s, dilation d)

summed over input channels for each output channel. Its backward pass, derived
in the lecture for s = d = 1:

    dE/dw[m, n] = Σ_pq x[m + p, n + q] · dE/dy[p, q]
        — the correlation of the input with the output gradient;
    dE/dx       = the *full* correlation of dE/dy with the flipped kernel
        — every x[i, j] collects dE/dy from each output whose window covered it.

With a stride the sums run over p·s, with a dilation over m·d. For d = 1 the two
sums are exactly TensorFlow's ``Conv2DBackpropFilter`` and
``Conv2DBackpropInput`` kernels (the latter *is* the full correlation with the
flipped kernel), so the fast vendor kernels are used. TensorFlow's CPU kernels
refuse d > 1, so there (stride 1) both sums are written as ordinary
convolutions:

    dE/dw  = conv(xᵀ, dE/dy as a kernel, stride d)      — batch plays channel
    dE/dx  = conv(dE/dy padded by (k−1)·d, flip(w)ᵀ, dilation d)

A 1-D convolution is the 2-D one with a height-1 image; the size-1 axis is
inserted and removed by :mod:`custom_layers.ops.reshaping`, whose backward
removes and inserts it again, so the backward pass is the same.

Padding: "valid" and "same" (TensorFlow's split, the odd pixel after) go to the
kernels by name — oneDNN's fast CPU backward kernels refuse explicit amounts —
and "causal" (1-D) as explicit (before, after) amounts: all on the left.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

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
    x: tf.Tensor,
    kernel: tf.Tensor,
    strides: Sequence[int] = (1, 1),
    padding: str = "valid",
    dilation_rate: Sequence[int] = (1, 1),
) -> tf.Tensor:
    """2-D correlation of NHWC ``x`` with an HWIO ``kernel`` (no bias).

    Backward: dE/dw[m,n] = Σ_pq x[m+p, n+q]·dE/dy[p,q]; dE/dx = full
    correlation of dE/dy with the flipped kernel (module docstring).
    """
    strides, dilation_rate = tuple(strides), tuple(dilation_rate)
    if dilation_rate == (1, 1) and padding in ("valid", "same"):
        # TensorFlow's own VALID/SAME split equals `explicit_padding`; naming
        # it lets oneDNN pick its fast backward kernels, which refuse EXPLICIT.
        return _conv2d_vendor(x, kernel, strides, padding.upper(), [])
    pads = explicit_padding(x.shape[1:3], kernel.shape[:2], strides, dilation_rate, padding)
    if dilation_rate == (1, 1):
        return _conv2d_vendor(x, kernel, strides, "EXPLICIT", [0, 0, *pads[0], *pads[1], 0, 0])
    if strides != (1, 1):
        raise ValueError(
            "strides > 1 together with dilation_rate > 1 is not supported; "
            f"received strides={strides}, dilation_rate={dilation_rate}."
        )
    return _conv2d_dilated(x, kernel, dilation_rate, pads)


def conv1d(
    x: tf.Tensor,
    kernel: tf.Tensor,
    stride: int = 1,
    padding: str = "valid",
    dilation_rate: int = 1,
) -> tf.Tensor:
    """1-D correlation of NWC ``x`` with a WIO ``kernel``: the 2-D op on a
    height-1 image, so the backward pass is the same derivation."""
    y = conv2d(
        expand_dims(x, 1),
        expand_dims(kernel, 0),
        strides=(1, stride),
        padding=padding,
        dilation_rate=(1, dilation_rate),
    )
    return squeeze(y, 1)


def _conv2d_vendor(x, kernel, strides, padding, explicit):
    strides4 = [1, *strides, 1]

    @tf.custom_gradient
    def forward(x, kernel):
        y = tf.raw_ops.Conv2D(
            input=x, filter=kernel, strides=strides4, padding=padding,
            explicit_paddings=explicit,
        )

        def grad(upstream):
            # dE/dx: full correlation of dE/dy with the flipped kernel.
            grad_x = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x), filter=kernel, out_backprop=upstream,
                strides=strides4, padding=padding, explicit_paddings=explicit,
            )
            # dE/dw[m,n] = Σ_pq x[m+p, n+q] · dE/dy[p,q].
            grad_kernel = tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=tf.shape(kernel), out_backprop=upstream,
                strides=strides4, padding=padding, explicit_paddings=explicit,
            )
            return grad_x, grad_kernel

        return y, grad

    return forward(x, kernel)


def _conv2d_dilated(x, kernel, dilation_rate, pads):
    kernel_height, kernel_width = kernel.shape[:2]
    reach = [(kernel_height - 1) * dilation_rate[0], (kernel_width - 1) * dilation_rate[1]]
    dilations4 = [1, *dilation_rate, 1]
    pad4 = [[0, 0], pads[0], pads[1], [0, 0]]

    @tf.custom_gradient
    def forward(x, kernel):
        x_padded = tf.pad(x, pad4)
        y = tf.nn.conv2d(x_padded, kernel, 1, "VALID", dilations=dilations4)

        def grad(upstream):
            # dE/dx: full correlation of dE/dy with the flipped, transposed
            # kernel, then drop the rows/columns that were padding.
            full = tf.pad(upstream, [[0, 0], [reach[0]] * 2, [reach[1]] * 2, [0, 0]])
            flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
            grad_padded = tf.nn.conv2d(full, flipped, 1, "VALID", dilations=dilations4)
            height, width = tf.shape(x)[1], tf.shape(x)[2]
            grad_x = grad_padded[:, pads[0][0]:pads[0][0] + height, pads[1][0]:pads[1][0] + width]
            # dE/dw[m,n] = Σ_b,pq x[b, m·d+p, n·d+q] · dE/dy[b,p,q]: a stride-d
            # correlation in which the batch axis plays the channel axis.
            grad_kernel = tf.nn.conv2d(
                tf.transpose(x_padded, [3, 1, 2, 0]),
                tf.transpose(upstream, [1, 2, 0, 3]),
                strides=[1, *dilation_rate, 1], padding="VALID",
            )
            grad_kernel = tf.transpose(grad_kernel, [1, 2, 0, 3])
            return grad_x, grad_kernel

        return y, grad

    return forward(x, kernel)


def bias_add(y: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
    """y + b per output channel (last axis); dE/db = Σ over batch and positions
    of dE/dy (each channel's bias is shared by every position), dE/dy passes."""

    @tf.custom_gradient
    def forward(y, bias):
        def grad(upstream):
            # BiasAddGrad is exactly this sum; oneDNN fuses it into the filter gradient.
            return upstream, tf.raw_ops.BiasAddGrad(out_backprop=upstream)

        return tf.nn.bias_add(y, bias), grad

    return forward(y, bias)
