"""Adding tensors (a residual connection's y = x + F(x)), forward and
hand-written backward: y = Σ_k x_k, so dE/dx_k = dE/dy — summed over the
axes along which x_k was broadcast to y's shape, since each of its values
fed every position of those axes."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def add(inputs: Sequence[tf.Tensor]) -> tf.Tensor:
    """y = x_1 + … + x_n (broadcasting); dE/dx_k = dE/dy summed back to x_k's shape."""
    inputs = [tf.convert_to_tensor(x) for x in inputs]

    @tf.custom_gradient
    def forward(*inputs):
        y = inputs[0]
        for x in inputs[1:]:
            y = y + x

        def grad(upstream):
            gradients = []
            for x in inputs:
                # The axes x was broadcast along (TensorFlow's own bookkeeping of them).
                _, broadcast_axes = tf.raw_ops.BroadcastGradientArgs(s0=tf.shape(y), s1=tf.shape(x))
                gradients.append(tf.reshape(tf.reduce_sum(upstream, broadcast_axes), tf.shape(x)))
            return gradients

        return y, grad

    return forward(*inputs)
