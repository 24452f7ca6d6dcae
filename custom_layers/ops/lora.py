"""Low-rank adaptation (LoRA, Hu et al. 2021) of a kernel, forward and
hand-written backward.

A frozen kernel W is adapted by a product of two small matrices, A with the
kernel's fan-in rows (all its axes but the last, flattened: n) and r
columns, and B with r rows and the kernel's output columns, scaled by s = α/r:

    W' = W + s·A·B

The layer computes with W' as with any kernel, so its backward delivers
G = dE/dW'. W' is linear in each of W, A and B:

    dE/dW = G        dE/dA = s·G·Bᵀ        dE/dB = s·Aᵀ·G

(A and G viewed as n×r and n×units matrices), the same two products as a
dense layer's dE/dx = dE/dy·Wᵀ and dE/dW = xᵀ·dE/dy.
"""

from __future__ import annotations

import tensorflow as tf


def lora_kernel(kernel: tf.Tensor, lora_a: tf.Tensor, lora_b: tf.Tensor,
                scale: float) -> tf.Tensor:
    """W' = W + s·A·B for a kernel of any rank (its last axis the outputs);
    the gradients of W, A and B as the module docstring derives them."""
    kernel = tf.convert_to_tensor(kernel)
    lora_a = tf.cast(tf.convert_to_tensor(lora_a), kernel.dtype)
    lora_b = tf.cast(tf.convert_to_tensor(lora_b), kernel.dtype)
    units = kernel.shape[-1]
    rank = lora_b.shape[0]

    @tf.custom_gradient
    def forward(kernel, lora_a, lora_b):
        a_matrix = tf.reshape(lora_a, [-1, rank])
        update = tf.reshape(tf.matmul(a_matrix, lora_b), tf.shape(kernel))
        merged = kernel + tf.constant(scale, kernel.dtype) * update

        def grad(upstream):
            g_matrix = tf.reshape(upstream, [-1, units])
            s = tf.constant(scale, upstream.dtype)
            grad_a = s * tf.matmul(g_matrix, lora_b, transpose_b=True)
            grad_b = s * tf.matmul(a_matrix, g_matrix, transpose_a=True)
            return upstream, tf.reshape(grad_a, tf.shape(lora_a)), grad_b

        return merged, grad

    return forward(kernel, lora_a, lora_b)
