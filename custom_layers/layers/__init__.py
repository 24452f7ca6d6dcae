"""Keras layer classes wrapping :mod:`custom_layers.ops`."""

from custom_layers.layers.activation import Activation
from custom_layers.layers.average_pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
)
from custom_layers.layers.batch_norm import BatchNormalization
from custom_layers.layers.conv import Conv1D, Conv2D
from custom_layers.layers.dense import Dense
from custom_layers.layers.dropout import Dropout
from custom_layers.layers.merge import Add
from custom_layers.layers.pooling import MaxPooling1D, MaxPooling2D
from custom_layers.layers.reshaping import Flatten, Reshape

__all__ = [
    "Activation",
    "Add",
    "AveragePooling1D",
    "AveragePooling2D",
    "BatchNormalization",
    "Conv1D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "Reshape",
]
