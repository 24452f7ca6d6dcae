"""``BatchNormalization``: a drop-in for ``keras.layers.BatchNormalization``."""

from __future__ import annotations

import keras
import tensorflow as tf

from custom_layers import ops
from custom_layers.arguments import not_implemented_unless_default


@keras.saving.register_keras_serializable(package="custom_layers")
class BatchNormalization(keras.layers.Layer):
    """Normalises each channel with the batch's statistics while training and
    the moving averages at inference (:mod:`custom_layers.ops.batch_norm`;
    while training, feature maps with the channel axis last go through the
    fused kernel, everything else through the written-out reference — both
    compute the derived backward pass, the module docstring says which runs
    when).

    As in Keras: ``moving = momentum·moving + (1 − momentum)·batch`` with the
    biased batch variance; a mask (``Masking``, ``Embedding(mask_zero=True)``)
    restricts the batch statistics to the unmasked positions and is passed
    on; float16/bfloat16 inputs are normalised in float32;
    a layer with ``trainable=False`` runs in inference mode; weights are
    gamma, beta, moving_mean, moving_variance in that order; the config keys
    are Keras'. Batch renormalization and ``synchronized=True`` are not
    implemented: their arguments are accepted at their defaults only.
    """

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        synchronized=False,
        renorm=False,
        renorm_clipping=None,
        renorm_momentum=0.99,
        **kwargs,
    ):
        super().__init__(**kwargs)
        not_implemented_unless_default(
            "custom_layers.BatchNormalization", "batch renormalization",
            renorm=(renorm, False), renorm_clipping=(renorm_clipping, None))
        not_implemented_unless_default(
            "custom_layers.BatchNormalization", "cross-replica (synchronized) statistics",
            synchronized=(synchronized, False))
        self.renorm_momentum = float(renorm_momentum)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(
                f"Invalid value for argument `axis`. Expected an int. Received axis={axis!r}."
            )
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(
                "Invalid value for argument `momentum`. Expected a float in [0, 1]. "
                f"Received momentum={momentum!r}."
            )
        if not epsilon > 0:
            raise ValueError(
                "Invalid value for argument `epsilon`. Expected a strictly positive float. "
                f"Received epsilon={epsilon!r}."
            )
        self.axis = axis
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.moving_mean_initializer = keras.initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = keras.initializers.get(moving_variance_initializer)
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.beta_constraint = keras.constraints.get(beta_constraint)
        self.gamma_constraint = keras.constraints.get(gamma_constraint)
        self.supports_masking = True
        self.gamma = None
        self.beta = None

    def build(self, input_shape):
        rank = len(input_shape)
        if not -rank <= self.axis < rank:
            raise ValueError(
                f"Invalid value for argument `axis`: {self.axis} is out of range for inputs "
                f"of rank {rank} (shape {tuple(input_shape)}). Expected {-rank} <= axis < {rank}."
            )
        shape = (input_shape[self.axis],)
        if self.scale:
            self.gamma = self.add_weight(
                shape=shape, name="gamma", initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer, constraint=self.gamma_constraint,
                trainable=True, autocast=False,
            )
        if self.center:
            self.beta = self.add_weight(
                shape=shape, name="beta", initializer=self.beta_initializer,
                regularizer=self.beta_regularizer, constraint=self.beta_constraint,
                trainable=True, autocast=False,
            )
        self.moving_mean = self.add_weight(
            shape=shape, name="moving_mean", initializer=self.moving_mean_initializer,
            trainable=False, autocast=False,
        )
        self.moving_variance = self.add_weight(
            shape=shape, name="moving_variance", initializer=self.moving_variance_initializer,
            trainable=False, autocast=False,
        )
        self.input_spec = keras.layers.InputSpec(
            ndim=rank, axes={self.axis: input_shape[self.axis]}
        )

    def call(self, inputs, training=None, mask=None):
        if mask is not None and len(mask.shape) != len(inputs.shape) - 1:
            raise ValueError("The mask provided should be one dimension less than the inputs. "
                             f"Received: mask.shape={mask.shape}, inputs.shape={inputs.shape}")
        dtype = keras.backend.result_type(inputs.dtype, "float32")
        gamma = None if self.gamma is None else tf.cast(self.gamma, dtype)
        beta = None if self.beta is None else tf.cast(self.beta, dtype)
        moving_mean = tf.cast(self.moving_mean, dtype)
        moving_variance = tf.cast(self.moving_variance, dtype)

        if training and self.trainable:
            # float16/bfloat16 inputs go in as they are: the op normalises them in
            # float32 (in the fused kernel, without a cast of the whole tensor).
            outputs, mean, variance = ops.batch_norm_training(
                inputs, gamma, beta, self.axis, self.epsilon, mask=mask
            )
            mean, variance = tf.cast(mean, dtype), tf.cast(variance, dtype)
            self.moving_mean.assign(
                moving_mean * self.momentum + mean * (1.0 - self.momentum)
            )
            self.moving_variance.assign(
                moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            outputs = ops.batch_norm_inference(
                tf.cast(inputs, dtype), moving_mean, moving_variance, gamma, beta, self.axis, self.epsilon
            )
        return tf.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        serialize = keras.initializers.serialize
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": serialize(self.beta_initializer),
            "gamma_initializer": serialize(self.gamma_initializer),
            "moving_mean_initializer": serialize(self.moving_mean_initializer),
            "moving_variance_initializer": serialize(self.moving_variance_initializer),
            "beta_regularizer": keras.regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": keras.regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": keras.constraints.serialize(self.beta_constraint),
            "gamma_constraint": keras.constraints.serialize(self.gamma_constraint),
            "synchronized": False,
            "renorm": False,
            "renorm_clipping": None,
            "renorm_momentum": self.renorm_momentum,
        }
