"""The data term E_D of the zoo's objective E = E_D + λE_W."""

from __future__ import annotations

import keras

import custom_layers
from custom_layers.inspect import split_layers


def built_from_custom_layers(model: keras.Model) -> bool:
    """Whether any layer of ``model`` (nested models searched) is one of
    ``custom_layers``' classes."""
    return bool(split_layers(model)[0])


def data_loss(model: keras.Model, reduction: str = "sum_over_batch_size") -> keras.losses.Loss:
    """The data term E_D = −log p_label (averaged by ``reduction``) for
    ``model``'s softmax outputs: ``custom_layers.losses.SparseCategoricalCrossentropy``
    (dE/dp written out) when the model is built from custom layers, else
    Keras' own."""
    if built_from_custom_layers(model):
        return custom_layers.losses.SparseCategoricalCrossentropy(reduction=reduction)
    return keras.losses.SparseCategoricalCrossentropy(reduction=reduction)
