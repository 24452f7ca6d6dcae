"""Keras 3 layers whose backward passes are written out by hand.

Drop-in counterparts of ``keras.layers`` (same class names, arguments, weight
shapes and order): ``Dense``, ``Conv1D``, ``Conv2D``, ``MaxPooling1D``,
``MaxPooling2D``, ``BatchNormalization``, ``Dropout``, ``Activation``. Their math lives in
:mod:`custom_layers.ops`; :func:`custom_layers.testing.check_gradients` checks
a backward pass against autodiff and finite differences;
:class:`custom_layers.regularizers.L2` is weight decay's λ‖w‖² with its gradient;
:func:`custom_layers.convert` swaps them into an existing Keras model.
"""

from custom_layers.layers import (
    Activation,
    BatchNormalization,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    MaxPooling1D,
    MaxPooling2D,
)
from custom_layers import regularizers
from custom_layers.convert import UncoveredLayersWarning, convert

__all__ = [
    "Activation",
    "BatchNormalization",
    "Conv1D",
    "Conv2D",
    "Dense",
    "Dropout",
    "MaxPooling1D",
    "MaxPooling2D",
    "UncoveredLayersWarning",
    "convert",
    "regularizers",
]
__version__ = "0.1.0"
