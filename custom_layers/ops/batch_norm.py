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

The output is computed as y = x·a + (β − μ·a) with a = γ/√(σ² + ε), the same
arithmetic as ``tf.nn.batch_normalization`` so float32 results agree with
Keras' layer to rounding.
"""

from __future__ import annotations

import tensorflow as tf


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


def batch_norm_training(
    x: tf.Tensor,
    gamma: tf.Tensor | None = None,
    beta: tf.Tensor | None = None,
    axis: int = -1,
    epsilon: float = 1e-3,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Normalises ``x`` with its own batch statistics along ``axis``.

    Returns (y, μ_B, σ²_B). The statistics (biased variance) are returned for
    the moving averages and carry no gradient; the gradient of y with respect
    to x already accounts for μ_B and σ²_B depending on x (module docstring).
    """
    rank = x.shape.rank
    axes = _reduction_axes(rank, axis)
    channel_shape = _channel_shape(rank, axis, x.shape[axis])
    gamma = _parameter_or(gamma, 1.0, x, axis)
    beta = _parameter_or(beta, 0.0, x, axis)
    mean, variance = tf.nn.moments(tf.stop_gradient(x), axes)

    @tf.custom_gradient
    def forward(x, gamma, beta):
        inv_std = tf.math.rsqrt(variance + epsilon)
        a = tf.reshape(gamma * inv_std, channel_shape)
        y = x * a + tf.reshape(beta - mean * gamma * inv_std, channel_shape)

        def grad(upstream):
            count = tf.cast(tf.size(x) // tf.size(mean), x.dtype)
            x_hat = (x - tf.reshape(mean, channel_shape)) * tf.reshape(inv_std, channel_shape)
            grad_beta = tf.reduce_sum(upstream, axes)
            grad_gamma = tf.reduce_sum(upstream * x_hat, axes)
            grad_x = (a / count) * (
                count * upstream
                - tf.reshape(grad_beta, channel_shape)
                - x_hat * tf.reshape(grad_gamma, channel_shape)
            )
            return grad_x, grad_gamma, grad_beta

        return y, grad

    return forward(x, gamma, beta), mean, variance


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
