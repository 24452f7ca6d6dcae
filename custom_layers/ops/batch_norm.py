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

Synchronized over the replicas of a ``tf.distribute`` strategy, the batch is
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
- ``"fused"`` — TensorFlow's ``FusedBatchNormV3`` for the forward pass and,
  inside the ``custom_gradient``, ``FusedBatchNormGradV3`` for the backward
  pass. That kernel evaluates exactly the three sums above (dE/dβ, dE/dγ and
  dE/dx from them) in two sweeps over the tensor instead of five, as
  ``conv`` uses ``Conv2DBackpropFilter`` for its derived sum. Its results
  agree with the reference to float32 rounding (≤ 1e-5 relative).

``implementation="auto"`` (the default) takes the fused kernel where it is
faster: inputs with spatial axes (rank ≥ 3) whose channel axis is the last,
in float32, float16 or bfloat16 — the feature maps of convolutional nets,
where it measured ~1.4× faster for forward + backward. It takes the
reference for rank-2 inputs (dense features, where the reference is the
faster), for any other channel axis, and for float64 (no fused kernel).
float16 and bfloat16 inputs are normalised in float32 either way: the
statistics and the backward sums accumulate in float32, the output is cast
back to the input's dtype.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from custom_layers.ops.reshaping import reshape

IMPLEMENTATIONS = ("auto", "fused", "reference")
MASK_GUARD = 1e-7  # δ: keras.backend.epsilon(), as Keras' masked moments
_HALF_PRECISION = (tf.float16, tf.bfloat16)
_FUSED_DTYPES = (tf.float32, *_HALF_PRECISION)


def _channel_shape(rank: int, axis: int, channels: int) -> list[int]:
    shape = [1] * rank
    shape[axis] = channels
    return shape


def _reduction_axes(rank: int, axis: int) -> list[int]:
    axis = axis % rank
    return [i for i in range(rank) if i != axis]


def _parameter_or(value, default: float, x: tf.Tensor, axis: int) -> tf.Tensor:
    if value is not None:
        return tf.cast(value, x.dtype)
    return tf.fill([x.shape[axis]], tf.constant(default, x.dtype))


def fused_kernel_applies(x: tf.Tensor, axis: int = -1) -> bool:
    """Whether ``implementation="auto"`` takes the fused kernel for ``x``
    normalised along ``axis`` (module docstring)."""
    rank = x.shape.rank
    return rank >= 3 and axis % rank == rank - 1 and x.dtype in _FUSED_DTYPES


def batch_norm_training(
    x: tf.Tensor,
    gamma: tf.Tensor | None = None,
    beta: tf.Tensor | None = None,
    axis: int = -1,
    epsilon: float = 1e-3,
    implementation: str = "auto",
    mask: tf.Tensor | None = None,
    statistics: tuple[tf.Tensor, tf.Tensor] | None = None,
    synchronized: bool = False,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Normalises ``x`` with its own batch statistics along ``axis``.

    Returns (y, μ_B, σ²_B). The statistics (biased variance, float32 for
    half-precision ``x``) are returned for the moving averages and carry no
    gradient; the gradient of y with respect to x already accounts for μ_B
    and σ²_B depending on x (module docstring). ``implementation`` is
    "auto", "fused" or "reference" (module docstring); "fused" needs the
    channel axis last and a float32, float16 or bfloat16 ``x``. ``mask``
    (the shape of ``x`` without its last axis; true where a position counts)
    restricts the statistics to the unmasked positions, through the
    reference (module docstring). ``statistics`` — (μ_B, σ²_B) from
    :func:`batch_moments` of the same ``x`` and ``mask`` — are used instead of
    being computed again (batch renormalization needs them first), through the
    reference. ``synchronized`` takes the statistics over the batches of all
    replicas of the current ``tf.distribute`` replica context (module
    docstring); without a mask only.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            "Invalid value for argument `implementation`. Expected one of "
            f"{IMPLEMENTATIONS}. Received: implementation={implementation!r}")
    if implementation == "fused" and (mask is not None or statistics is not None or synchronized):
        raise ValueError("The fused batch-norm kernel computes its own statistics over every "
                         "position of this replica; use implementation='reference' (or 'auto') "
                         "with a mask, given statistics or synchronized=True.")
    if mask is not None:
        if mask.shape.rank != x.shape.rank - 1:
            raise ValueError("The mask provided should be one dimension less than the inputs. "
                             f"Received: mask.shape={mask.shape}, inputs.shape={x.shape}")
        reference = functools.partial(_masked_training, mask=mask, statistics=statistics)
    elif statistics is None and not synchronized and (implementation == "fused" or (
            implementation == "auto" and fused_kernel_applies(x, axis))):
        return _fused_training(x, gamma, beta, axis, epsilon)
    else:
        reference = functools.partial(_reference_training, statistics=statistics,
                                      synchronized=synchronized)
    if x.dtype in _HALF_PRECISION:
        y, mean, variance = reference(
            tf.cast(x, tf.float32), _maybe_cast(gamma, tf.float32),
            _maybe_cast(beta, tf.float32), axis, epsilon)
        return tf.cast(y, x.dtype), mean, variance
    return reference(x, gamma, beta, axis, epsilon)


