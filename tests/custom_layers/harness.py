"""The layer harness's table of cases and its helpers.

Every layer runs through the same parametrised harness (test_layers.py,
test_serialization.py, test_training.py). A case names a class that exists in
both ``custom_layers`` and ``keras.layers`` plus its constructor arguments and
an input shape, so adding a layer — or a new option of one — means adding a
row to ``LAYER_CASES``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import keras
import numpy as np
import pytest

import custom_layers
from custom_layers.backends import kernels


@dataclass(frozen=True)
class LayerCase:
    """One row of the harness: ``custom_layers.<name>(**kwargs)`` against
    ``keras.layers.<name>(**kwargs)`` on inputs of ``input_shape``."""

    id: str
    name: str
    kwargs: dict = field(default_factory=dict)
    input_shape: tuple = ()
    # Draws random numbers while training (so outputs depend on the input dtype
    # through the random draw, not only through rounding).
    stochastic: bool = False

    def custom(self, **overrides) -> keras.layers.Layer:
        return getattr(custom_layers, self.name)(**{**self.kwargs, **overrides})

    def builtin(self, **overrides) -> keras.layers.Layer:
        return getattr(keras.layers, self.name)(**{**self.kwargs, **overrides})


LAYER_CASES = [
    LayerCase("dense", "Dense", dict(units=4), (3, 5)),
    LayerCase("dense-rank3-nobias-relu", "Dense",
              dict(units=3, use_bias=False, activation="relu"), (2, 3, 5)),
    LayerCase("dense-batch1", "Dense", dict(units=1, activation="tanh"), (1, 6)),
    LayerCase("dense-lora", "Dense", dict(units=4, lora_rank=2, lora_alpha=3.0), (3, 5)),
    LayerCase("conv1d-valid", "Conv1D", dict(filters=3, kernel_size=3), (2, 9, 2)),
    LayerCase("conv1d-same-stride2-ch1", "Conv1D",
              dict(filters=4, kernel_size=3, strides=2, padding="same"), (1, 10, 1)),
    LayerCase("conv1d-causal-dilated", "Conv1D",
              dict(filters=2, kernel_size=3, padding="causal", dilation_rate=2,
                   activation="tanh"), (2, 9, 3)),
    LayerCase("conv2d-valid", "Conv2D", dict(filters=3, kernel_size=3), (2, 7, 7, 2)),
    LayerCase("conv2d-same-stride2-nobias", "Conv2D",
              dict(filters=4, kernel_size=(3, 2), strides=2, padding="same", use_bias=False),
              (1, 8, 7, 1)),
    LayerCase("conv2d-same-dilated", "Conv2D",
              dict(filters=2, kernel_size=(2, 3), padding="same", dilation_rate=(3, 1),
                   activation="relu"), (2, 7, 6, 3)),
    LayerCase("conv1d-groups2", "Conv1D",
              dict(filters=4, kernel_size=3, groups=2, padding="same"), (2, 8, 6)),
    LayerCase("conv2d-groups3-stride2", "Conv2D",
              dict(filters=6, kernel_size=3, strides=2, groups=3), (2, 7, 7, 3)),
    LayerCase("conv2d-lora", "Conv2D", dict(filters=3, kernel_size=2, lora_rank=2), (2, 5, 5, 2)),
    LayerCase("conv2d-channels-first-groups2", "Conv2D",
              dict(filters=4, kernel_size=2, groups=2, data_format="channels_first",
                   activation="relu"), (2, 4, 5, 6)),
    LayerCase("maxpool1d", "MaxPooling1D", dict(pool_size=2), (2, 9, 3)),
    LayerCase("maxpool1d-channels-first", "MaxPooling1D",
              dict(pool_size=3, strides=2, padding="same", data_format="channels_first"),
              (2, 3, 9)),
    LayerCase("maxpool2d-channels-first", "MaxPooling2D",
              dict(pool_size=2, data_format="channels_first"), (2, 3, 6, 5)),
    LayerCase("maxpool1d-same-overlap", "MaxPooling1D",
              dict(pool_size=3, strides=2, padding="same"), (1, 10, 2)),
    LayerCase("maxpool2d", "MaxPooling2D", dict(pool_size=(2, 2)), (2, 6, 6, 2)),
    LayerCase("maxpool2d-same-stride2", "MaxPooling2D",
              dict(pool_size=(3, 3), strides=2, padding="same"), (1, 7, 7, 1)),
    LayerCase("maxpool2d-overlap", "MaxPooling2D",
              dict(pool_size=(2, 3), strides=1), (2, 5, 6, 2)),
    LayerCase("batchnorm", "BatchNormalization", dict(), (6, 5)),
    LayerCase("batchnorm-axis1-4d", "BatchNormalization",
              dict(axis=1, momentum=0.9), (3, 2, 4, 4)),
    LayerCase("batchnorm-renorm-clipped", "BatchNormalization",
              dict(renorm=True, renorm_clipping={"rmax": 1.5, "rmin": 0.5, "dmax": 0.3},
                   renorm_momentum=0.8), (4, 3, 3, 2)),
    LayerCase("batchnorm-3d-no-center-scale", "BatchNormalization",
              dict(center=False, scale=False, epsilon=1e-2), (4, 3, 5)),
    # 21 values 4/21 apart from -2: none at relu's kink, 0.
    LayerCase("activation-relu", "Activation", dict(activation="relu"), (3, 7)),
    LayerCase("activation-sigmoid-3d", "Activation", dict(activation="sigmoid"), (2, 3, 5)),
    LayerCase("activation-softmax-3d", "Activation", dict(activation="softmax"), (2, 3, 5)),
    LayerCase("activation-gelu", "Activation", dict(activation="gelu"), (4, 6)),
    LayerCase("flatten", "Flatten", dict(), (2, 3, 4, 2)),
    LayerCase("flatten-channels-first", "Flatten", dict(data_format="channels_first"), (2, 3, 2, 2)),
    LayerCase("reshape", "Reshape", dict(target_shape=(2, -1)), (3, 4, 3)),
    LayerCase("avgpool1d-same", "AveragePooling1D",
              dict(pool_size=3, strides=2, padding="same"), (2, 9, 3)),
    LayerCase("avgpool2d", "AveragePooling2D", dict(pool_size=2), (2, 6, 6, 2)),
    LayerCase("avgpool2d-same-channels-first", "AveragePooling2D",
              dict(pool_size=3, strides=2, padding="same", data_format="channels_first"),
              (2, 2, 7, 7)),
    LayerCase("global-avgpool1d", "GlobalAveragePooling1D", dict(), (2, 5, 3)),
    LayerCase("global-avgpool2d-keepdims", "GlobalAveragePooling2D", dict(keepdims=True),
              (2, 4, 3, 2)),
    LayerCase("dropout", "Dropout", dict(rate=0.4, seed=3), (4, 10), stochastic=True),
    LayerCase("dropout-noise-shape", "Dropout",
              dict(rate=0.5, noise_shape=(None, 1, 6), seed=1), (3, 4, 6), stochastic=True),
]

# Every class the package exports has at least one row.
# (Add takes a list of inputs: tests/custom_layers/test_merge.py.)
assert {case.name for case in LAYER_CASES} | {"Add"} == set(custom_layers.layers.__all__)


def layer_cases(*names: str):
    """``pytest.mark.parametrize`` over the rows (of the given class names)."""
    rows = [c for c in LAYER_CASES if not names or c.name in names]
    return pytest.mark.parametrize("case", rows, ids=[c.id for c in rows])


def layer_cases_and_modes():
    """``pytest.mark.parametrize`` over (case, training): both modes for the
    layers whose ``call`` takes ``training`` (batch norm, dropout), one run
    (``training=None``) for the layers that compute the same either way."""
    rows = []
    for case in LAYER_CASES:
        if accepts_training(case.custom()):
            rows += [pytest.param(case, True, id=f"{case.id}-training"),
                     pytest.param(case, False, id=f"{case.id}-inference")]
        else:
            rows.append(pytest.param(case, None, id=case.id))
    return pytest.mark.parametrize("case, training", rows)


def accepts_training(layer: keras.layers.Layer) -> bool:
    """Whether the layer's ``call`` takes a ``training`` argument."""
    return "training" in inspect.signature(layer.call).parameters


