"""``BatchNormalization``: a drop-in for ``keras.layers.BatchNormalization``."""

from __future__ import annotations

import keras
from keras import ops as kops

from custom_layers import ops
from custom_layers.backends import require


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
    are Keras'. ``renorm=True`` is batch renormalization as Keras computes it;
    ``synchronized=True`` takes the statistics over all replicas of a
    ``tf.distribute`` strategy, its backward's sums too.
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
        if synchronized:
            require("BatchNormalization(synchronized=True) (statistics summed over the replicas "
                    "of a tf.distribute strategy)", "tensorflow")
        self.synchronized = bool(synchronized)
        self.renorm = bool(renorm)
        if self.renorm:
            renorm_clipping = _check_renorm_clipping(renorm_clipping or {})
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = renorm_momentum
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
        if self.renorm:
            # As Keras: the moving standard deviation is tracked (the moving
            # variance derived from it), and the renorm statistics apart.
            def moving_stddev_initializer(shape, dtype=None):
                return keras.ops.sqrt(keras.initializers.get(
                    keras.initializers.serialize(self.moving_variance_initializer))(shape, dtype))

            for name, initializer in (("moving_stddev", moving_stddev_initializer),
                                      ("renorm_mean", keras.initializers.get(
                                          keras.initializers.serialize(
                                              self.moving_mean_initializer))),
                                      ("renorm_stddev", moving_stddev_initializer)):
                setattr(self, name, self.add_weight(shape=shape, name=name, initializer=initializer,
                                                    trainable=False, autocast=False))
        self.input_spec = keras.layers.InputSpec(
            ndim=rank, axes={self.axis: input_shape[self.axis]}
        )

    def call(self, inputs, training=None, mask=None):
        if mask is not None and len(mask.shape) != len(inputs.shape) - 1:
            raise ValueError("The mask provided should be one dimension less than the inputs. "
                             f"Received: mask.shape={mask.shape}, inputs.shape={inputs.shape}")
        # float16/bfloat16 are normalised in float32, float64 in float64 (keras.backend.
        # result_type(float64, float32) is float32 on JAX)
        dtype = "float64" if kops.dtype(inputs) == "float64" else "float32"
        gamma = None if self.gamma is None else kops.cast(self.gamma, dtype)
        beta = None if self.beta is None else kops.cast(self.beta, dtype)
        moving_mean = kops.cast(self.moving_mean, dtype)
        moving_variance = kops.cast(self.moving_variance, dtype)

        if training and self.trainable:
            statistics = None
            if self.renorm:  # r and d need the batch statistics first
                statistics = ops.batch_norm.batch_moments(inputs, self.axis, mask)
                gamma, beta = self._renorm_scale_and_offset(statistics, gamma, beta, dtype)
            # float16/bfloat16 inputs go in as they are: the op normalises them in
            # float32 (in the fused kernel, without a cast of the whole tensor).
            outputs, mean, variance = ops.batch_norm_training(
                inputs, gamma, beta, self.axis, self.epsilon, mask=mask, statistics=statistics,
                synchronized=self.synchronized,
            )
            mean, variance = kops.cast(mean, dtype), kops.cast(variance, dtype)
            if self.renorm:
                self._update_renorm_statistics(mean, variance)
            else:
                self.moving_mean.assign(
                    moving_mean * self.momentum + mean * (1.0 - self.momentum)
                )
                self.moving_variance.assign(
                    moving_variance * self.momentum + variance * (1.0 - self.momentum)
                )
        else:
            outputs = ops.batch_norm_inference(
                kops.cast(inputs, dtype), moving_mean, moving_variance, gamma, beta, self.axis, self.epsilon
            )
        return kops.cast(outputs, self.compute_dtype)

    def _renorm_scale_and_offset(self, statistics, gamma, beta, dtype):
        """Batch renormalization (Ioffe, 2017): x̂·r·γ + (d·γ + β) with
        r = σ_B/σ and d = (μ_B − μ)/σ against the renorm moving statistics,
        clipped; r and d are constants of the backward pass (stop_gradient),
        so the op's derived gradients pass to γ and β through the products."""
        mean, variance = (kops.cast(statistic, dtype) for statistic in statistics)
        stddev = kops.sqrt(variance + self.epsilon)
        renorm_stddev = kops.maximum(kops.cast(self.renorm_stddev, dtype),
                                     kops.sqrt(kops.cast(self.epsilon, dtype)))
        r = stddev / renorm_stddev
        d = (mean - kops.cast(self.renorm_mean, dtype)) / renorm_stddev
        clipping = self.renorm_clipping
        if clipping.get("rmin") is not None:
            r = kops.maximum(r, clipping["rmin"])
        if clipping.get("rmax") is not None:
            r = kops.minimum(r, clipping["rmax"])
        if clipping.get("dmax") is not None:
            d = kops.clip(d, -clipping["dmax"], clipping["dmax"])
        r, d = kops.stop_gradient(r), kops.stop_gradient(d)
        scale = r if gamma is None else r * gamma
        offset = d if gamma is None else d * gamma
        return scale, offset if beta is None else offset + beta

    def _update_renorm_statistics(self, mean, variance):
        """Keras' updates: renorm mean and stddev with ``renorm_momentum``; the
        moving mean and stddev with ``momentum``, the variance from the stddev."""
        stddev = kops.sqrt(variance + self.epsilon)
        for variable, value, momentum in (
                (self.renorm_mean, mean, self.renorm_momentum),
                (self.renorm_stddev, stddev, self.renorm_momentum),
                (self.moving_mean, mean, self.momentum),
                (self.moving_stddev, stddev, self.momentum)):
            variable.assign(kops.cast(variable, value.dtype) * momentum + value * (1.0 - momentum))
        moving_stddev = kops.cast(self.moving_stddev, stddev.dtype)
        self.moving_variance.assign(kops.relu(moving_stddev * moving_stddev - self.epsilon))

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
            "synchronized": self.synchronized,
            "renorm": self.renorm,
            "renorm_clipping": self.renorm_clipping,
            "renorm_momentum": self.renorm_momentum,
        }


def _check_renorm_clipping(clipping: dict) -> dict:
    """Keras' checks of ``renorm_clipping`` (keys rmax, rmin, dmax)."""
    keys = ["rmax", "rmin", "dmax"]
    if set(clipping) - set(keys):
        raise ValueError(f"Received invalid keys for `renorm_clipping` argument: {clipping}. "
                         f"Supported values: {keys}.")
    rmax, rmin, dmax = (clipping.get(key) for key in keys)
    if rmax is not None and rmin is not None and rmax < rmin:
        raise ValueError("rmax should be greater than rmin in the `renorm_clipping` argument. "
                         f"Received: rmax={rmax}, rmin={rmin}.")
    if dmax is not None and dmax < 0:
        raise ValueError("dmax should be non-negative in the `renorm_clipping` argument. "
                         f"Received: dmax={dmax}.")
    return clipping
