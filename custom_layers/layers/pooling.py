"""``MaxPooling1D`` and ``MaxPooling2D``: drop-ins for their ``keras.layers`` counterparts."""

from __future__ import annotations

import keras

from custom_layers import ops
from custom_layers.arguments import (
    build_at_init,
    check_choice,
    positive_tuple,
    standardize_data_format,
)


class BaseMaxPooling(keras.layers.Layer):
    """Max pooling over ``rank`` spatial axes, channels last; the gradient is
    routed to each window's argmax (:mod:`custom_layers.ops.pooling`), in
    either ``data_format``; subclasses set ``rank`` and ``pool(inputs)``."""

    rank: int

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        self.pool_size = positive_tuple(pool_size, self.rank, "pool_size")
        self.strides = (
            self.pool_size if strides is None else positive_tuple(strides, self.rank, "strides")
        )
        self.padding = check_choice(padding, ("valid", "same"), "padding", ignore_case=True)
        self.input_spec = keras.layers.InputSpec(ndim=self.rank + 2)
        build_at_init(self)

    def call(self, inputs):
        self.compute_output_shape(inputs.shape)  # a window larger than the input: Keras' error
        return self.pool(inputs)

    def compute_output_shape(self, input_shape):
        channels_first = self.data_format == "channels_first"
        spatial = []
        for size, k, s in zip(input_shape[2:] if channels_first else input_shape[1:-1],
                              self.pool_size, self.strides):
            if size is None:
                spatial.append(None)
            elif self.padding == "valid":
                spatial.append((size - k) // s + 1)
            else:
                spatial.append(-(-size // s))
        if any(size is not None and size <= 0 for size in spatial):
            raise ValueError(
                "Computed output size would be zero or negative. Received: "
                f"`inputs.shape={tuple(input_shape)}`, `pool_size={self.pool_size}`, "
                f"`strides={self.strides}`, `padding={self.padding}`.")
        if channels_first:
            return (input_shape[0], input_shape[1], *spatial)
        return (input_shape[0], *spatial, input_shape[-1])

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
        }


@keras.saving.register_keras_serializable(package="custom_layers")
class MaxPooling1D(BaseMaxPooling):
    """1-D max pooling; a drop-in for ``keras.layers.MaxPooling1D``."""

    rank = 1

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)

    def pool(self, inputs):
        return ops.max_pool1d(inputs, self.pool_size[0], self.strides[0], self.padding,
                              self.data_format)


@keras.saving.register_keras_serializable(package="custom_layers")
class MaxPooling2D(BaseMaxPooling):
    """2-D max pooling; a drop-in for ``keras.layers.MaxPooling2D``."""

    rank = 2

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)

    def pool(self, inputs):
        return ops.max_pool2d(inputs, self.pool_size, self.strides, self.padding,
                              self.data_format)
