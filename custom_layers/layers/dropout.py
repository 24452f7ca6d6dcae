"""``Dropout``: inverted dropout, a drop-in for ``keras.layers.Dropout``."""

from __future__ import annotations

import keras
import tensorflow as tf

from custom_layers import ops
from custom_layers.arguments import dropout_rate


@keras.saving.register_keras_serializable(package="custom_layers")
class Dropout(keras.layers.Layer):
    """Drops each unit with probability ``rate`` while training and scales the
    kept ones by 1/(1 − rate); the identity at inference.

    The keep-mask is drawn exactly as Keras draws it (a uniform sample from a
    ``keras.random.SeedGenerator``, kept where ≥ rate), so a layer seeded like
    a ``keras.layers.Dropout`` drops the same units.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = dropout_rate(rate, "rate")
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        if self.rate > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def _concrete_noise_shape(self, inputs):
        if self.noise_shape is None:
            return tf.shape(inputs)
        dynamic = tf.shape(inputs)
        return tf.stack([dynamic[i] if size is None else size
                         for i, size in enumerate(self.noise_shape)])

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        uniform = keras.random.uniform(
            self._concrete_noise_shape(inputs), dtype=inputs.dtype, seed=self.seed_generator
        )
        return ops.dropout(inputs, uniform >= self.rate, self.rate)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self.rate,
            "noise_shape": self.noise_shape,
            "seed": self.seed,
        }
