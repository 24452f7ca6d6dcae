"""Keras Tuner's own tuners (Hyperband, BayesianOptimization, RandomSearch)
for zoo hypermodels, and the roles of its distributed mode.

The tuners are Keras Tuner's classes with two hooks added: each finished
trial's tuner id and wall time are written beside Keras Tuner's
``trial.json`` (``trial_<id>/zoo_trial.json``, so a distributed search shows
which worker ran what), and Keras' global state — with the gradient functions
that the custom layers' ``@tf.custom_gradient`` ops registered in TensorFlow
(each holds a traced graph) — is cleared between trials. Oracle, scheduling,
checkpoints and resumption are Keras Tuner's; its JSON state files are written
atomically here (a temporary file renamed into place), so a search killed at
any moment can be reloaded.

Distributed search (Keras Tuner's chief/worker mode): run the same command
in every process, with

    KERASTUNER_TUNER_ID     "chief" for the process that serves the oracle,
                            a unique id ("tuner0", "tuner1", ...) for each worker
    KERASTUNER_ORACLE_IP    address the chief listens on / workers connect to
    KERASTUNER_ORACLE_PORT  its port

The chief runs no trials: it hands them out, records them, and when the
search is over retrains and evaluates the best model. Workers run trials and
write their checkpoints under the same ``directory`` (share it, e.g. over NFS,
so that Hyperband can continue a promoted trial on another worker). Give each
worker one GPU with ``CUDA_VISIBLE_DEVICES=<index>`` on a multi-GPU machine.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import keras_tuner
from keras_tuner.src import utils as _keras_tuner_utils

from tuning.hypermodel import ZooHyperModel, release_memory
from zoo.io import atomic_write_json, atomic_write_text

_save_json_in_place = _keras_tuner_utils.save_json


def _save_json_atomically(path, obj):
    """Keras Tuner's ``utils.save_json`` (oracle.json, trial.json, tuner0.json),
    written to a temporary file and renamed over: Keras Tuner truncates the file
    and then writes it, and a search killed in between could not be reloaded."""
    if "://" in str(path):  # a remote file system: Keras Tuner's own writer
        return _save_json_in_place(path, obj)
    text = json.dumps(obj)
    atomic_write_text(text, path)
    return text


_load_json = _keras_tuner_utils.load_json


def _load_json_naming_the_file(path):
    """Keras Tuner's ``utils.load_json``; a corrupt file is named in the error."""
    try:
        return _load_json(path)
    except ValueError as error:  # json.JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"Keras Tuner file {path} is corrupt ({error}); the search cannot be "
                         "resumed: pass overwrite=True (--overwrite) to start it afresh.") from None


_keras_tuner_utils.save_json = _save_json_atomically
_keras_tuner_utils.load_json = _load_json_naming_the_file

TUNERS = ("hyperband", "bayesian", "random")
OBJECTIVE = keras_tuner.Objective("val_accuracy", direction="max")
TRIAL_RECORD = "zoo_trial.json"

ROLES = ("local", "chief", "worker")


