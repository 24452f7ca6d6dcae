"""JAX's (XLA's) kernels for the derived quantities (see :mod:`custom_layers.backends`).

The convolution's two sums are themselves convolutions (``lax.conv_general_dilated``):
dE/dx correlates dE/dy, dilated by the stride, with the flipped kernel; dE/dw
correlates x with dE/dy as the kernel, the batch axis playing the channel
axis. Max pooling's "send dE/dy to the argmax" is XLA's ``SelectAndScatter``
(the public primitive ``lax.select_and_scatter_add_p``). Where XLA has no
dedicated kernel (the activations' g', a bias's sum), the function is the
formula in ``jax.numpy``, which XLA fuses into one sweep. Imported only when
Keras runs on JAX.
"""

from __future__ import annotations

import jax
import keras
import jax.numpy as jnp
from jax import lax
from jax.experimental import sparse as jax_sparse

FUSED_BATCH_NORM = False  # no fused batch-norm kernel: the written-out reference runs
NATIVE_CONV1D = True  # the convolution kernels take one spatial axis as well as two
SYNCHRONIZED_BATCH_NORM = False  # no replica context to sum over inside a Keras layer
CHANNELS_FIRST_POOLING = True  # the windows name every axis: NCHW pools in place


def _dimensions(x, *specs):
    """Convolution dimension numbers for ``x``'s spatial rank (1: "W", 2: "HW")
    from templates written with "S" for the spatial axes."""
    spatial = "HW"[-(x.ndim - 2):]
    return tuple(spec.replace("S", spatial) for spec in specs)


def _dilated(size: int, dilation: int) -> int:
    return 0 if size == 0 else (size - 1) * dilation + 1


def _pairs(padding, sizes, window, strides):
    """Explicit (before, after) amounts for "valid"/"same" (TensorFlow's split,
    the odd pixel after) or the given pairs."""
    if isinstance(padding, str):
        return [tuple(p) for p in lax.padtype_to_pads(sizes, window, strides, padding.upper())]
    return [tuple(p) for p in padding]


def _conv_pads(x_shape, kernel_shape, strides, dilation_rate, padding):
    window = [_dilated(k, d) for k, d in zip(kernel_shape[:-2], dilation_rate)]
    return _pairs(padding, x_shape[1:-1], window, strides)


# --- dense --------------------------------------------------------------------------------

def transposed_matmul(a, b):
    """aᵀ·b without forming aᵀ (``dot_general`` contracting the first axes):
    a dense kernel's dE/dW = xᵀ·dE/dy."""
    return lax.dot_general(a, b, (((0,), (0,)), ((), ())))


# --- convolution: y[p,q] = Σ_mn x[p·s + m·d, q·s + n·d]·w[m,n] ----------------------------

def conv2d(x, kernel, strides, dilation_rate, padding):
    """The forward correlation of NHWC ``x`` with an HWIO ``kernel`` (or NWC
    with WIO: one spatial axis)."""
    return lax.conv_general_dilated(
        x, kernel, window_strides=tuple(strides),
        padding=_conv_pads(x.shape, kernel.shape, strides, dilation_rate, padding),
        rhs_dilation=tuple(dilation_rate), dimension_numbers=_dimensions(x, "NSC", "SIO", "NSC"))


def conv2d_backprop_input(x, kernel, upstream, strides, dilation_rate, padding):
    """dE/dx: the full correlation of dE/dy (dilated by the stride) with the
    flipped kernel, its input and output channels swapped."""
    pads = _conv_pads(x.shape, kernel.shape, strides, dilation_rate, padding)
    window = [_dilated(k, d) for k, d in zip(kernel.shape[:-2], dilation_rate)]
    before = [w - 1 - lo for w, (lo, _) in zip(window, pads)]
    after = [n + w - 1 - _dilated(o, s) - b for n, w, o, s, b in
             zip(x.shape[1:-1], window, upstream.shape[1:-1], strides, before)]
    return lax.conv_general_dilated(
        upstream, jnp.flip(kernel, tuple(range(x.ndim - 2))), window_strides=(1,) * (x.ndim - 2),
        padding=list(zip(before, after)), lhs_dilation=tuple(strides),
        rhs_dilation=tuple(dilation_rate), dimension_numbers=_dimensions(x, "NSC", "SOI", "NSC"))


