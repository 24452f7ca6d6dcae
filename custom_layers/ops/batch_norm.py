"""Batch normalization (Ioffe & Szegedy, 2015), forward and hand-written backward.

Over a mini-batch B of m values of one channel (all axes but the channel axis):

    μ_B  = (1/m) Σ_i x_i                   σ²_B = (1/m) Σ_i (x_i − μ_B)²
    x̂_i  = (x_i − μ_B) / √(σ²_B + ε)      y_i  = γ x̂_i + β

Backward in training mode, where μ_B and σ²_B depend on every x_i (the
paper's Algorithm/equations, collapsed):

    dE/dβ   = Σ_i dE/dy_i
    dE/dγ   = Σ_i dE/dy_i · x̂_i
    dE/dx_i = γ / (m √(σ²_B + ε)) · ( m·dE/dy_i − Σ_j dE/dy_j − x̂_i Σ_j dE/dy_j · x̂_j )

At inference μ and σ² are the moving averages, constants with respect to x:

    dE/dx_i = γ / √(σ² + ε) · dE/dy_i,   dE/dγ, dE/dβ as above,
    dE/dμ   = −Σ_i γ/√(σ² + ε) · dE/dy_i,
    dE/dσ²  = −½ Σ_i dE/dy_i · γ (x_i − μ) (σ² + ε)^(−3/2).

With a mask (padded steps of a sequence, ``Embedding(mask_zero=True)``), the
statistics run over the unmasked positions only, with weights w_i ∈ {0, 1}
and W = Σ_i w_i + δ (δ = 1e-7, Keras' guard against an all-masked batch):

    μ = (1/W) Σ_i w_i x_i                σ² = (1/W) Σ_i w_i (x_i − μ)²

and every position, masked or not, is normalised with them. Its backward
follows the chain rule through μ and σ², which now see only the unmasked
x_i (s = 1/√(σ² + ε)):

    dE/dσ²  = −½ γ s³ Σ_j dE/dy_j (x_j − μ)
    dE/dμ   = −γ s Σ_j dE/dy_j − (2/W) dE/dσ² Σ_j w_j (x_j − μ)
    dE/dx_i = γ s dE/dy_i + (w_i/W) dE/dμ + (2 w_i (x_i − μ)/W) dE/dσ²

(Σ_j w_j (x_j − μ) = δμ, zero but for the guard.) With every w_i = 1 and
δ = 0 this is the unmasked formula above.

Synchronized over the replicas of a ``tf.distribute`` strategy (TensorFlow's:
the one backend whose layers run inside a replica context), the batch is
the union of the replicas' batches (M values in all): μ and σ² come from
all-reduced sums (σ² = E[x²] − μ², as Keras computes it), and so do the two
sums of the backward, Σ_j dE/dy_j and Σ_j dE/dy_j·x̂_j, which each replica's
dE/dx_i needs over the whole batch; dE/dγ and dE/dβ stay each replica's own
sums, which the strategy adds up like every other gradient.

The output is computed as y = x·a + (β − μ·a) with a = γ/√(σ² + ε), the same
arithmetic as ``tf.nn.batch_normalization`` so float32 results agree with
Keras' layer to rounding.

Two implementations of the training-mode op compute these same quantities:

- ``"reference"`` — the equations above, written out as tensor expressions:
  the reading copy, and the one every other path is tested against.
- ``"fused"`` — on TensorFlow, ``FusedBatchNormV3`` for the forward pass and,
  inside the ``custom_gradient``, ``FusedBatchNormGradV3`` for the backward
  pass (:mod:`custom_layers.backends.tensorflow`). That kernel evaluates
  exactly the three sums above (dE/dβ, dE/dγ and dE/dx from them) in two
  sweeps over the tensor instead of five, as
  ``conv`` uses ``Conv2DBackpropFilter`` for its derived sum. Its results
  agree with the reference to float32 rounding (≤ 1e-5 relative).

``implementation="auto"`` (the default) takes the fused kernel where it is
faster: inputs with spatial axes (rank ≥ 3) whose channel axis is the last,
in float32, float16 or bfloat16 — the feature maps of convolutional nets,
where it measured ~1.4× faster for forward + backward. It takes the
reference for rank-2 inputs (dense features, where the reference is the
faster), for any other channel axis, for float64 (no fused kernel), and on
backends without the kernel (JAX, where XLA fuses the reference's sweeps).
float16 and bfloat16 inputs are normalised in float32 either way: the
statistics and the backward sums accumulate in float32, the output is cast
back to the input's dtype.
"""

from __future__ import annotations

import functools
import math

from keras import ops

from custom_layers.backends import UnsupportedBackendError, backend, kernels
from custom_layers.ops._gradient import custom_gradient
from custom_layers.ops.reshaping import reshape

