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

from keras import ops

from custom_layers.ops._gradient import custom_gradient


def lora_kernel(kernel, lora_a, lora_b, scale: float):
    """W' = W + s·A·B for a kernel of any rank (its last axis the outputs);
    the gradients of W, A and B as the module docstring derives them."""
    kernel = ops.convert_to_tensor(kernel)
    lora_a = ops.cast(ops.convert_to_tensor(lora_a), kernel.dtype)
    lora_b = ops.cast(ops.convert_to_tensor(lora_b), kernel.dtype)
    units = kernel.shape[-1]
    rank = lora_b.shape[0]

    @custom_gradient
    def forward(kernel, lora_a, lora_b):
        a_matrix = ops.reshape(lora_a, (-1, rank))
        update = ops.reshape(ops.matmul(a_matrix, lora_b), kernel.shape)
        merged = kernel + ops.convert_to_tensor(scale, kernel.dtype) * update

        def grad(upstream):
            g_matrix = ops.reshape(upstream, (-1, units))
            s = ops.convert_to_tensor(scale, upstream.dtype)
            grad_a = s * ops.matmul(g_matrix, ops.transpose(lora_b))
            grad_b = s * ops.matmul(ops.transpose(a_matrix), g_matrix)
            return upstream, ops.reshape(grad_a, lora_a.shape), grad_b

        return merged, grad

    return forward(kernel, lora_a, lora_b)
