"""``Flatten`` and ``Reshape``: drop-ins for their ``keras.layers`` twins,
their backward the reshape back (:mod:`custom_layers.ops.reshaping`)."""

from __future__ import annotations

import math

import keras

from custom_layers import ops
from custom_layers.arguments import build_at_init, standardize_data_format


@keras.saving.register_keras_serializable(package="custom_layers")
class Flatten(keras.layers.Layer):
    """(batch, …) → (batch, features); channels-first inputs are moved to
    channels last first, as Keras does."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        self.input_spec = keras.layers.InputSpec(min_ndim=1)
        build_at_init(self)

    def call(self, inputs):
        return ops.flatten(inputs, channels_first=self.data_format == "channels_first")

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = math.prod(rest) if all(isinstance(d, int) for d in rest) else None
        return (input_shape[0], 1 if not rest else size)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


@keras.saving.register_keras_serializable(package="custom_layers")
class Reshape(keras.layers.Layer):
    """(batch, …) → (batch, *target_shape); one entry may be -1."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape)
        if sum(d == -1 for d in self.target_shape) > 1 or any(
                not isinstance(d, int) or (d <= 0 and d != -1) for d in self.target_shape):
            raise ValueError("Invalid value for argument `target_shape`. Expected positive "
                             "integers and at most one -1. "
                             f"Received: target_shape={self.target_shape}")
        build_at_init(self)

    def _resolved(self, input_shape):
        shape = list(self.target_shape)
        rest = input_shape[1:]
        if -1 in shape and all(isinstance(d, int) for d in rest):
            known = math.prod(d for d in shape if d != -1)
            shape[shape.index(-1)] = math.prod(rest) // known
        return tuple(None if d == -1 else d for d in shape)

    def call(self, inputs):
        target = [-1 if d is None else d for d in self._resolved(tuple(inputs.shape))]
        return ops.reshape(inputs, [keras.ops.shape(inputs)[0], *target])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._resolved(tuple(input_shape)))

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}
