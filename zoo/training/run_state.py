"""The run state: what ``zoo.training`` commits after every epoch so that an
interrupted run resumes exactly where it stopped (:class:`RunState`)."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from zoo import runs
from zoo._compat import start_fit_at_epoch
from zoo.files import atomic_path, atomic_write_json


class RunState(keras.callbacks.Callback):
    """The state of a run — weights with the optimizer's state, the
    early-stopping state with its best weights, and the history — committed
    together at the end of every epoch, so that a process killed at any
    moment (SIGKILL included) resumes from its last completed epoch as if it
    had never stopped.

    ``keras.callbacks.BackupAndRestore(delete_checkpoint=False,
    double_checkpoint=True)`` keeps a readable backup of the weights, the
    optimizer and the epoch, but nothing else: a resumed run forgets
    EarlyStopping's best epoch, best weights and patience (so it trains
    longer, and may return other weights), and the history that ``CSVLogger``
    appends is written apart from the backup (a kill between the two loses or
    repeats a row). Here one ``state.json`` names everything of the epoch:
    the weights and the best weights go to new files first, then
    ``state.json`` replaces the previous one (the commit); ``history.csv`` is
    rewritten from it. Nothing is deleted when ``fit`` returns: ``train``
    removes the backup once ``metrics.json`` is written.

    Place it after the early-stopping and weight-penalty callbacks
    (:func:`zoo.training.engine.training_callbacks` does), so that it commits
    their state of the epoch. It resumes ``fit`` and the multi-worker loop
    alike (``zoo._compat.start_fit_at_epoch``).
    """

    STATE = runs.BACKUP_STATE_FILE

    def __init__(self, backup_dir: Path, history_path: Path,
                 early_stopping: keras.callbacks.EarlyStopping | None = None):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.history_path = Path(history_path)
        self.early_stopping = early_stopping
        self.history: list[dict[str, float]] = []
        self._best_file: str | None = None
        self._earlier_seconds, self._started = 0.0, None

    def fit_seconds(self) -> float:
        """Seconds of training of the whole run: those its earlier processes
        committed (``fit_seconds`` in ``state.json``) and this process's."""
        ours = 0.0 if self._started is None else time.perf_counter() - self._started
        return self._earlier_seconds + ours

    def _corrupt(self, detail: str) -> ValueError:
        return ValueError(f"The backup in {self.backup_dir} is corrupt or from another model "
                          f"({detail}); delete that directory to train from scratch, or pass "
                          "overwrite=True (--overwrite).")

    def on_train_begin(self, logs=None):
        self.history, self._best_file = [], None
        self._earlier_seconds, self._started = 0.0, time.perf_counter()
        state_path = self.backup_dir / self.STATE
        if not state_path.exists():  # a fresh start: no history either
            self.history_path.unlink(missing_ok=True)
            return
        try:
            state = json.loads(state_path.read_text())
            epoch, weights, history = state["epoch"], state["weights"], state["history"]
            stopping = state.get("early_stopping")
            self._earlier_seconds = float(state.get("fit_seconds", 0.0))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise self._corrupt(f"{state_path.name}: {error}") from None
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # its variables are in the file
        try:
            self.model.load_weights(self.backup_dir / weights)
            if stopping and stopping.get("best_weights_file") and self.early_stopping is not None:
                with np.load(self.backup_dir / stopping["best_weights_file"]) as arrays:
                    best_weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
            else:
                best_weights = None
        except Exception as error:  # h5py, numpy and Keras raise many types for a bad file
            raise self._corrupt(f"{weights}: {str(error).strip().splitlines()[0] if str(error) else ''}"
                                ) from None
        if stopping and self.early_stopping is not None:
            # EarlyStopping.on_train_begin (earlier in the list) has just reset these.
            for key in ("best", "best_epoch", "wait", "stopped_epoch"):
                setattr(self.early_stopping, key, stopping[key])
            self.early_stopping.best_weights = best_weights
            self._best_file = stopping.get("best_weights_file")
        self.history = list(history)
        # Nothing more to train once early stopping has ended the run: the
        # fit then only restores the best weights and returns.
        start_fit_at_epoch(self.model, self.params.get("epochs", epoch) if state.get("stopped") else epoch)
        self._write_history()

    def on_epoch_end(self, epoch, logs=None):
        completed = epoch + 1
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        # Numbered from 1, as Keras' progress output and the curves number epochs.
        row = {"epoch": completed, **{key: _loggable(value)
                                      for key, value in sorted((logs or {}).items())
                                      if key != "epoch"}}
        history = [*self.history, row]
        # New file names: what the committed state.json names is never rewritten.
        weights = f"epoch-{completed}.weights.h5"
        self._check_space(completed)
        try:
            self.model.save_weights(self.backup_dir / weights, overwrite=True)
            _fsync(self.backup_dir / weights)
        except OSError as error:
            (self.backup_dir / weights).unlink(missing_ok=True)
            raise self._not_committed(completed, error.strerror or str(error)) from None
        stopping = None
        if self.early_stopping is not None:
            es = self.early_stopping
            if es.best_weights is not None and (es.best_epoch == epoch or self._best_file is None):
                self._best_file = f"best-epoch-{es.best_epoch + 1}.npz"
                _atomic_savez(self.backup_dir / self._best_file, es.best_weights)
            stopping = {"best": None if es.best is None else float(es.best),
                        "best_epoch": int(es.best_epoch), "wait": int(es.wait),
                        "stopped_epoch": int(es.stopped_epoch),
                        "best_weights_file": self._best_file if es.best_weights is not None else None}
        state = {"epoch": completed, "weights": weights, "history": history,
                 "early_stopping": stopping, "stopped": bool(self.model.stop_training),
                 "fit_seconds": self.fit_seconds()}
        atomic_write_json(state, self.backup_dir / self.STATE)  # the commit
        self.history = history
        keep = {self.STATE, weights, self._best_file}
        for path in self.backup_dir.iterdir():  # earlier epochs, unfinished temporary files
            if path.name not in keep and path.is_file():
                path.unlink(missing_ok=True)
        self._write_history()

    def _not_committed(self, completed: int, reason: str) -> OSError:
        return OSError(f"Could not commit epoch {completed} to {self.backup_dir}: {reason}; the "
                       f"run state keeps epoch {completed - 1}. Free some space and run the same "
                       "command again to resume.")

    def _check_space(self, completed: int) -> None:
        """Refuses to start writing an epoch that cannot fit on the disk: h5py,
        out of space in the middle of a weights file, can crash the process."""
        variables = [*self.model.weights,
                     *(self.model.optimizer.variables if self.model.optimizer is not None else [])]
        needed = sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables)
        if self.early_stopping is not None and self.early_stopping.best_weights is not None:
            needed += sum(np.asarray(w).nbytes for w in self.early_stopping.best_weights)
        needed = int(needed * 1.1) + 2**20  # HDF5's headers, state.json, history.csv
        free = shutil.disk_usage(self.backup_dir).free
        if free < needed:
            raise self._not_committed(
                completed, f"No space left on device (about {needed / 2**20:.1f} MB needed, "
                           f"{free / 2**20:.1f} MB free)")

    def _write_history(self) -> None:
        # epoch first, then the metrics by name: the same columns whether the
        # rows were logged in this process or read back from state.json
        columns = ["epoch", *sorted({key for row in self.history for key in row} - {"epoch"})]
        with atomic_path(self.history_path) as temporary, temporary.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.history)


def _loggable(value: Any) -> float | str:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _atomic_savez(path: Path, arrays: list) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, *arrays)
