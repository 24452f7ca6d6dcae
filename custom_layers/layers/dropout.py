"""``Dropout``: inverted dropout, a drop-in for ``keras.layers.Dropout``."""

from __future__ import annotations

import keras

from custom_layers import ops
from custom_layers.arguments import build_at_init
from custom_layers.backends import kernels


@keras.saving.register_keras_serializable(package="custom_layers")
class Dropout(keras.layers.Layer):
    """Drops each unit with probability ``rate`` while training and scales the
    kept ones by 1/(1 − rate); the identity at inference.

    The keep-mask is drawn by Keras' own dropout from a
    ``keras.random.SeedGenerator`` (:meth:`keep_mask`), outside the op, so a
    layer seeded like a ``keras.layers.Dropout`` drops the same units and a
    compiled step draws a new mask every step.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError("Invalid value received for argument `rate`. Expected a float value "
                             f"between 0 and 1. Received: rate={rate}")
        self.rate = rate
        self.noise_shape = _noise_shape(noise_shape)
        self.seed = seed
        if self.rate > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        build_at_init(self)

    def _concrete_noise_shape(self, inputs):
        if self.noise_shape is None:
            return keras.ops.shape(inputs)
        dynamic = keras.ops.shape(inputs)
        return tuple(dynamic[i] if size is None else size
                     for i, size in enumerate(self.noise_shape))

    def keep_mask(self, inputs):
        """m: true where a unit is kept, drawn as Keras' dropout draws it on the
        backend in use, from the layer's seed generator, so a layer seeded like
        a ``keras.layers.Dropout`` drops the same units on every backend."""
        return kernels("dropout").dropout_keep_mask(
            self._concrete_noise_shape(inputs), self.rate, inputs.dtype, self.seed_generator)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if self.rate == 1:  # every unit dropped: y = 0, dE/dx = 0
            return ops.dropout(inputs, keras.ops.zeros_like(inputs, "bool"), self.rate)
        return ops.dropout(inputs, self.keep_mask(inputs), self.rate)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self.rate,
            "noise_shape": self.noise_shape,
            "seed": self.seed,
        }


def _noise_shape(noise_shape) -> tuple | None:
    """Keras' check of ``noise_shape``: None, or integers > 0 and Nones."""
    if noise_shape is None:
        return None
    if isinstance(noise_shape, str):
        raise ValueError("Invalid value received for argument `noise_shape`. Expected a tuple or "
                         f"list of integers. Received: noise_shape={noise_shape}")
    try:
        noise_shape = tuple(noise_shape)
    except TypeError:
        raise ValueError("Invalid value received for argument `noise_shape`. Expected an iterable "
                         f"of integers (e.g., a tuple or list). Received: noise_shape={noise_shape}"
                         ) from None
    for index, size in enumerate(noise_shape):
        if size is None:
            continue
        if isinstance(size, bool) or not isinstance(size, int):
            raise ValueError("Invalid value received for argument `noise_shape`. Expected all "
                             "elements to be integers or None. Received element at index "
                             f"{index}: {size} (type: {type(size).__name__})")
        if size <= 0:
            raise ValueError("Invalid value received for argument `noise_shape`. Expected all "
                             "dimensions to be positive integers or None. Received negative or "
                             f"zero value at index {index}: {size}")
    return noise_shape