def distinct_values(shape, seed: int = 0, dtype="float32") -> np.ndarray:
    """Random values in [-2, 2) that are pairwise at least 4/size apart.

    Max pooling is only differentiable away from ties; well-separated values
    keep the argmax of every window unambiguous under rounding and under the
    finite-difference step (1/1024) of ``tf.test.compute_gradient``.
    """
    size = int(np.prod(shape))
    values = np.random.default_rng(seed).permutation(size) * (4.0 / size) - 2.0
    return values.reshape(shape).astype(dtype)


def random_weights(layer: keras.layers.Layer, seed: int = 0) -> list[np.ndarray]:
    """Random non-trivial values for a layer's weights (variances kept positive),
    so that parity is not tested at the all-zeros/all-ones initial state."""
    rng = np.random.default_rng(seed)
    values = []
    for weight in layer.weights:
        value = rng.standard_normal(weight.shape) * 0.5
        if "variance" in weight.name:
            value = np.abs(value) + 0.5
        values.append(value.astype(weight.dtype))
    return values


def build_pair(case: LayerCase, dtype="float32", seed: int = 0):
    """(custom, builtin) built on ``case.input_shape`` and holding the same
    random weights (copied builtin → custom with ``set_weights``)."""
    custom, builtin = case.custom(dtype=dtype), case.builtin(dtype=dtype)
    builtin.build(case.input_shape)
    custom.build(case.input_shape)
    builtin.set_weights(random_weights(builtin, seed))
    custom.set_weights(builtin.get_weights())
    return custom, builtin


