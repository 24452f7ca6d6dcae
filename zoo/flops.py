"""Parameters and multiply-accumulates (MACs) of a model, per example.

Keras counts parameters but not the arithmetic of a forward pass
(keras-team/keras#18391). :func:`count_flops` counts it for any model built
of the layers ``custom_layers`` and ``keras.layers`` share, by the shapes
the layers see, in the convention of fvcore and ptflops:

* a MAC is one multiply and one add: ``Dense`` costs inputs × units per
  position, ``Conv1D``/``Conv2D`` (kernel positions × input channels per
  group) × filters per output position;
* ``BatchNormalization`` one MAC per element (at inference it is the affine
  x·a + b, its scale and shift folded);
* activations, pooling, ``Add``, dropout, reshaping and flattening none:
  they compare, add or move values, and cost memory traffic rather than
  arithmetic.

A training step costs about 3× the forward pass: the forward, and in the
backward one product for the inputs' gradient and one for the weights'
(the convention ``benchmarks/training_speed.py`` uses for its rates).
A layer with weights that is not one of these is refused by name rather
than counted as free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras

#: Layers that compute no multiply-accumulates (their cost is memory traffic).
FREE = frozenset({
    "InputLayer", "Activation", "ReLU", "Softmax", "LeakyReLU", "ELU",
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "AlphaDropout",
    "Flatten", "Reshape", "Permute", "RepeatVector", "ZeroPadding1D", "ZeroPadding2D",
    "Cropping1D", "Cropping2D", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D",
    "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Add", "Concatenate", "Rescaling",
    "Identity",
})

#: A training step's MACs per forward MAC: the forward, then the gradients of
#: the inputs and of the weights.
TRAINING_STEP_FACTOR = 3


@dataclass(frozen=True)
class FlopCount:
    """What :func:`count_flops` returns: per example, for one forward pass."""

    parameters: int
    macs: int
    by_layer: dict[str, int] = field(default_factory=dict)

    @property
    def training_macs(self) -> int:
        """MACs of a training step per example: 3 × the forward pass."""
        return TRAINING_STEP_FACTOR * self.macs

    @property
    def flops(self) -> int:
        """Floating-point operations of the forward pass: 2 per MAC."""
        return 2 * self.macs


def count_flops(model: keras.Model) -> FlopCount:
    """Parameters and multiply-accumulates per example of ``model``'s forward
    pass (a built Sequential or functional model, nested ones included),
    with each layer's share in ``by_layer``.

    Raises:
        TypeError: ``model`` is not a built Keras model.
        ValueError: a layer with weights whose arithmetic is not known here.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"count_flops() takes a keras.Model; received {type(model).__name__}.")
    if not model.built:
        raise TypeError(f"count_flops() needs a built model; {model.name!r} is not built yet "
                        "(call it on data or build it with an input shape).")
    by_layer: dict[str, int] = {}
    _count(model, by_layer, prefix="")
    return FlopCount(parameters=int(model.count_params()), macs=sum(by_layer.values()),
                     by_layer=by_layer)


def _count(model: keras.Model, by_layer: dict[str, int], prefix: str) -> None:
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            _count(layer, by_layer, prefix=f"{prefix}{layer.name}/")
            continue
        by_layer[prefix + layer.name] = layer_macs(layer)


def layer_macs(layer: keras.layers.Layer) -> int:
    """Multiply-accumulates per example of one forward pass through ``layer``
    (module docstring), from the shapes it was called on."""
    kind = type(layer).__name__
    if kind in FREE:
        return 0
    if kind == "Dense":
        inputs = _shape(layer.input)
        return math.prod(inputs) * layer.units
    if kind in ("Conv1D", "Conv2D"):
        inputs, outputs = _shape(layer.input), _shape(layer.output)
        channels_first = layer.data_format == "channels_first"
        in_channels = inputs[0] if channels_first else inputs[-1]
        positions = math.prod(outputs[1:] if channels_first else outputs[:-1])
        per_output = math.prod(layer.kernel_size) * in_channels // layer.groups
        return positions * per_output * layer.filters
    if kind == "BatchNormalization":
        return math.prod(_shape(layer.output))
    if layer.weights:
        raise ValueError(f"count_flops() does not know the arithmetic of layer {layer.name!r} "
                         f"({kind}); it counts Dense, Conv1D, Conv2D and BatchNormalization, and "
                         "layers without weights.")
    return 0


def _shape(tensor) -> tuple[int, ...]:
    """A symbolic tensor's shape without the batch axis."""
    shape = tuple(tensor.shape)[1:]
    if any(size is None for size in shape):
        raise ValueError(f"count_flops() needs fixed input shapes; received {tuple(tensor.shape)}.")
    return shape
