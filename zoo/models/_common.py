"""Argument checks and the layer set shared by the model families."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Sequence

import keras

import custom_layers
from custom_layers.arguments import check_int, check_number, invalid

LAYER_SETS = ("custom", "keras")

# Moving averages of the batch statistics forget at 10 % a step, not Keras'
# 1 %: on the small embedded datasets (tens of steps an epoch) 0.99 leaves
# the inference statistics far from the data for several epochs, so early
# stopping judges an unrepresentative network.
BATCH_NORM_MOMENTUM = 0.9


def layer_set(layers: str) -> ModuleType:
    """The module whose Dense/Conv/BatchNormalization/Activation/Flatten/...
    classes build the model: ``custom_layers`` (every backward pass written
    out) or ``keras.layers``."""
    if layers == "custom":
        return custom_layers
    if layers == "keras":
        return keras.layers
    raise invalid("layers", f"one of {', '.join(repr(name) for name in LAYER_SETS)}", layers)


def weight_decay_regularizer(weight_decay: float, layers: str = "custom"
                             ) -> keras.regularizers.Regularizer | None:
    """λ·‖w‖² (E = E_D + λE_W) as ``custom_layers.regularizers.L2(λ)`` (its
    gradient 2λw written out) or, for Keras' layer set, ``keras.regularizers.L2(λ)``;
    None for λ = 0."""
    weight_decay = check_number(weight_decay, "weight_decay", minimum=0)
    if weight_decay == 0:
        return None
    return (custom_layers.regularizers.L2 if layers == "custom"
            else keras.regularizers.L2)(weight_decay)


def check_dropout_rate(dropout_rate: float, name: str = "dropout_rate") -> float:
    return check_number(dropout_rate, name, minimum=0, maximum=1, maximum_inclusive=False)


def check_num_classes(num_classes: int) -> int:
    return check_int(num_classes, "num_classes", minimum=2)


def check_input_shape(input_shape: Sequence[int], rank: int | None, example: str) -> tuple[int, ...]:
    """A tuple of positive ints (batch axis excluded), of ``rank`` axes if given."""
    try:
        shape = tuple(int(size) for size in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(size <= 0 for size in shape) or (rank is not None and len(shape) != rank):
        expected = f"{rank} positive sizes" if rank is not None else "positive sizes"
        raise invalid("input_shape", f"{expected} without the batch axis (e.g. {example})",
                      input_shape)
    return shape


def check_units(units: Sequence[int], name: str, allow_empty: bool = False) -> tuple[int, ...]:
    try:
        values = tuple(units)
    except TypeError:
        values = (units,)
    if (not values and not allow_empty) or any(
        isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in values
    ):
        raise invalid(name, "a sequence of positive integers", units)
    return values


#: Activations that zero (or nearly) the negative half of their input.
RECTIFIERS = ("relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish")


def kernel_initializer_for(activation: str, kernel_initializer=None):
    """The kernel initializer of a layer whose outputs go through
    ``activation``: ``kernel_initializer`` when given (any Keras initializer
    or its name), else "he_normal" for a rectifier — Var(w) = 2/fan_in keeps
    the variance of ReLU activations from halving layer after layer (He et
    al. 2015, eq. 10) — and "glorot_uniform" — Var(w) = 2/(fan_in + fan_out)
    (Glorot & Bengio 2010) — for sigmoid, tanh, softmax and linear units."""
    if kernel_initializer is not None:
        keras.initializers.get(kernel_initializer)  # an unknown name fails here, naming it
        return kernel_initializer
    return "he_normal" if activation in RECTIFIERS else "glorot_uniform"


def dense_head(x, builder: "Builder", dense_units: Sequence[int], dropout_rate: float,
               batch_norm: bool = False):
    """Flatten → [Dense → (BatchNorm) → ReLU → (Dropout)] per entry of
    ``dense_units``, with the builder's initializer and λ‖w‖². Batch norm keeps
    each unit's pre-activation centred over the batch, so a unit cannot be
    pushed below zero for every input — the dead units a ReLU head over
    thousands of non-negative features otherwise collects in its first steps
    under Adam."""
    nn = builder.nn
    x = nn.Flatten(name="flatten")(x)
    # Resolving the initializer again draws a Python random number (Keras
    # seeds an unseeded initializer so); seeded models depend on that draw.
    initializer = kernel_initializer_for("relu", builder.initializer)
    for index, units in enumerate(dense_units, start=1):
        x = nn.Dense(units, use_bias=not batch_norm, kernel_initializer=initializer,
                     kernel_regularizer=builder.regularizer, name=f"dense_{index}")(x)
        x = builder.normalize_and_activate(x, index, prefix="dense_", batch_norm=batch_norm)
        if dropout_rate > 0:
            x = nn.Dropout(dropout_rate, name=f"dropout_{index}")(x)
    return x


def classifier_head(x, num_classes: int, layers: ModuleType, regularizer, name: str = "classifier"):
    """Dense(num_classes) → softmax, the softmax kept in float32 under mixed
    precision; Glorot initialisation (the softmax is no rectifier)."""
    x = layers.Dense(num_classes, kernel_regularizer=regularizer, name=name)(x)
    return layers.Activation("softmax", dtype="float32", name="probabilities")(x)


@dataclass(frozen=True)
class Builder:
    """What a model family builds its layers with, resolved once from the
    arguments every family takes (``start_model``): the layer set, the
    λ‖w‖² regularizer, the initializer of the kernels that feed
    ``activation``, and whether units are batch normalized."""

    input_shape: tuple[int, ...]
    nn: ModuleType
    regularizer: keras.regularizers.Regularizer | None
    initializer: object
    batch_norm: bool

    def kernel(self) -> dict:
        """A weight layer's kernel options: the initializer, λ‖w‖², and a
        bias only without batch norm (BN's β takes its place)."""
        return {"use_bias": not self.batch_norm, "kernel_initializer": self.initializer,
                "kernel_regularizer": self.regularizer}

    def normalize_and_activate(self, x, tag, activation: str = "relu", *, prefix: str = "",
                               batch_norm: bool | None = None):
        """(BatchNormalization, named ``{prefix}batch_norm_{tag}``) →
        ``activation`` (named ``{prefix}{activation}_{tag}``): the rest of a
        unit after its weights; ``batch_norm`` None follows the builder's."""
        if self.batch_norm if batch_norm is None else batch_norm:
            x = self.nn.BatchNormalization(momentum=BATCH_NORM_MOMENTUM,
                                           name=f"{prefix}batch_norm_{tag}")(x)
        return self.nn.Activation(activation, name=f"{prefix}{activation}_{tag}")(x)

    def classifier(self, x, num_classes: int):
        """The softmax classifier on ``x`` (``classifier_head``)."""
        return classifier_head(x, num_classes, self.nn, self.regularizer)


def start_model(input_shape: Sequence[int], rank: int | None, example: str, *, num_classes: int,
                dropout_rate: float, weight_decay: float, layers: str, activation: str = "relu",
                kernel_initializer=None, batch_norm: bool = False) -> Builder:
    """Checks the arguments every model family takes — the input shape
    (``rank`` axes, as in ``example``), the number of classes, the dropout
    rate, λ, the layer set and the initializer — and returns the ``Builder``
    that builds the family's layers from them."""
    input_shape = check_input_shape(input_shape, rank, example)
    check_num_classes(num_classes)
    check_dropout_rate(dropout_rate)
    return Builder(input_shape=input_shape, nn=layer_set(layers),
                   regularizer=weight_decay_regularizer(weight_decay, layers),
                   initializer=kernel_initializer_for(activation, kernel_initializer),
                   batch_norm=batch_norm)
