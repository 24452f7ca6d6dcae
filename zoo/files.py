"""Writing files so that a reader sees the old version or the new one,
never half of one: text, JSON, any writer's file (:func:`atomic_path`) and
matplotlib figures. It imports neither Keras nor the layers, so that locks,
records and plots cost no framework start-up."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


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


def save_figure(figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Writes a matplotlib ``figure`` to ``path`` atomically (:func:`atomic_path`;
    the format follows the name's suffix), closes it and returns the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=dpi)
    finally:
        plt.close(figure)
    return path
