"""A run directory, owned in one place: its lock, its preparation, the
settings record a resumed run must repeat, and its epoch history.

``zoo.train`` writes a run into one directory, ``tuning.tune`` a search into
one project directory and its final retraining into ``PROJECT_DIR/final``;
all three lock the directory while they use it (:func:`directory_lock`) and
compare what they are asked to do with what the directory records
(:func:`settings_changes`), so that a resumed run is the run that started.
Figures and files are written with ``zoo.files``' atomic writers.
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

from zoo.files import atomic_write_json

# The layout of a run directory: every file name of it is spelled here.
SETTINGS_FILE = "settings.json"  # the settings a resumed run must repeat
FINISHED_FILE = "metrics.json"  # written last: the run is finished
MODEL_FILE = "model.keras"  # the trained model
HISTORY_FILE = "history.csv"  # one row per committed epoch
BACKUP_DIR = "backup"  # the last committed epoch's state, while the run is unfinished
BACKUP_STATE_FILE = "state.json"  # in BACKUP_DIR: its commit, naming the epoch's files
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


def default_run_dir(model_name: str, dataset: str) -> Path:
    """``./runs/<model>-<dataset>`` under the current directory."""
    return Path.cwd() / "runs" / f"{model_name}-{dataset}"


class RunDirectory:
    """A directory that holds one run — a ``zoo.train`` run, a tuning
    project, an experiment — and alone knows its layout and lifecycle::

        directory = RunDirectory(path)
        with directory.open(settings, overwrite=overwrite):  # lock, prepare, record
            ...                    # load the data, build: a failure leaves nothing
            directory.started()    # from here a failure leaves a run to resume
            ...                    # fit: RunState commits every epoch to backup/
            directory.finish(metrics)

    :meth:`open` holds the directory's lock (:func:`directory_lock`) for the
    block; refuses a finished run (:class:`RunFinishedError`, or
    :class:`RunSettingsChangedError` naming what differs) unless
    ``overwrite``, which removes it; resumes an unfinished one only with its
    recorded settings; records the settings of a new one; and, when the block
    fails before :meth:`started`, removes what a fresh start wrote. A
    ``resumable=False`` directory (an experiment, computed whole each time)
    is run again instead: its record is replaced, its results when it finishes.
    """

    def __init__(self, path: str | os.PathLike, what: str = "Run directory", *,
                 settings_file: str = SETTINGS_FILE, finished_file: str = FINISHED_FILE):
        self.path = Path(path)
        self.what = what
        # ---- the layout
        self.settings_path = self.path / settings_file
        self.finished_path = self.path / finished_file
        self.model_path = self.path / MODEL_FILE
        self.history_path = self.path / HISTORY_FILE
        self.backup_dir = self.path / BACKUP_DIR
        self.logs_dir = self.path / LOGS_DIR
        self._settings: dict[str, Any] = {}
        self._resumable = True
        self._started = False

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    # ---- what it holds
    def is_finished(self) -> bool:
        """Whether it holds a finished run (its finished file is written last)."""
        return self.finished_path.exists()

    def finished_metrics(self) -> dict[str, Any]:
        """The finished run's record (``metrics.json``)."""
        return json.loads(self.finished_path.read_text())

    def completed_epochs(self) -> int | None:
        """The last epoch an unfinished run committed, or None (fresh, or unreadable:
        the run state says why when it resumes)."""
        try:
            return int(json.loads((self.backup_dir / BACKUP_STATE_FILE).read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def history(self) -> list[dict[str, float]]:
        """The committed epochs' rows of ``history.csv``."""
        return read_history(self.history_path)

    def changes(self, settings: dict[str, Any]) -> list[str] | None:
        """What differs from the recorded settings (:func:`settings_changes`)."""
        return settings_changes(self.settings_path, settings)

    def record(self, settings: dict[str, Any]) -> None:
        """Writes ``settings`` as the record a resumed run must repeat."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(json_ready(settings), self.settings_path)

    # ---- the lifecycle
    def lock(self) -> contextlib.AbstractContextManager:
        """The directory's lock alone (:func:`directory_lock`)."""
        return directory_lock(self.path, self.what)

    @contextlib.contextmanager
    def open(self, settings: dict[str, Any], *, overwrite: bool = False, resumable: bool = True):
        """Holds the lock, prepares the directory for a run of ``settings``
        and cleans up a start that fails (class docstring)."""
        with self.lock():
            created = not self.path.exists()
            if resumable:
                self._prepare(overwrite, settings)
            self._make_writable()
            self._settings, self._resumable, self._started = settings, resumable, False
            fresh = not resumable or not self.settings_path.exists()
            if resumable and not fresh:
                changed = self.changes(settings)
                if changed:
                    raise RunSettingsChangedError(
                        f"{self.path} holds an unfinished run with other settings "
                        f"({'; '.join(changed)}); repeat its settings to resume it, or pass "
                        "overwrite=True to train afresh.")
            if resumable and fresh:
                self.record(settings)
            try:
                yield self
            except BaseException:
                if fresh and not self._started:  # it never started: leave nothing of it
                    if created:
                        shutil.rmtree(self.path, ignore_errors=True)
                    elif resumable:
                        self.settings_path.unlink(missing_ok=True)
                raise

    def started(self) -> None:
        """Marks the run as started: a failure from here on leaves it to resume."""
        self._started = True

    def finish(self, metrics: dict[str, Any]) -> None:
        """Writes the finished record (last, so that its presence means
        finished) and drops the unfinished run's backup."""
        self.started()
        if not self._resumable:  # run whole: its record is written with its results
            self.record(self._settings)
        atomic_write_json(metrics, self.finished_path)
        shutil.rmtree(self.backup_dir, ignore_errors=True)

    def _prepare(self, overwrite: bool, settings: dict[str, Any]) -> None:
        """A finished run refused, or with ``overwrite`` removed; an unfinished
        one kept to resume or, with ``overwrite``, emptied of its state."""
        if self.is_finished():
            changed = self.changes(settings)
            if changed and not overwrite:
                raise RunSettingsChangedError(
                    f"{self.path} holds a finished run with other settings ({'; '.join(changed)}); "
                    "repeat its settings to read it, or pass overwrite=True to train afresh.")
            if not overwrite:
                raise RunFinishedError(
                    f"{self.path} already holds a finished run ({self.finished_path.name} exists); "
                    "pass overwrite=True to train it again.", self.path)
            shutil.rmtree(self.path)
        elif overwrite:  # an unfinished run: start it afresh
            shutil.rmtree(self.backup_dir, ignore_errors=True)
            self.history_path.unlink(missing_ok=True)
            self.settings_path.unlink(missing_ok=True)

    def _make_writable(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as error:
            raise OSError(f"{self.what} {self.path} is not writable: {error.strerror}.") from None


def read_history(path: Path) -> list[dict[str, float]]:
    """The rows of a run's ``history.csv`` (one per epoch, numbered from 1)."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [{key: float(value) for key, value in row.items() if value not in ("", None)}
                for row in csv.DictReader(handle)]
