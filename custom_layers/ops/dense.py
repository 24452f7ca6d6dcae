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
layer, and the input's gradient as the gradient of its values. Sparse inputs
are TensorFlow's: that path is :func:`custom_layers.backends.tensorflow.sparse_dense`.
"""

from __future__ import annotations

from keras import ops

from custom_layers.backends import kernels
from custom_layers.ops._gradient import custom_gradient


def _flatten_leading(tensor):
    """Views an (..., n) tensor as a matrix (batch, n)."""
    return ops.reshape(tensor, (-1, tensor.shape[-1]))


def dense(x, kernel, bias=None):
    """y = x·W (+ b) over the last axis of ``x``; gradients dE/dx = dE/dy·Wᵀ,
    dE/dW = xᵀ·dE/dy, dE/db = Σ dE/dy."""
    backend = kernels("dense")
    if backend.is_sparse(x):
        y = backend.sparse_dense(x, kernel)
        return y if bias is None else y + bias
    if bias is None:
        return _dense_no_bias(x, kernel)
    return _dense_bias(x, kernel, bias)


def _grad_input_and_kernel(x, kernel, upstream):
    grad_x = ops.matmul(upstream, ops.transpose(kernel))
    # xᵀ·dE/dy over every leading (batch) axis, without writing xᵀ out
    grad_kernel = kernels("dense").transposed_matmul(
        _flatten_leading(x), _flatten_leading(upstream))
    return grad_x, grad_kernel


@custom_gradient
def _dense_no_bias(x, kernel):
    y = ops.matmul(x, kernel)

    def grad(upstream):
        return _grad_input_and_kernel(x, kernel, upstream)

    return y, grad


@custom_gradient
def _dense_bias(x, kernel, bias):
    y = kernels("dense").bias_add(ops.matmul(x, kernel), bias)

    def grad(upstream):
        grad_x, grad_kernel = _grad_input_and_kernel(x, kernel, upstream)
        grad_bias = ops.sum(_flatten_leading(upstream), axis=0)
        return grad_x, grad_kernel, grad_bias

    return y, grad
