"""Atomic writes and safe loading of run files: a file is either the old
version or the new one, never half written."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import keras

from custom_layers.inspect import save_figure  # noqa: F401  (one writer for every figure)


def atomic_write_json(data: Any, path: str | os.PathLike) -> None:
    """Writes ``data`` as JSON to a temporary file beside ``path``, then renames it over."""
    atomic_write_text(json.dumps(data, indent=2, sort_keys=True), path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A new, empty temporary file beside ``path``, named to end as ``path``
    does (``.keras``, ``.weights.h5``, ``.npz``, ``.png``: the writers choose
    their format by it), for the block to write the new version to with any
    writer; then synced to disk and renamed over ``path``, or removed if the
    block fails: a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}")
    temporary = Path(name)
    try:
        os.fchmod(descriptor, 0o666 & ~_umask())  # as open() would create it, not mkstemp's 0600
        os.close(descriptor)
        yield temporary
        with open(temporary, "rb") as handle:  # on disk before it replaces the old file
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Writes ``text`` to a temporary file beside ``path``, then renames it over."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def _umask() -> int:
    """The process's file-creation mask (read by setting it, then restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
