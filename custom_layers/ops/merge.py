"""Adding tensors (a residual connection's y = x + F(x)), forward and
hand-written backward: y = Σ_k x_k, so dE/dx_k = dE/dy — summed over the
axes along which x_k was broadcast to y's shape, since each of its values
fed every position of those axes."""

from __future__ import annotations

from typing import Sequence

from keras import ops

from custom_layers.backends import kernels
from custom_layers.ops._gradient import custom_gradient


def add(inputs: Sequence):
    """y = x_1 + … + x_n (broadcasting); dE/dx_k = dE/dy summed back to x_k's shape."""
    inputs = [ops.convert_to_tensor(x) for x in inputs]
    backend = kernels("add")

    @custom_gradient
    def forward(*inputs):
        y = inputs[0]
        for x in inputs[1:]:
            y = y + x

        def grad(upstream):
            # The axes each x was broadcast along: the backend's bookkeeping of them.
            return [backend.sum_to_shape(upstream, x) for x in inputs]

        return y, grad

    return forward(*inputs)
