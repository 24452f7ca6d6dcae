"""``keras.ops.custom_gradient`` with the backward written as ``grad(upstream)``.

Keras' backends call a custom gradient's backward differently: TensorFlow
with the upstream gradients as positional arguments (one per output),
JAX with one cotangent of the output's structure. The ops write their
backward once, as ``grad(upstream)`` returning one gradient per input (None
where an input carries none); :func:`custom_gradient` adapts it.
Variables among the inputs are read first (TensorFlow's custom gradients
refuse to capture variables they were not told of).
"""

from __future__ import annotations

from typing import Callable

import keras

from custom_layers.backends import kernels


def custom_gradient(forward: Callable) -> Callable:
    """``forward(*inputs) -> (y, grad)`` as a function whose gradient is
    ``grad(dE/dy)``, not the autodiff of the forward."""

    @keras.ops.custom_gradient
    def op(*inputs):
        y, grad = forward(*inputs)

        def backward(*upstreams, upstream=None):
            if upstream is None:
                upstream = upstreams[0] if len(upstreams) == 1 else list(upstreams)
            gradients = grad(upstream)
            return tuple(gradients) if isinstance(gradients, list) else gradients

        return y, backward

    op_name = forward.__qualname__.split(".")[0].lstrip("_")

    def call(*inputs):
        return op(*kernels(op_name).read_variables(inputs))

    return call