def conv2d_backprop_filter(x, kernel, upstream, strides, dilation_rate, padding):
    """dE/dw[m,n] = Σ_b,pq x[b, p·s + m·d, q·s + n·d]·dE/dy[b,p,q]: x correlated
    with dE/dy as the kernel (dilated by the stride), with stride d, the batch
    axis of both playing the channel axis ("CHWN", "IHWO" → "HWNC" = HWIO)."""
    pads = _conv_pads(x.shape, kernel.shape, strides, dilation_rate, padding)
    window = [_dilated(k, d) for k, d in zip(kernel.shape[:-2], dilation_rate)]
    after = [_dilated(o, s) - n + w - lo - 1 for n, w, o, s, (lo, hi) in
             zip(x.shape[1:-1], window, upstream.shape[1:-1], strides, pads)]
    return lax.conv_general_dilated(
        x, upstream, window_strides=tuple(dilation_rate),
        padding=[(lo, a) for (lo, _), a in zip(pads, after)], rhs_dilation=tuple(strides),
        dimension_numbers=_dimensions(x, "CSN", "ISO", "SNC"))


def bias_add(y, bias):
    """y + b along the last axis."""
    return y + bias


def bias_add_backprop(upstream):
    """dE/db = Σ of dE/dy over every axis but the last."""
    return jnp.sum(upstream, axis=tuple(range(upstream.ndim - 1)))


# --- pooling ------------------------------------------------------------------------------

def max_pool2d(x, window, strides, padding):
    """y[p,q] = max over the window of ``x`` (XLA's ``ReduceWindow``);
    ``window`` and ``strides`` name every axis, so any layout pools."""
    pads = _pairs(padding, x.shape, window, strides)
    return lax.reduce_window(x, -jnp.inf, lax.max, window, strides, pads)


def max_pool2d_backprop(x, y, upstream, window, strides, padding):
    """dE/dx[m,n] = Σ dE/dy[p,q] over the windows whose argmax (m,n) is, ties
    to the first maximum (XLA's ``SelectAndScatter`` with ≥)."""
    pads = _pairs(padding, x.shape, window, strides)
    return lax.select_and_scatter_add_p.bind(
        upstream, x, select_prim=lax.ge_p, window_dimensions=tuple(window),
        window_strides=tuple(strides), padding=tuple(pads))


def _window_counts(shape, dtype, window, strides, pads):
    """|W_p|: how many inputs inside the tensor each window holds (one count
    per window position, broadcast over the axes it does not slide along)."""
    ones = jnp.ones([n if (w, s) != (1, 1) else 1 for n, w, s in zip(shape, window, strides)],
                    dtype)
    return lax.reduce_window(ones, jnp.zeros((), dtype), lax.add, window, strides, pads)


def avg_pool2d(x, window, strides, padding):
    """y[p] = the mean of the window's inputs inside the tensor."""
    pads = _pairs(padding, x.shape, window, strides)
    total = lax.reduce_window(x, jnp.zeros((), x.dtype), lax.add, window, strides, pads)
    return total / _window_counts(x.shape, x.dtype, window, strides, pads)


def avg_pool2d_backprop(x, upstream, window, strides, padding):
    """dE/dx[m] = Σ_{p: m ∈ W_p} dE/dy[p]/|W_p|: dE/dy/|W|, dilated by the
    stride, summed over every window that covers m (a ``ReduceWindow``)."""
    pads = _pairs(padding, x.shape, window, strides)
    share = upstream / _window_counts(x.shape, x.dtype, window, strides, pads)
    before = [w - 1 - lo for w, (lo, _) in zip(window, pads)]
    after = [n + w - 1 - _dilated(o, s) - b for n, w, o, s, b in
             zip(x.shape, window, upstream.shape, strides, before)]
    return lax.reduce_window(share, jnp.zeros((), x.dtype), lax.add, window, (1,) * x.ndim,
                             list(zip(before, after)), base_dilation=tuple(strides))


# --- activations: dE/dz = dE/dy · g'(z), fused by XLA -------------------------------------

def relu_backprop(upstream, y):
    """dE/dy · 1[y > 0]."""
    return jnp.where(y > 0, upstream, jnp.zeros((), upstream.dtype))