def distributed_role() -> str:
    """"local" without Keras Tuner's distributed environment, else "chief" or
    "worker" (from KERASTUNER_TUNER_ID, as Keras Tuner decides it)."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "local"
    missing = [name for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID")
               if not os.environ.get(name)]
    if missing:
        raise ValueError(f"KERASTUNER_ORACLE_IP is set but {' and '.join(missing)} is not: "
                         "distributed tuning needs all three (see tuning.tuners).")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def custom_gradient_mark() -> int:
    """TensorFlow's op uid counter now; what ``@tf.custom_gradient`` registers
    later has a larger one."""
    from tensorflow.python.framework import ops

    return ops.uid()


def forget_custom_gradients(since: int) -> int:
    """Removes the gradient functions that ``@tf.custom_gradient`` (every
    custom layer's op) registered in TensorFlow's global gradient registry
    while tracing after ``custom_gradient_mark()`` returned ``since``; returns
    how many. TensorFlow never removes them ("CustomGradient-<uid>"), and each
    holds its traced graph: a search leaked ~4 MB per trial of a tiny cnn1d.
    Only for graphs that are no longer used (a finished trial's models)."""
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):  # another TensorFlow version: leave it
        return 0
    prefix = "CustomGradient-"
    names = [name for name in registry if name.startswith(prefix)
             and name[len(prefix):].isdigit() and int(name[len(prefix):]) > since]
    for name in names:
        del registry[name]
    return len(names)


class _ZooTunerHooks:
    """Trial hooks shared by the three tuners (a mixin over a Keras Tuner tuner)."""

    def on_trial_begin(self, trial):
        self._trial_started = time.time()
        self._gradients_mark = custom_gradient_mark()
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        # Written before the oracle records the end: a process killed between
        # the two re-runs the trial, and the record is rewritten then.
        record = {
            "trial_id": trial.trial_id,
            "tuner_id": self.tuner_id,
            "status": trial.status,
            "started": self._trial_started,
            "wall_time_s": round(time.time() - self._trial_started, 3),
        }
        atomic_write_json(record, Path(self.get_trial_dir(trial.trial_id)) / TRIAL_RECORD)
        super().on_trial_end(trial)
        self.trials_run.append(trial.trial_id)
        forget_custom_gradients(self._gradients_mark)  # the trial's graphs, freed by:
        release_memory()

    @property
    def trials_run(self) -> list[str]:
        """Ids of the trials this process ran (in this session)."""
        if not hasattr(self, "_trials_run"):
            self._trials_run = []
        return self._trials_run


class HyperbandTuner(_ZooTunerHooks, keras_tuner.Hyperband):
    """``keras_tuner.Hyperband`` with the zoo's trial hooks."""


class BayesianTuner(_ZooTunerHooks, keras_tuner.BayesianOptimization):
    """``keras_tuner.BayesianOptimization`` with the zoo's trial hooks."""


class RandomTuner(_ZooTunerHooks, keras_tuner.RandomSearch):
    """``keras_tuner.RandomSearch`` with the zoo's trial hooks."""


def check_tuner_name(tuner: str) -> str:
    if tuner not in TUNERS:
        raise ValueError(f"Unknown tuner {tuner!r}. Expected one of {', '.join(TUNERS)}.")
    return tuner


def make_tuner(
    tuner: str,
    hypermodel: ZooHyperModel,
    *,
    max_trials: int | None,
    max_epochs: int,
    directory: str | os.PathLike,
    project_name: str,
    overwrite: bool = False,
    seed: int | None = None,
    distribution_strategy: Any = None,
    hyperband_factor: int = 3,
    hyperband_iterations: int = 1,
) -> keras_tuner.Tuner:
    """A Keras Tuner tuner by name, maximising ``val_accuracy``.

    It reloads the search stored under ``directory/project_name`` unless
    ``overwrite`` (Keras Tuner's own resumption). For Hyperband, ``max_epochs``
    is its largest training budget per model and ``max_trials`` (if given)
    caps the number of trials; for the other two, ``max_trials`` is the search
    length. A worker of a distributed search never overwrites: the chief owns
    the project directory.
    """
    check_tuner_name(tuner)
    common = dict(
        hypermodel=hypermodel,
        objective=OBJECTIVE,
        seed=seed,
        directory=os.fspath(directory),
        project_name=project_name,
        overwrite=overwrite and distributed_role() != "worker",
        distribution_strategy=distribution_strategy,
    )
    if tuner == "hyperband":
        instance = HyperbandTuner(max_epochs=max_epochs, factor=hyperband_factor,
                                  hyperband_iterations=hyperband_iterations, **common)
        if max_trials is not None:
            # Keras Tuner's Oracle stops creating trials at `max_trials`;
            # Hyperband's oracle otherwise leaves it unset.
            _oracle(instance).max_trials = max_trials
        return instance
    if tuner == "bayesian":
        return BayesianTuner(max_trials=max_trials, **common)
    return RandomTuner(max_trials=max_trials, **common)


def _oracle(instance: keras_tuner.Tuner):
    """The tuner's own Oracle (a worker wraps it in an OracleClient)."""
    return getattr(instance.oracle, "_oracle", instance.oracle)