IMPLEMENTATIONS = ("auto", "fused", "reference")
MASK_GUARD = 1e-7  # δ: keras.backend.epsilon(), as Keras' masked moments
_HALF_PRECISION = ("float16", "bfloat16")
_FUSED_DTYPES = ("float32", *_HALF_PRECISION)


def _channel_shape(rank: int, axis: int, channels: int) -> list[int]:
    shape = [1] * rank
    shape[axis] = channels
    return shape


def _reduction_axes(rank: int, axis: int) -> list[int]:
    axis = axis % rank
    return [i for i in range(rank) if i != axis]


def _parameter_or(value, default: float, x, axis: int):
    if value is not None:
        return ops.cast(value, x.dtype)
    return ops.full((x.shape[axis],), default, dtype=x.dtype)


def _count(x, axis: int):
    """m: the values per channel, static where x's shape is."""
    rest = [size for i, size in enumerate(x.shape) if i != axis % len(x.shape)]
    if all(isinstance(size, int) for size in rest):
        return ops.convert_to_tensor(math.prod(rest), x.dtype)
    return ops.cast(ops.size(x) // x.shape[axis], x.dtype)


def fused_kernel_applies(x, axis: int = -1) -> bool:
    """Whether ``implementation="auto"`` takes the fused kernel for ``x``
    normalised along ``axis`` (module docstring)."""
    rank = len(x.shape)
    return (kernels("batch_norm_training").FUSED_BATCH_NORM and rank >= 3
            and axis % rank == rank - 1 and ops.dtype(x) in _FUSED_DTYPES)


def batch_norm_training(
    x,
    gamma=None,
    beta=None,
    axis: int = -1,
    epsilon: float = 1e-3,
    implementation: str = "auto",
    mask=None,
    statistics=None,
    synchronized: bool = False,
):
    """Normalises ``x`` with its own batch statistics along ``axis``.

    Returns (y, μ_B, σ²_B). The statistics (biased variance, float32 for
    half-precision ``x``) are returned for the moving averages and carry no
    gradient; the gradient of y with respect to x already accounts for μ_B
    and σ²_B depending on x (module docstring). ``implementation`` is
    "auto", "fused" or "reference" (module docstring); "fused" needs the
    TensorFlow backend, the channel axis last and a float32, float16 or
    bfloat16 ``x``. ``mask`` (the shape of ``x`` without its last axis; true
    where a position counts) restricts the statistics to the unmasked
    positions, through the reference (module docstring). ``statistics`` —
    (μ_B, σ²_B) from :func:`batch_moments` of the same ``x`` and ``mask`` — are
    used instead of being computed again (batch renormalization needs them
    first), through the reference. ``synchronized`` takes the statistics over
    the batches of all replicas of the current ``tf.distribute`` replica
    context (module docstring); TensorFlow only, without a mask.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            "Invalid value for argument `implementation`. Expected one of "
            f"{IMPLEMENTATIONS}. Received: implementation={implementation!r}")
    backend_kernels = kernels("batch_norm_training")
    if implementation == "fused" and not backend_kernels.FUSED_BATCH_NORM:
        raise UnsupportedBackendError(
            "implementation='fused' runs TensorFlow's FusedBatchNormV3 kernel, which the "
            f"{backend()!r} backend does not have; use implementation='reference' or 'auto'.")
    if synchronized and not backend_kernels.SYNCHRONIZED_BATCH_NORM:
        raise UnsupportedBackendError(
            "synchronized=True sums the batch statistics over the replicas of a tf.distribute "
            f"strategy, which needs the tensorflow backend; the backend in use is {backend()!r}.")
    if implementation == "fused" and (mask is not None or statistics is not None or synchronized):
        raise ValueError("The fused batch-norm kernel computes its own statistics over every "
                         "position of this replica; use implementation='reference' (or 'auto') "
                         "with a mask, given statistics or synchronized=True.")
    if mask is not None:
        if len(mask.shape) != len(x.shape) - 1:
            raise ValueError("The mask provided should be one dimension less than the inputs. "
                             f"Received: mask.shape={mask.shape}, inputs.shape={x.shape}")
        reference = functools.partial(_masked_training, mask=mask, statistics=statistics)
    elif statistics is None and not synchronized and (implementation == "fused" or (
            implementation == "auto" and fused_kernel_applies(x, axis))):
        return _fused_training(x, gamma, beta, axis, epsilon)
    else:
        reference = functools.partial(_reference_training, statistics=statistics,
                                      synchronized=synchronized)
    if ops.dtype(x) in _HALF_PRECISION:
        y, mean, variance = reference(
            ops.cast(x, "float32"), _maybe_cast(gamma, "float32"),
            _maybe_cast(beta, "float32"), axis, epsilon)
        return ops.cast(y, x.dtype), mean, variance
    return reference(x, gamma, beta, axis, epsilon)


def batch_moments(x, axis: int = -1, mask=None):
    """(μ_B, σ²_B) per channel as ``batch_norm_training`` computes them (over
    the unmasked positions with a mask; float32 for half-precision ``x``),
    without gradient: what batch renormalization needs before normalising."""
    x = ops.stop_gradient(x)
    if ops.dtype(x) in _HALF_PRECISION:
        x = ops.cast(x, "float32")
    axes = _reduction_axes(len(x.shape), axis)
    if mask is None:
        return ops.moments(x, axes)
    weights, total = _mask_weights(x, axis, mask)
    mean = ops.sum(weights * x, axes, keepdims=True) / total
    variance = ops.sum(weights * ops.square(x - mean), axes, keepdims=True) / total
    return ops.reshape(mean, (-1,)), ops.reshape(variance, (-1,))


def _mask_weights(x, axis: int, mask):
    """The weights w_i (the mask as 0/1, broadcastable against ``x``) and
    W = Σ_i w_i + δ per channel (keepdims)."""
    rank = len(x.shape)
    weights = ops.cast(ops.cast(ops.expand_dims(mask, -1), "bool"), x.dtype)
    if axis % rank == rank - 1:  # every channel counts the same positions
        # (the mask may broadcast over other axes too: count at x's shape, one channel)
        positions = (*ops.shape(x)[:-1], 1)
        total = ops.sum(ops.broadcast_to(weights, positions)) + MASK_GUARD
    else:
        total = ops.sum(ops.broadcast_to(weights, ops.shape(x)),
                        _reduction_axes(rank, axis), keepdims=True) + MASK_GUARD
    return weights, total


def _maybe_cast(value, dtype):
    return None if value is None else ops.cast(value, dtype)


def _fused_training(x, gamma, beta, axis, epsilon):
    """The training-mode op through the backend's fused kernels (TensorFlow's
    ``FusedBatchNormV3`` / ``FusedBatchNormGradV3``).

    The kernels take NHWC tensors; any rank ≥ 2 with the channel axis last
    is viewed as one (the sums run over all axes but the channel axis alike).
    The kernel's batch variance is Bessel-corrected, m/(m − 1)·σ²_B; it is
    scaled back to σ²_B, the biased variance Keras' moving average uses.
    """
    rank = len(x.shape)
    if axis % rank != rank - 1 or ops.dtype(x) not in _FUSED_DTYPES:
        raise ValueError(
            "The fused batch-norm kernel needs the channel axis last and a float32, float16 or "
            f"bfloat16 input; got axis={axis} for rank {rank} and dtype {ops.dtype(x)}. "
            "Use implementation='reference' (or 'auto').")
    backend_kernels = kernels("batch_norm_training")
    channels = x.shape[-1]
    shape = ops.shape(x)
    x4 = x if rank == 4 else reshape(x, (shape[0], -1, 1, channels))
    gamma = ops.ones((channels,), "float32") if gamma is None else ops.cast(gamma, "float32")
    beta = ops.zeros((channels,), "float32") if beta is None else ops.cast(beta, "float32")
    statistics = {}

    @custom_gradient
    def forward(x4, gamma, beta):
        y, statistics["mean"], statistics["variance"], saved = backend_kernels.fused_batch_norm(
            x4, gamma, beta, epsilon)

        def grad(upstream):
            # dE/dx, dE/dγ = Σ dE/dy·x̂, dE/dβ = Σ dE/dy (module docstring).
            return backend_kernels.fused_batch_norm_backprop(upstream, x4, gamma, saved, epsilon)

        return y, grad

    y = forward(x4, gamma, beta)
    if rank != 4:
        y = reshape(y, shape)
    count = ops.cast(ops.size(x4) // channels, "float32")
    variance = statistics["variance"] * (ops.maximum(count - 1.0, 1.0) / count)
    return y, statistics["mean"], variance


def _reference_training(x, gamma, beta, axis, epsilon, statistics=None, synchronized=False):
    """The training-mode op as the module docstring's equations; with
    ``synchronized`` its sums run over the batches of all replicas."""
    rank = len(x.shape)
    axes = _reduction_axes(rank, axis)
    channel_shape = _channel_shape(rank, axis, x.shape[axis])
    gamma = _parameter_or(gamma, 1.0, x, axis)
    beta = _parameter_or(beta, 0.0, x, axis)
    all_sum = (kernels("batch_norm_training").sum_over_replicas if synchronized
               else (lambda value: value))
    count = all_sum(_count(x, axis))  # m (M over the replicas)
    constant_x = ops.stop_gradient(x)
    if synchronized:  # as Keras: σ² = E[x²] − μ² from all-reduced sums
        mean = all_sum(ops.sum(constant_x, axes)) / count
        variance = ops.maximum(
            all_sum(ops.sum(ops.square(constant_x), axes)) / count - ops.square(mean), 0.0)
    elif statistics is None:
        mean, variance = ops.moments(constant_x, axes)
    else:
        mean, variance = (ops.stop_gradient(ops.cast(statistic, x.dtype))
                          for statistic in statistics)

    @custom_gradient
    def forward(x, gamma, beta):
        inv_std = ops.rsqrt(variance + epsilon)
        a = ops.reshape(gamma * inv_std, channel_shape)
        y = x * a + ops.reshape(beta - mean * gamma * inv_std, channel_shape)

        def grad(upstream):
            x_hat = (x - ops.reshape(mean, channel_shape)) * ops.reshape(inv_std, channel_shape)
            grad_beta = ops.sum(upstream, axes)
            grad_gamma = ops.sum(upstream * x_hat, axes)
            grad_x = (a / count) * (
                count * upstream
                - ops.reshape(all_sum(grad_beta), channel_shape)
                - x_hat * ops.reshape(all_sum(grad_gamma), channel_shape)
            )
            return grad_x, grad_gamma, grad_beta  # dE/dγ, dE/dβ: this replica's own sums

        return y, grad

    return forward(x, gamma, beta), mean, variance


def _masked_training(x, gamma, beta, axis, epsilon, mask, statistics=None):
    """The training-mode op with statistics over the unmasked positions
    (module docstring, "With a mask")."""
    rank = len(x.shape)
    axes = _reduction_axes(rank, axis)
    channel_shape = _channel_shape(rank, axis, x.shape[axis])
    gamma = _parameter_or(gamma, 1.0, x, axis)
    beta = _parameter_or(beta, 0.0, x, axis)
    weights, total = _mask_weights(x, axis, mask)  # w_i, W
    mean, variance = (ops.reshape(ops.cast(statistic, x.dtype), channel_shape)
                      for statistic in statistics or batch_moments(x, axis, mask))

    @custom_gradient
    def forward(x, gamma, beta):
        inv_std = ops.rsqrt(variance + epsilon)  # s
        gamma_c = ops.reshape(gamma, channel_shape)
        y = (x - mean) * (gamma_c * inv_std) + ops.reshape(beta, channel_shape)

        def grad(upstream):
            centered = x - mean
            grad_beta = ops.sum(upstream, axes, keepdims=True)
            upstream_centered = ops.sum(upstream * centered, axes, keepdims=True)
            grad_variance = -0.5 * gamma_c * inv_std**3 * upstream_centered
            # Σ_j w_j (x_j − μ) = δ·μ, since μ·W = Σ_j w_j x_j and W = Σ_j w_j + δ.
            grad_mean = (-gamma_c * inv_std * grad_beta
                         - 2.0 / total * grad_variance * (MASK_GUARD * mean))
            grad_x = gamma_c * inv_std * upstream + weights * (
                (grad_mean + 2.0 * grad_variance * centered) / total)
            return (grad_x, ops.reshape(upstream_centered * inv_std, (-1,)),
                    ops.reshape(grad_beta, (-1,)))

        return y, grad

    return forward(x, gamma, beta), ops.reshape(mean, (-1,)), ops.reshape(variance, (-1,))


def batch_norm_inference(
    x,
    mean,
    variance,
    gamma=None,
    beta=None,
    axis: int = -1,
    epsilon: float = 1e-3,
):
    """Normalises ``x`` with given (moving) statistics: y = γ (x − μ)/√(σ² + ε) + β,
    with gradients for x, μ, σ², γ and β (module docstring)."""
    rank = len(x.shape)
    axes = _reduction_axes(rank, axis)
    channel_shape = _channel_shape(rank, axis, x.shape[axis])
    gamma = _parameter_or(gamma, 1.0, x, axis)
    beta = _parameter_or(beta, 0.0, x, axis)

    @custom_gradient
    def forward(x, mean, variance, gamma, beta):
        inv_std = ops.rsqrt(variance + epsilon)
        a = ops.reshape(gamma * inv_std, channel_shape)
        y = x * a + ops.reshape(beta - mean * gamma * inv_std, channel_shape)

        def grad(upstream):
            centered = x - ops.reshape(mean, channel_shape)
            grad_beta = ops.sum(upstream, axes)
            grad_gamma = ops.sum(upstream * centered, axes) * inv_std
            grad_x = upstream * a
            grad_mean = -grad_beta * gamma * inv_std
            grad_variance = -0.5 * grad_gamma * gamma * ops.square(inv_std)
            return grad_x, grad_mean, grad_variance, grad_gamma, grad_beta

        return y, grad

    return forward(x, ops.cast(mean, x.dtype), ops.cast(variance, x.dtype), gamma, beta)
