"""Fully connected layer: y = xW + b, with the backward pass written out.

Lecture notation: a unit computes y = Σ_i w_i x_i + b (h = g(Wᵀx + b) once the
activation g is applied, which the layer does after this op). With the
upstream gradient dE/dy the chain rule gives

    dE/dx = dE/dy · Wᵀ            (each input feeds every unit through w)
    dE/dW = xᵀ · dE/dy            (outer product x ⊗ dE/dy, summed over the batch)
    dE/db = Σ_batch dE/dy

Inputs of any rank ≥ 2 are supported; the contraction runs over the last axis,
the remaining leading axes all count as batch, as in ``keras.layers.Dense``.

A sparse x (a ``tf.SparseTensor`` of rank 2, its non-zeros v_k at (i_k, j_k))
needs only its non-zeros: y = x·W sums v_k·W[j_k] into row i_k, and

    dE/dW = xᵀ · dE/dy = Σ_k v_k · dE/dy[i_k]  added into row j_k of W
    dE/dv_k = dE/dy[i_k] · W[j_k]

so dE/dW comes out as ``tf.IndexedSlices`` (rows j_k only), as for Keras'
layer, and the input's gradient as the gradient of its values.
"""

from __future__ import annotations

import tensorflow as tf


def _flatten_leading(tensor: tf.Tensor) -> tf.Tensor:
    """Views an (..., n) tensor as a matrix (batch, n)."""
    return tf.reshape(tensor, [-1, tf.shape(tensor)[-1]])


def _matmul_last_axis(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """x @ kernel over the last axis of x, for any rank of x."""
    if x.shape.rank == 2:
        return tf.matmul(x, kernel)
    return tf.tensordot(x, kernel, axes=[[x.shape.rank - 1], [0]])


def dense(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | None = None) -> tf.Tensor:
    """y = x·W (+ b) over the last axis of ``x``; gradients dE/dx = dE/dy·Wᵀ,
    dE/dW = xᵀ·dE/dy, dE/db = Σ dE/dy."""
    if isinstance(x, tf.SparseTensor):
        y = _dense_sparse(x, kernel)
        return y if bias is None else y + bias
    if bias is None:
        return _dense_no_bias(x, kernel)
    return _dense_bias(x, kernel, bias)


def _dense_sparse(x: tf.SparseTensor, kernel: tf.Tensor) -> tf.Tensor:
    """y = x·W for a rank-2 sparse x (module docstring)."""
    if x.shape.rank != 2:
        raise ValueError(f"Sparse inputs to dense must have rank 2; received shape {x.shape}.")
    rows, columns = x.indices[:, 0], x.indices[:, 1]

    @tf.custom_gradient
    def forward(values, kernel):
        y = tf.sparse.sparse_dense_matmul(
            tf.SparseTensor(x.indices, values, x.dense_shape), kernel)

        def grad(upstream):
            upstream_rows = tf.gather(upstream, rows)  # dE/dy[i_k]
            grad_values = tf.reduce_sum(upstream_rows * tf.gather(kernel, columns), axis=-1)
            grad_kernel = tf.IndexedSlices(values[:, None] * upstream_rows, columns,
                                           tf.shape(kernel, out_type=columns.dtype))
            return grad_values, grad_kernel

        return y, grad

    return forward(x.values, kernel)


def _grad_input_and_kernel(x, kernel, upstream):
    grad_x = _matmul_last_axis(upstream, tf.transpose(kernel))
    grad_kernel = tf.matmul(_flatten_leading(x), _flatten_leading(upstream), transpose_a=True)
    return grad_x, grad_kernel


@tf.custom_gradient
def _dense_no_bias(x, kernel):
    y = _matmul_last_axis(x, kernel)

    def grad(upstream):
        return _grad_input_and_kernel(x, kernel, upstream)

    return y, grad


@tf.custom_gradient
def _dense_bias(x, kernel, bias):
    y = tf.nn.bias_add(_matmul_last_axis(x, kernel), bias)

    def grad(upstream):
        grad_x, grad_kernel = _grad_input_and_kernel(x, kernel, upstream)
        grad_bias = tf.reduce_sum(_flatten_leading(upstream), axis=0)
        return grad_x, grad_kernel, grad_bias

    return y, grad