def leaky_relu_backprop(upstream, z, negative_slope):
    """dE/dy · (1 if z > 0 else a)."""
    return jnp.where(z > 0, upstream, upstream * jnp.asarray(negative_slope, upstream.dtype))


def elu_backprop(upstream, y):
    """dE/dy · (1 if y > 0 else y + 1), ELU with a = 1."""
    return jnp.where(y > 0, upstream, upstream * (y + 1))


def sigmoid_backprop(upstream, y):
    """dE/dy · σ(1 − σ) from the output."""
    return upstream * y * (1 - y)


def tanh(z):
    """tanh z in z's dtype (``keras.ops.tanh`` computes float64 in float32 on JAX)."""
    return jnp.tanh(z)


def tanh_backprop(upstream, y):
    """dE/dy · (1 − tanh²) from the output."""
    return upstream * (1 - y * y)


def softplus_backprop(upstream, z):
    """dE/dy · σ(z)."""
    return upstream * jax.nn.sigmoid(z)


# --- broadcasting -------------------------------------------------------------------------

def sum_to_shape(upstream, x):
    """dE/dy summed over the axes along which ``x`` was broadcast to dE/dy's
    shape (static in JAX), in x's shape."""
    lead = upstream.ndim - x.ndim
    axes = tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(x.shape) if size == 1 and upstream.shape[lead + i] != 1)
    return jnp.reshape(jnp.sum(upstream, axis=axes), x.shape)


def read_variables(inputs) -> list:
    """The inputs with every variable read (Keras' custom gradient unwraps them too)."""
    return [x.value if isinstance(x, keras.Variable) else x for x in inputs]


# --- sparse inputs ------------------------------------------------------------------------

def is_sparse(x) -> bool:
    return isinstance(x, jax_sparse.BCOO)


def sparse_dense(x, kernel):
    """y = x·W for a rank-2 ``jax.experimental.sparse.BCOO`` x whose non-zeros
    v_k sit at (i_k, j_k): y[i] = Σ_{k: i_k = i} v_k·W[j_k];
    dE/dW = Σ_k v_k·dE/dy[i_k] into row j_k, dE/dv_k = dE/dy[i_k]·W[j_k]
    (segment sums over the non-zeros: only they are touched)."""
    if x.ndim != 2:
        raise ValueError(f"Sparse inputs to dense must have rank 2; received shape {x.shape}.")
    if x.n_batch or x.n_dense:  # Keras' own sparse tensors batch the first axis
        x = x.update_layout(n_batch=0, n_dense=0)
    rows, columns = x.indices[:, 0], x.indices[:, 1]
    n_rows, n_inputs = x.shape

    @jax.custom_vjp
    def forward(values, kernel):
        return jax.ops.segment_sum(values[:, None] * kernel[columns], rows, n_rows)

    def forward_with_residuals(values, kernel):
        return forward(values, kernel), (values, kernel)

    def backward(residuals, upstream):
        values, kernel = residuals
        upstream_rows = upstream[rows]  # dE/dy[i_k]
        grad_values = jnp.sum(upstream_rows * kernel[columns], axis=-1)
        grad_kernel = jax.ops.segment_sum(values[:, None] * upstream_rows, columns, n_inputs)
        return grad_values, grad_kernel

    forward.defvjp(forward_with_residuals, backward)
    return forward(x.data, kernel)


# --- dropout ------------------------------------------------------------------------------

def dropout_keep_mask(shape, rate, dtype, seed):
    """m: Keras' own dropout mask on JAX (a Bernoulli draw of 1 − r), read off
    ``keras.random.dropout`` of ones; XLA fuses the extra multiply away."""
    ones = keras.ops.ones(shape, dtype)
    return keras.random.dropout(ones, rate, seed=seed) != 0


# --- autodiff (the reference a written backward is checked against) -----------------------

def autodiff_gradients(objective, inputs) -> list:
    """dE/d(input) of a scalar ``objective(*inputs)`` by ``jax.vjp``."""
    value, vjp = jax.vjp(objective, *inputs)
    return list(vjp(jnp.ones_like(value)))


def repeatable(function):
    """``function`` compiled once (``jax.jit``) for the many evaluations of
    finite differences at inputs of one shape."""
    return jax.jit(function)