def batch_moments(x: tf.Tensor, axis: int = -1,
                  mask: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """(μ_B, σ²_B) per channel as ``batch_norm_training`` computes them (over
    the unmasked positions with a mask; float32 for half-precision ``x``),
    without gradient: what batch renormalization needs before normalising."""
    x = tf.stop_gradient(x)
    if x.dtype in _HALF_PRECISION:
        x = tf.cast(x, tf.float32)
    axes = _reduction_axes(x.shape.rank, axis)
    if mask is None:
        return tf.nn.moments(x, axes)
    weights, total = _mask_weights(x, axis, mask)
    mean = tf.reduce_sum(weights * x, axes, keepdims=True) / total
    variance = tf.reduce_sum(weights * tf.square(x - mean), axes, keepdims=True) / total
    return tf.reshape(mean, [-1]), tf.reshape(variance, [-1])


def _mask_weights(x: tf.Tensor, axis: int, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The weights w_i (the mask as 0/1, broadcastable against ``x``) and
    W = Σ_i w_i + δ per channel (keepdims)."""
    rank = x.shape.rank
    weights = tf.cast(tf.cast(tf.expand_dims(mask, -1), tf.bool), x.dtype)
    if axis % rank == rank - 1:  # every channel counts the same positions
        # (the mask may broadcast over other axes too: count at x's shape, one channel)
        positions = tf.concat([tf.shape(x)[:-1], [1]], axis=0)
        total = tf.reduce_sum(tf.broadcast_to(weights, positions)) + MASK_GUARD
    else:
        total = tf.reduce_sum(tf.broadcast_to(weights, tf.shape(x)),
                              _reduction_axes(rank, axis), keepdims=True) + MASK_GUARD
    return weights, total


def _maybe_cast(value, dtype):
    return None if value is None else tf.cast(value, dtype)


def _fused_training(x, gamma, beta, axis, epsilon):
    """The training-mode op through ``FusedBatchNormV3`` / ``FusedBatchNormGradV3``.

    The kernels take NHWC tensors; any rank ≥ 2 with the channel axis last
    is viewed as one (the sums run over all axes but the channel axis alike).
    The kernel's batch variance is Bessel-corrected, m/(m − 1)·σ²_B; it is
    scaled back to σ²_B, the biased variance Keras' moving average uses.
    """
    rank = x.shape.rank
    if axis % rank != rank - 1 or x.dtype not in _FUSED_DTYPES:
        raise ValueError(
            "The fused batch-norm kernel needs the channel axis last and a float32, float16 or "
            f"bfloat16 input; got axis={axis} for rank {rank} and dtype {x.dtype.name}. "
            "Use implementation='reference' (or 'auto').")
    channels = x.shape[-1]
    shape = tf.shape(x)
    x4 = x if rank == 4 else reshape(x, [shape[0], -1, 1, channels])
    gamma = tf.ones([channels], tf.float32) if gamma is None else tf.cast(gamma, tf.float32)
    beta = tf.zeros([channels], tf.float32) if beta is None else tf.cast(beta, tf.float32)
    y, mean, corrected_variance, saved_mean, saved_variance, workspace = tf.raw_ops.FusedBatchNormV3(
        x=tf.stop_gradient(x4), scale=tf.stop_gradient(gamma), offset=tf.stop_gradient(beta),
        mean=tf.zeros([0]), variance=tf.zeros([0]), epsilon=epsilon, is_training=True)

    @tf.custom_gradient
    def forward(x4, gamma, beta):
        def grad(upstream):
            # dE/dx, dE/dγ = Σ dE/dy·x̂, dE/dβ = Σ dE/dy (module docstring).
            grad_x, grad_gamma, grad_beta, _, _ = tf.raw_ops.FusedBatchNormGradV3(
                y_backprop=upstream, x=x4, scale=gamma, reserve_space_1=saved_mean,
                reserve_space_2=saved_variance, reserve_space_3=workspace,
                epsilon=epsilon, is_training=True)
            return grad_x, grad_gamma, grad_beta

        return tf.identity(y), grad

    y = forward(x4, gamma, beta)
    if rank != 4:
        y = reshape(y, shape)
    count = tf.cast(tf.size(x4) // channels, tf.float32)
    variance = corrected_variance * (tf.maximum(count - 1.0, 1.0) / count)
    return y, mean, variance


def _reference_training(x, gamma, beta, axis, epsilon, statistics=None, synchronized=False):
    """The training-mode op as the module docstring's equations; with
    ``synchronized`` its sums run over the batches of all replicas."""
    rank = x.shape.rank
    axes = _reduction_axes(rank, axis)
    channel_shape = _channel_shape(rank, axis, x.shape[axis])
    gamma = _parameter_or(gamma, 1.0, x, axis)
    beta = _parameter_or(beta, 0.0, x, axis)
    all_sum = _sum_over_replicas if synchronized else (lambda value: value)
    count = all_sum(tf.cast(tf.size(x) // x.shape[axis], x.dtype))  # m (M over the replicas)
    constant_x = tf.stop_gradient(x)
    if synchronized:  # as Keras: σ² = E[x²] − μ² from all-reduced sums
        mean = all_sum(tf.reduce_sum(constant_x, axes)) / count
        variance = tf.maximum(
            all_sum(tf.reduce_sum(tf.square(constant_x), axes)) / count - tf.square(mean), 0.0)
    elif statistics is None:
        mean, variance = tf.nn.moments(constant_x, axes)
    else:
        mean, variance = (tf.stop_gradient(tf.cast(statistic, x.dtype)) for statistic in statistics)

    @tf.custom_gradient
    def forward(x, gamma, beta):
        inv_std = tf.math.rsqrt(variance + epsilon)
        a = tf.reshape(gamma * inv_std, channel_shape)
        y = x * a + tf.reshape(beta - mean * gamma * inv_std, channel_shape)

        def grad(upstream):
            x_hat = (x - tf.reshape(mean, channel_shape)) * tf.reshape(inv_std, channel_shape)
            grad_beta = tf.reduce_sum(upstream, axes)
            grad_gamma = tf.reduce_sum(upstream * x_hat, axes)
            grad_x = (a / count) * (
                count * upstream
                - tf.reshape(all_sum(grad_beta), channel_shape)
                - x_hat * tf.reshape(all_sum(grad_gamma), channel_shape)
            )
            return grad_x, grad_gamma, grad_beta  # dE/dγ, dE/dβ: this replica's own sums

        return y, grad

    return forward(x, gamma, beta), mean, variance


def _sum_over_replicas(value: tf.Tensor) -> tf.Tensor:
    """Σ over the replicas of the current ``tf.distribute`` replica context."""
    context = tf.distribute.get_replica_context()
    return value if context is None else context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _masked_training(x, gamma, beta, axis, epsilon, mask, statistics=None):
    """The training-mode op with statistics over the unmasked positions
    (module docstring, "With a mask")."""
    rank = x.shape.rank
    axes = _reduction_axes(rank, axis)
    channel_shape = _channel_shape(rank, axis, x.shape[axis])
    gamma = _parameter_or(gamma, 1.0, x, axis)
    beta = _parameter_or(beta, 0.0, x, axis)
    weights, total = _mask_weights(x, axis, mask)  # w_i, W
    mean, variance = (tf.reshape(tf.cast(statistic, x.dtype), channel_shape)
                      for statistic in statistics or batch_moments(x, axis, mask))

    @tf.custom_gradient
    def forward(x, gamma, beta):
        inv_std = tf.math.rsqrt(variance + epsilon)  # s
        gamma_c = tf.reshape(gamma, channel_shape)
        y = (x - mean) * (gamma_c * inv_std) + tf.reshape(beta, channel_shape)

        def grad(upstream):
            centered = x - mean
            grad_beta = tf.reduce_sum(upstream, axes, keepdims=True)
            upstream_centered = tf.reduce_sum(upstream * centered, axes, keepdims=True)
            grad_variance = -0.5 * gamma_c * inv_std**3 * upstream_centered
            # Σ_j w_j (x_j − μ) = δ·μ, since μ·W = Σ_j w_j x_j and W = Σ_j w_j + δ.
            grad_mean = (-gamma_c * inv_std * grad_beta
                         - 2.0 / total * grad_variance * (MASK_GUARD * mean))
            grad_x = gamma_c * inv_std * upstream + weights * (
                (grad_mean + 2.0 * grad_variance * centered) / total)
            return (grad_x, tf.reshape(upstream_centered * inv_std, [-1]),
                    tf.reshape(grad_beta, [-1]))

        return y, grad

    return forward(x, gamma, beta), tf.reshape(mean, [-1]), tf.reshape(variance, [-1])


def batch_norm_inference(
    x: tf.Tensor,
    mean: tf.Tensor,
    variance: tf.Tensor,
    gamma: tf.Tensor | None = None,
    beta: tf.Tensor | None = None,
    axis: int = -1,
    epsilon: float = 1e-3,
) -> tf.Tensor:
    """Normalises ``x`` with given (moving) statistics: y = γ (x − μ)/√(σ² + ε) + β,
    with gradients for x, μ, σ², γ and β (module docstring)."""
    rank = x.shape.rank
    axes = _reduction_axes(rank, axis)
    channel_shape = _channel_shape(rank, axis, x.shape[axis])
    gamma = _parameter_or(gamma, 1.0, x, axis)
    beta = _parameter_or(beta, 0.0, x, axis)

    @tf.custom_gradient
    def forward(x, mean, variance, gamma, beta):
        inv_std = tf.math.rsqrt(variance + epsilon)
        a = tf.reshape(gamma * inv_std, channel_shape)
        y = x * a + tf.reshape(beta - mean * gamma * inv_std, channel_shape)

        def grad(upstream):
            centered = x - tf.reshape(mean, channel_shape)
            grad_beta = tf.reduce_sum(upstream, axes)
            grad_gamma = tf.reduce_sum(upstream * centered, axes) * inv_std
            grad_x = upstream * a
            grad_mean = -grad_beta * gamma * inv_std
            grad_variance = -0.5 * grad_gamma * gamma * tf.square(inv_std)
            return grad_x, grad_mean, grad_variance, grad_gamma, grad_beta

        return y, grad

    return forward(x, tf.cast(mean, x.dtype), tf.cast(variance, x.dtype), gamma, beta)
