"""``AveragePooling1D/2D`` and ``GlobalAveragePooling1D/2D``: drop-ins for
their ``keras.layers`` twins (:mod:`custom_layers.ops.average_pooling`)."""

from __future__ import annotations

import keras

from custom_layers import ops
from custom_layers.arguments import build_at_init, standardize_data_format
from custom_layers.layers.pooling import BaseMaxPooling


class BaseAveragePooling(BaseMaxPooling):
    """Average pooling: max pooling's arguments, shapes and layouts, the mean
    instead of the max."""


@keras.saving.register_keras_serializable(package="custom_layers")
class AveragePooling1D(BaseAveragePooling):
    """1-D average pooling; a drop-in for ``keras.layers.AveragePooling1D``."""

    rank = 1

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)

    def pool(self, inputs):
        return ops.avg_pool1d(inputs, self.pool_size[0], self.strides[0], self.padding,
                              self.data_format)


@keras.saving.register_keras_serializable(package="custom_layers")
class AveragePooling2D(BaseAveragePooling):
    """2-D average pooling; a drop-in for ``keras.layers.AveragePooling2D``."""

    rank = 2

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)

    def pool(self, inputs):
        return ops.avg_pool2d(inputs, self.pool_size, self.strides, self.padding,
                              self.data_format)


class BaseGlobalAveragePooling(keras.layers.Layer):
    """The mean over every step (1-D) or pixel (2-D) of each channel."""

    rank: int

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        self.keepdims = keepdims
        self.input_spec = keras.layers.InputSpec(ndim=self.rank + 2)
        build_at_init(self)

    def _steps_axes(self):
        first = 1 if self.data_format == "channels_last" else 2
        return list(range(first, first + self.rank))

    def call(self, inputs, mask=None):
        if mask is not None:  # (batch, steps): true where a step counts
            mask = keras.ops.expand_dims(mask, 2 if self.data_format == "channels_last" else 1)
        return ops.global_avg_pool(inputs, self._steps_axes(), self.keepdims, mask)

    def compute_output_shape(self, input_shape):
        axes = self._steps_axes()
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(input_shape))
        return tuple(d for i, d in enumerate(input_shape) if i not in axes)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


@keras.saving.register_keras_serializable(package="custom_layers")
class GlobalAveragePooling1D(BaseGlobalAveragePooling):
    """The mean over the steps (masked steps left out); a drop-in for
    ``keras.layers.GlobalAveragePooling1D``."""

    rank = 1

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(data_format, keepdims, **kwargs)
        self.supports_masking = True


@keras.saving.register_keras_serializable(package="custom_layers")
class GlobalAveragePooling2D(BaseGlobalAveragePooling):
    """The mean over the pixels; a drop-in for ``keras.layers.GlobalAveragePooling2D``."""

    rank = 2

    def call(self, inputs):
        return super().call(inputs)
