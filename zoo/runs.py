"""A run directory, owned in one place: its lock, its preparation, the
settings record a resumed run must repeat, and its epoch history.

``zoo.train`` writes a run into one directory, ``tuning.tune`` a search into
one project directory and its final retraining into ``PROJECT_DIR/final``;
all three lock the directory while they use it (:func:`directory_lock`) and
compare what they are asked to do with what the directory records
(:func:`settings_changes`), so that a resumed run is the run that started.
Figures are written with :func:`zoo.io.save_figure`, files with
``zoo.io``'s atomic writers.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

from zoo.io import atomic_write_json

# The layout of a run directory: every file name of it is spelled here.
SETTINGS_FILE = "settings.json"  # the settings a resumed run must repeat
FINISHED_FILE = "metrics.json"  # written last: the run is finished
MODEL_FILE = "model.keras"  # the trained model
HISTORY_FILE = "history.csv"  # one row per committed epoch
BACKUP_DIR = "backup"  # the last committed epoch's state, while the run is unfinished
LOGS_DIR = "logs"  # TensorBoard


class DirectoryInUseError(RuntimeError):
    """Another process holds the lock of a run directory or tuning project."""


class RunFinishedError(RuntimeError):
    """The run directory (``run_dir``) already holds a finished run."""

    def __init__(self, message: str, run_dir: Path):
        super().__init__(message)
        self.run_dir = run_dir


class RunSettingsChangedError(ValueError):
    """An unfinished run was resumed with other settings than it started with."""


@contextlib.contextmanager
def directory_lock(directory: str | os.PathLike, what: str = "Run directory"):
    """Holds an exclusive lock on ``directory`` for the block, so that a
    second process using it at the same time stops at once
    (:class:`DirectoryInUseError`, naming the directory and the holder's pid)
    instead of overwriting its results.

    The lock is ``flock`` on ``.NAME.lock`` beside the directory (so that it
    survives the directory being replaced); the operating system releases it
    when its process ends, however it ends, so a killed run never blocks its
    own resumption. A block that leaves no ``directory`` (a run that could not
    start) takes the lock file, and the parent folder it created, with it.
    Where ``fcntl`` does not exist (Windows) nothing is locked."""
    directory = Path(directory)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        if directory.parent.exists() and not directory.parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        created_parent = not directory.parent.exists()
        directory.parent.mkdir(parents=True, exist_ok=True)
        lock_path = directory.parent / f".{directory.name}.lock"
        handle = open(lock_path, "a+")
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
            if not directory.exists():  # nothing to guard: leave nothing behind
                lock_path.unlink(missing_ok=True)
                if created_parent:
                    with contextlib.suppress(OSError):  # not empty: others' files stay
                        directory.parent.rmdir()
            fcntl.flock(handle, fcntl.LOCK_UN)


def json_ready(data: Any) -> Any:
    """``data`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(data, default=repr))


def settings_changes(path: Path, settings: dict[str, Any]) -> list[str] | None:
    """What differs between ``settings`` and those recorded in ``path``:
    one ``"key recorded -> given"`` entry per setting, [] when they agree,
    None when nothing is recorded. The one comparison behind every resumption
    (a run, a search, a search's final retraining)."""
    if not path.exists():
        return None
    try:
        recorded = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise ValueError(f"{path} is corrupt; pass overwrite=True to start afresh.") from None
    recorded, settings = _flat(recorded), _flat(json_ready(settings))
    return [f"{key} {recorded.get(key)!r} -> {settings.get(key)!r}"
            for key in sorted(set(recorded) | set(settings))
            if recorded.get(key) != settings.get(key)]


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as one level, ``{"training": {"epochs": 3}}`` as
    ``{"training.epochs": 3}``, so that a difference names the one setting."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_same_settings(run_dir: Path, settings: dict[str, Any]) -> None:
    """Records the settings of a new run in ``run_dir/settings.json``, or, for
    an unfinished run, raises :class:`RunSettingsChangedError` naming each
    setting that differs from the recorded ones."""
    changed = settings_changes(run_dir / SETTINGS_FILE, settings)
    if changed:
        raise RunSettingsChangedError(
            f"{run_dir} holds an unfinished run with other settings ({'; '.join(changed)}); "
            "repeat its settings to resume it, or pass overwrite=True to train afresh.")
    if changed is None:
        atomic_write_json(json_ready(settings), run_dir / SETTINGS_FILE)


def default_run_dir(model_name: str, dataset: str) -> Path:
    """``./runs/<model>-<dataset>`` under the current directory."""
    return Path.cwd() / "runs" / f"{model_name}-{dataset}"


def is_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run (its metrics are written last)."""
    return (run_dir / FINISHED_FILE).exists()


def prepare_run_dir(run_dir: Path, overwrite: bool,
                    settings: dict[str, Any] | None = None) -> None:
    """Makes ``run_dir`` ready for a run: a finished run is refused
    (:class:`RunFinishedError`, or :class:`RunSettingsChangedError` naming
    what differs when it was trained with other ``settings``) or, with
    ``overwrite``, removed; an unfinished one is kept to resume or, with
    ``overwrite``, emptied of its state."""
    if is_finished(run_dir):
        changed = None if settings is None else settings_changes(run_dir / SETTINGS_FILE, settings)
        if changed and not overwrite:
            raise RunSettingsChangedError(
                f"{run_dir} holds a finished run with other settings ({'; '.join(changed)}); "
                "repeat its settings to read it, or pass overwrite=True to train afresh.")
        if not overwrite:
            raise RunFinishedError(
                f"{run_dir} already holds a finished run ({FINISHED_FILE} exists); "
                "pass overwrite=True to train it again.", run_dir)
        shutil.rmtree(run_dir)
    elif overwrite:  # an unfinished run: start it afresh
        shutil.rmtree(run_dir / BACKUP_DIR, ignore_errors=True)
        (run_dir / HISTORY_FILE).unlink(missing_ok=True)
        (run_dir / SETTINGS_FILE).unlink(missing_ok=True)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise OSError(f"Run directory {run_dir} is not writable: {error.strerror}.") from None


def read_history(path: Path) -> list[dict[str, float]]:
    """The rows of a run's ``history.csv`` (one per epoch, numbered from 1)."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [{key: float(value) for key, value in row.items() if value not in ("", None)}
                for row in csv.DictReader(handle)]
