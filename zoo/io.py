"""Saving and loading models safely: a model file is written atomically
(``zoo.files.atomic_path``) and read with Keras' safe mode and a clear error
for a missing, truncated or foreign file."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import keras

from zoo.files import atomic_path


def atomic_save_model(model: keras.Model, path: str | os.PathLike) -> None:
    """``model.save`` to a temporary ``.keras`` file beside ``path``, then renames it over."""
    with atomic_path(path) as temporary:
        model.save(temporary)


def load_model(path: str | os.PathLike) -> keras.Model:
    """Loads a ``.keras`` model with ``safe_mode=True`` and the custom layers
    registered; a missing, truncated or foreign file gives a clear error."""
    import custom_layers  # noqa: F401  (registers the layer classes)

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Model file {path} does not exist.")
    if path.suffix != ".keras":
        raise ValueError(f"Expected a .keras model file, received {path}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a valid .keras file (truncated or not a model archive).")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # keras raises many types for malformed archives
        raise ValueError(f"Could not load model from {path}: {error}") from None
