"""``Dense``: h = g(xW + b), a drop-in for ``keras.layers.Dense``."""

from __future__ import annotations

import keras

from custom_layers import ops
from custom_layers.backends import kernels
from custom_layers.ops import activations
from custom_layers.arguments import check_int, not_implemented_unless_default
from custom_layers.layers.lora import LoRAKernel


@keras.saving.register_keras_serializable(package="custom_layers")
class Dense(LoRAKernel, keras.layers.Layer):
    """Fully connected layer whose gradients are :func:`custom_layers.ops.dense`'s.

    Same arguments, weight names, shapes and order as ``keras.layers.Dense``
    (kernel ``(input_dim, units)``, then bias ``(units,)``), so weights transfer
    with ``set_weights(builtin.get_weights())``, and the same config keys, so
    configs load both ways. LoRA (``lora_rank``, ``enable_lora``) adapts the
    kernel as Keras' does, with the gradients of :mod:`custom_layers.ops.lora`.
    Quantization is not implemented: ``quantization_config`` is accepted as
    None only.
    """

    def __init__(
        self,
        units,
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
        quantization_config=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = check_int(units, "units", minimum=1)
        self._init_lora(lora_rank, lora_alpha)
        not_implemented_unless_default("custom_layers.Dense", "quantization",
                                       quantization_config=(quantization_config, None))
        self.activation = activations.layer_activation(activation)
        self._activation_config = activations.activation_config(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = True

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self._kernel = self.add_weight(
            name="kernel",
            shape=(input_dim, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: input_dim})
        self.built = True
        self._build_lora(keep_alpha=False)  # Keras' Dense builds with α = r

    def call(self, inputs):
        bias = None if self.bias is None else keras.ops.convert_to_tensor(self.bias)
        kernel = keras.ops.convert_to_tensor(self.kernel)
        if kernels("dense").is_sparse(inputs):
            outputs = ops.dense(keras.ops.cast(inputs, self.compute_dtype), kernel, bias)
            return outputs if self.activation is None else self.activation(outputs)
        inputs = keras.ops.convert_to_tensor(inputs)
        dtype = keras.ops.dtype(inputs)
        if not dtype.startswith(("float", "bfloat")):
            # keras.layers.Dense promotes integer inputs to its float dtype.
            if not (dtype.startswith(("int", "uint")) or dtype == "bool"):
                raise TypeError(f"Dense {self.name!r} expects numeric inputs (float or int), "
                                f"received dtype {dtype}.")
            inputs = keras.ops.cast(inputs, self.compute_dtype)
        outputs = ops.dense(inputs, kernel, bias)
        return outputs if self.activation is None else self.activation(outputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self._activation_config,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            "quantization_config": None,
            **self._lora_config(),
        }
