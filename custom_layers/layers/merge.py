"""``Add``: y = x_1 + … + x_n, a drop-in for ``keras.layers.Add`` (:mod:`custom_layers.ops.merge`)."""

from __future__ import annotations

import keras
import tensorflow as tf

from custom_layers import ops
from custom_layers.arguments import build_at_init


@keras.saving.register_keras_serializable(package="custom_layers")
class Add(keras.layers.Layer):
    """Adds a list of inputs of broadcastable shapes (the residual connection
    of a ResNet block); the output's mask is the AND of the inputs' masks."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        build_at_init(self)

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or not inputs:
            raise ValueError("A merge layer should be called on a list of inputs. "
                             f"Received: inputs={inputs} (not a list of tensors)")
        return ops.add(inputs)

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape[0])
        for other in input_shape[1:]:
            shape = tf.broadcast_static_shape(shape, tf.TensorShape(other))
        return tuple(shape.as_list())

    def compute_mask(self, inputs, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        masks = [m for m in mask if m is not None]
        combined = masks[0]
        for m in masks[1:]:
            combined = tf.logical_and(combined, m)
        return combined
