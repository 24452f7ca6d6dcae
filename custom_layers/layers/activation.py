"""``Activation``: h = g(z) with g' written out, a drop-in for ``keras.layers.Activation``."""

from __future__ import annotations

import keras

from custom_layers.arguments import build_at_init
from custom_layers.ops import activations


@keras.saving.register_keras_serializable(package="custom_layers")
class Activation(keras.layers.Layer):
    """Applies an activation by name — linear, relu, leaky_relu, elu,
    sigmoid, tanh, softplus, silu, gelu or softmax — whose backward pass is
    the derivative in :mod:`custom_layers.ops.activations`. Same config as
    ``keras.layers.Activation`` (``{"activation": name}``); under mixed
    precision it computes in the layer's compute dtype, as Keras' does."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.activation_name = "linear" if activation is None else activation
        self.activation = activations.get(self.activation_name)
        build_at_init(self)

    def call(self, inputs):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "activation": self.activation_name}
