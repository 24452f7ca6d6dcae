"""Atomic writes and safe loading of run files — a file is either the old
version or the new one, never half written — and the lock that keeps a
second process out of a run directory or a tuning project while it is in use."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import keras


class DirectoryInUseError(RuntimeError):
    """Another process holds the lock of a run directory or tuning project."""


@contextlib.contextmanager
def directory_lock(directory: str | os.PathLike, what: str = "Run directory"):
    """Holds an exclusive lock on ``directory`` for the block, so that a
    second process using it at the same time stops at once
    (:class:`DirectoryInUseError`, naming the directory and the holder's pid)
    instead of overwriting its results.

    The lock is ``flock`` on ``.NAME.lock`` beside the directory (so that it
    survives the directory being replaced); the operating system releases it
    when its process ends, however it ends, so a killed run never blocks its
    own resumption. Where ``fcntl`` does not exist (Windows) nothing is locked."""
    directory = Path(directory)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        if directory.parent.exists() and not directory.parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        directory.parent.mkdir(parents=True, exist_ok=True)
        handle = open(directory.parent / f".{directory.name}.lock", "a+")
    except OSError as error:
        raise OSError(f"{what} {directory} is not writable: {error.strerror}.") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise DirectoryInUseError(
                f"{what} {directory} is in use by another process (pid {holder}); wait for it "
                "to end, or stop it, and run the command again.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def atomic_write_json(data: Any, path: str | os.PathLike) -> None:
    """Writes ``data`` as JSON to a temporary file beside ``path``, then renames it over."""
    atomic_write_text(json.dumps(data, indent=2, sort_keys=True), path)


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Writes ``text`` to a temporary file beside ``path``, then renames it over."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_save_model(model: keras.Model, path: str | os.PathLike) -> None:
    """``model.save`` to a temporary ``.keras`` file beside ``path``, then renames it over."""
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        model.save(temporary)
        with open(temporary, "rb") as handle:  # on disk before it replaces the old file
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


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