def all_layers_model(input_shape=(8, 8, 2), num_classes=3) -> keras.Model:
    """A small functional model that uses every custom layer once: a 2-D
    branch (Conv2D → BatchNormalization → MaxPooling2D) and a 1-D branch on
    the rows of the image (Conv1D causal → MaxPooling1D), joined into
    Dense → Dropout → Dense."""
    layers = custom_layers
    inputs = keras.Input(input_shape)
    image = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    image = layers.BatchNormalization(momentum=0.8)(image)
    image = layers.MaxPooling2D(2)(image)
    sequence = keras.layers.Reshape((input_shape[0], input_shape[1] * input_shape[2]))(inputs)
    sequence = layers.Conv1D(3, 3, padding="causal", dilation_rate=2, activation="relu")(sequence)
    sequence = layers.MaxPooling1D(2, padding="same")(sequence)
    features = keras.layers.Concatenate()(
        [keras.layers.Flatten()(image), keras.layers.Flatten()(sequence)]
    )
    hidden = layers.Dense(8, activation="relu")(features)
    hidden = layers.Dropout(0.25, seed=0)(hidden)
    outputs = layers.Dense(num_classes)(hidden)
    return keras.Model(inputs, outputs)


def trainable_gradients(layer, x, training):
    """(output, dE/dx, [dE/dw for trainable w]) for E = Σ u ⊙ layer(x) with a
    fixed random cotangent u, taken by the backend's autodiff (which runs the
    layer's hand-written backward); the layer's state (moving statistics,
    seed) advances as a call does."""
    def u_for(y):
        return np.random.default_rng(1).standard_normal(tuple(y.shape))

    if keras.backend.backend() == "tensorflow":  # a call under the tape: autocast and all
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            objective = tf.reduce_sum(tf.cast(y, tf.float32) * tf.constant(u_for(y), tf.float32))
        grads = tape.gradient(objective, [x, *layer.trainable_variables])
        return y, grads[0], grads[1:]
    # JAX: the call as a pure function of the weights (float policies only)
    x = keras.ops.convert_to_tensor(x)
    kwargs = {"training": training} if accepts_training(layer) else {}
    trainable = [keras.ops.convert_to_tensor(v) for v in layer.trainable_variables]
    state = [keras.ops.convert_to_tensor(v) for v in layer.non_trainable_variables]
    y, new_state = layer.stateless_call(trainable, state, x, **kwargs)
    u = keras.ops.convert_to_tensor(u_for(y), "float32")

    def objective(x, *weights):
        outputs, _ = layer.stateless_call(list(weights), state, x, **kwargs)
        return keras.ops.sum(keras.ops.cast(outputs, "float32") * u)

    grads = kernels("dense").autodiff_gradients(objective, [x, *trainable])
    for variable, value in zip(layer.non_trainable_variables, new_state):
        variable.assign(value)
    return y, grads[0], grads[1:]


def compiled(function):
    """``function`` compiled with XLA by the backend (``tf.function(jit_compile=True)``,
    ``jax.jit``)."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(function)
    import tensorflow as tf

    return tf.function(function, jit_compile=True)
