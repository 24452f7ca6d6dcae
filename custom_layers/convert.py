"""``convert``: an existing Keras model with its layers swapped for their
hand-derived twins."""

from __future__ import annotations

import warnings

import keras

from custom_layers import layers as custom

#: The keras.layers classes that have a custom twin of the same name.
COVERED = {name: getattr(keras.layers, name) for name in custom.__all__}


class UncoveredLayersWarning(UserWarning):
    """``convert`` kept layers that have no custom twin."""


def convert(model: keras.Model) -> keras.Model:
    """A new model in which every ``keras.layers`` layer of a class that
    ``custom_layers`` covers (Dense, Conv1D, Conv2D, MaxPooling1D/2D,
    BatchNormalization, Dropout) is replaced by its custom twin, with the same
    config and weights, so it computes the same outputs and gradients — the
    gradients now the hand-derived ones.

    Sequential and functional models convert, nested ones included; a layer
    of ``custom_layers`` is copied as it is, and a layer
    of any other class is kept as it is (a copy), and the names of the kept
    layers are listed in a warning and in the new model's ``kept_layers``
    (the replaced ones in ``converted_layers``).
    Subclasses of a covered class are kept too: their ``call`` may differ, and
    so is an ``Activation`` whose function has no derived backward here.

    Raises:
        TypeError: ``model`` is not a Keras model.
        ValueError: a subclassed model, whose ``call`` cannot be rewritten.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"convert() takes a keras.Model; received {type(model).__name__}.")
    kept: list[str] = []
    swapped: list[str] = []

    def twin(layer):
        name = type(layer).__name__
        if name in COVERED and type(layer) is COVERED[name] and _has_twin(layer):
            swapped.append(f"{layer.name} ({name})")
            return getattr(custom, name).from_config(layer.get_config())
        already_ours = type(layer).__module__.startswith("custom_layers.")
        if not isinstance(layer, keras.layers.InputLayer) and not already_ours:
            kept.append(f"{layer.name} ({name})")
        return layer.__class__.from_config(layer.get_config())

    try:
        converted = keras.models.clone_model(model, clone_function=twin, recursive=True)
    except ValueError as error:
        if "only supported for Sequential models or Functional models" not in str(error):
            raise
        raise ValueError(
            f"convert() needs a Sequential or functional model; {model.name!r} is a subclassed "
            f"model ({type(model).__name__}) whose call() cannot be rebuilt. Build it from "
            "custom_layers' classes instead.") from None
    converted.set_weights(model.get_weights())
    converted.converted_layers = list(swapped)
    converted.kept_layers = list(kept)
    if kept:
        warnings.warn(f"convert() kept {len(kept)} layer(s) without a custom twin: "
                      f"{', '.join(kept)}.", UncoveredLayersWarning, stacklevel=2)
    return converted


def _has_twin(layer) -> bool:
    """Whether the custom twin computes what ``layer`` does (an Activation's
    function must be one of :mod:`custom_layers.ops.activations`)."""
    if type(layer).__name__ != "Activation":
        return True
    from custom_layers.ops.activations import ACTIVATIONS

    return layer.get_config()["activation"] in ACTIVATIONS
