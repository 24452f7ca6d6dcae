"""``Conv1D`` and ``Conv2D``: drop-ins for their ``keras.layers`` counterparts.

A shared base holds what both share (arguments, weights, config); the concrete
classes only say how many spatial axes there are and which op to run.
"""

from __future__ import annotations

import keras

from custom_layers import ops
from custom_layers.ops import activations
from custom_layers.arguments import (
    check_choice,
    check_int,
    positive_tuple,
    standardize_data_format,
)
from custom_layers.layers.lora import LoRAKernel


class BaseConv(LoRAKernel, keras.layers.Layer):
    """Convolution over ``rank`` spatial axes, channels last, with hand-written
    gradients (:mod:`custom_layers.ops.conv`); subclasses set ``rank`` and
    ``convolve(inputs, kernel)``, the bias-free op of that rank. Kernel shape is
    ``kernel_size + (input_channels, filters)`` and the bias ``(filters,)``,
    as in Keras, so weights transfer both ways; the config keys are Keras'
    too. ``groups`` = G splits the input channels and the filters into G
    groups, each convolved with the same op; ``data_format="channels_first"``
    transposes to channels last around the op; LoRA (``lora_rank``,
    ``enable_lora``) adapts the kernel as Keras' does, with the gradients of
    :mod:`custom_layers.ops.lora`."""

    rank: int
    paddings: tuple[str, ...] = ("valid", "same")

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        groups=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        lora_rank=None,
        lora_alpha=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if isinstance(filters, (int, float)) and not isinstance(filters, bool) and filters <= 0:
            raise ValueError("Invalid value for argument `filters`. Expected a strictly positive "
                             f"value. Received filters={filters}.")
        self.filters = check_int(filters, "filters", minimum=1)
        self.data_format = standardize_data_format(data_format)
        if not isinstance(groups, int) or isinstance(groups, bool) or groups <= 0:
            raise ValueError("The number of groups must be a positive integer. "
                             f"Received: groups={groups}.")
        if self.filters % groups != 0:
            raise ValueError("The number of filters must be evenly divisible by the number of "
                             f"groups. Received: groups={groups}, filters={self.filters}.")
        self.groups = groups
        self._init_lora(lora_rank, lora_alpha)
        self.kernel_size = positive_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = positive_tuple(strides, self.rank, "strides")
        self.padding = check_choice(padding, self.paddings, "padding", ignore_case=True)
        self.dilation_rate = positive_tuple(dilation_rate, self.rank, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        self.activation = activations.layer_activation(activation)
        self._activation_config = activations.activation_config(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = keras.layers.InputSpec(ndim=self.rank + 2)

    @property
    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        self.compute_output_shape(input_shape)  # a kernel larger than the input: Keras' error
        input_channels = input_shape[self._channel_axis]
        if input_channels % self.groups != 0:
            raise ValueError(
                "The number of input channels must be evenly divisible by the number of groups. "
                f"Received groups={self.groups}, but the input has {input_channels} channels "
                f"(full input shape is {input_shape}).")
        self._kernel = self.add_weight(
            name="kernel",
            shape=self.kernel_size + (input_channels // self.groups, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.filters,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.input_spec = keras.layers.InputSpec(
            ndim=self.rank + 2, axes={self._channel_axis: input_channels})
        self.built = True
        self._build_lora()

    def call(self, inputs):
        if self.data_format == "channels_first":  # the ops take channels last
            inputs = ops.transpose(inputs, [0, *range(2, self.rank + 2), 1])
        kernel = keras.ops.convert_to_tensor(self.kernel)
        if self.groups == 1:
            outputs = self.convolve(inputs, kernel)
        else:
            # Group g convolves its C_in/G input channels with its F/G filters:
            # the op's two sums, once per group.
            outputs = ops.concat([
                self.convolve(group_inputs, group_kernel) for group_inputs, group_kernel in zip(
                    ops.split(inputs, self.groups), ops.split(kernel, self.groups))
            ])
        if self.use_bias:
            outputs = ops.bias_add(outputs, keras.ops.convert_to_tensor(self.bias))
        if self.activation is not None:  # Keras lets it be set to None after construction
            outputs = self.activation(outputs)
        if self.data_format == "channels_first":
            outputs = ops.transpose(outputs, [0, self.rank + 1, *range(1, self.rank + 1)])
        return outputs

    def compute_output_shape(self, input_shape):
        channels_first = self.data_format == "channels_first"
        sizes = input_shape[2:] if channels_first else input_shape[1:-1]
        spatial = []
        for size, k, s, d in zip(sizes, self.kernel_size, self.strides, self.dilation_rate):
            if size is None:
                spatial.append(None)
            elif self.padding == "valid":
                spatial.append((size - (k - 1) * d - 1) // s + 1)
            else:  # "same" and "causal" keep ceil(size / stride) positions
                spatial.append(-(-size // s))
        if any(size is not None and size <= 0 for size in spatial):
            raise ValueError(
                "Computed output size would be zero or negative. Received "
                f"`inputs shape={tuple(input_shape)}`, `kernel shape={self.kernel_size}`, "
                f"`dilation_rate={self.dilation_rate}`, `strides={self.strides}`, "
                f"`padding={self.padding}`.")
        if channels_first:
            return (input_shape[0], self.filters, *spatial)
        return (input_shape[0], *spatial, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "groups": self.groups,
            "activation": self._activation_config,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            "activity_regularizer": keras.regularizers.serialize(self.activity_regularizer),
            **self._lora_config(),
        }


@keras.saving.register_keras_serializable(package="custom_layers")
class Conv1D(BaseConv):
    """1-D convolution (temporal), padding "valid", "same" or "causal"; a drop-in
    for ``keras.layers.Conv1D``."""

    rank = 1
    paddings = ("valid", "same", "causal")

    def convolve(self, inputs, kernel):
        return ops.conv1d(inputs, kernel, self.strides[0], self.padding, self.dilation_rate[0])


@keras.saving.register_keras_serializable(package="custom_layers")
class Conv2D(BaseConv):
    """2-D convolution, padding "valid" or "same"; a drop-in for ``keras.layers.Conv2D``."""

    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate, **kwargs)

    def convolve(self, inputs, kernel):
        return ops.conv2d(inputs, kernel, self.strides, self.padding, self.dilation_rate)
