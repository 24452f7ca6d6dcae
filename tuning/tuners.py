"""Keras Tuner's own tuners (Hyperband, BayesianOptimization, RandomSearch)
for zoo hypermodels, and the roles of its distributed mode.

The tuners are Keras Tuner's classes with the hooks of :class:`ZooTuner`
added: each finished trial's tuner id and wall time are written beside Keras
Tuner's ``trial.json`` (``trial_<id>/zoo_trial.json``, so a distributed search
shows which worker ran what), Keras' global state — with the gradient
functions that the custom layers' ``@tf.custom_gradient`` ops registered in
TensorFlow (each holds a traced graph) — is cleared between trials, and
observers see each finished trial. Oracle, scheduling, checkpoints and
resumption are Keras Tuner's; while a zoo tuner runs, its JSON state files
are written atomically (``tuning._compat``), so a search killed at any moment
can be reloaded.

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
from typing import Any, Callable, Sequence

import keras
import keras_tuner

from custom_layers.arguments import check_choice
from tuning import TUNERS
from tuning._compat import (
    atomic_keras_tuner_state,
    custom_gradient_mark,
    forget_custom_gradients,
    own_oracle,
)
from tuning.budget import SearchClock, stop_creating_trials
from tuning.pruners import AshaPruner, MedianPruner
from tuning.hypermodel import ZooHyperModel, release_memory
from zoo.files import atomic_write_json

OBJECTIVE = keras_tuner.Objective("val_accuracy", direction="max")
TRIAL_RECORD = "zoo_trial.json"


def read_trial_record(trial_dir: str | os.PathLike) -> dict[str, Any]:
    """A trial's ``zoo_trial.json`` (:class:`ZooTuner`), or {} while it has none."""
    try:
        return json.loads((Path(trial_dir) / TRIAL_RECORD).read_text())
    except (OSError, ValueError):
        return {}


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


TrialObserver = Callable[[keras_tuner.engine.trial.Trial], None]


class StopWhenBudgetSpent(keras.callbacks.Callback):
    """Commits the search's time after every epoch of a trial and, once the
    budget is spent, ends the trial at that epoch boundary (its best epoch so
    far is its score, as for early stopping)."""

    def __init__(self, clock: SearchClock):
        super().__init__()
        self.clock = clock
        self.stopped_a_trial = False

    def on_epoch_end(self, epoch, logs=None):
        self.clock.commit()
        if self.clock.exhausted():
            self.model.stop_training = True
            self.stopped_a_trial = True


class ZooTuner:
    """What the zoo adds to a Keras Tuner tuner (a mixin over one of its
    tuners): a record of each finished trial, Keras' global state and the
    trial's custom-gradient registrations released between trials, Keras
    Tuner's state files written atomically while it runs, and observers.

    Args (besides the Keras Tuner tuner's own):
        trial_observers: functions called with each finished trial, after
            its record is written and its memory released (e.g. to sample
            the RSS, as ``benchmarks/memory.py`` does).
        release_custom_gradients: remove the custom gradients a finished
            trial registered in TensorFlow (default True; False only to
            measure the leak it prevents).
        clock: the search's time and budget (``tuning.budget.SearchClock``):
            once it is spent, the oracle creates no more trials.
        pruner: stops a trial behind the others after an epoch
            (``tuning.pruners``); the trial is recorded as pruned (Keras
            Tuner's status STOPPED, so it is never the best).
    """

    def __init__(self, *args, trial_observers: Sequence[TrialObserver] = (),
                 release_custom_gradients: bool = True, clock: SearchClock | None = None,
                 pruner: MedianPruner | AshaPruner | None = None, **kwargs):
        self.trial_observers = list(trial_observers)
        self.release_custom_gradients = release_custom_gradients
        self.clock = clock
        self.pruner = pruner
        self._histories: dict[str, list[float]] = {}  # finished trials' val_accuracy by epoch
        self.trials_run: list[str] = []  # ids of the trials this process ran
        with atomic_keras_tuner_state():  # the tuner reloads and writes its state here
            super().__init__(*args, **kwargs)

    def search(self, *args, **kwargs):
        with atomic_keras_tuner_state():
            return super().search(*args, **kwargs)

    def pre_create_trial(self):
        if self.clock is not None and self.clock.exhausted():
            stop_creating_trials(own_oracle(self))
        super().pre_create_trial()

    def on_trial_begin(self, trial):
        self._trial_started = time.time()
        self._epoch_values: list[float] = []
        self._pruned_at: int | None = None
        # TensorFlow keeps every @tf.custom_gradient registration; other backends hold none
        self.release_custom_gradients &= keras.backend.backend() == "tensorflow"
        if self.release_custom_gradients:
            self._gradients_mark = custom_gradient_mark()
        super().on_trial_begin(trial)

    def on_epoch_end(self, trial, model, epoch, logs=None):
        """Records the epoch's validation accuracy and, with a pruner, stops
        the trial when it is behind the finished trials at this epoch."""
        super().on_epoch_end(trial, model, epoch, logs=logs)
        if (logs or {}).get("val_accuracy") is None:
            return
        self._epoch_values.append(float(logs["val_accuracy"]))
        if self.pruner is not None and self._pruned_at is None and self.pruner.should_prune(
                self._epoch_values, self._finished_histories(trial.trial_id)):
            model.stop_training = True
            self._pruned_at = len(self._epoch_values)

    def _finished_histories(self, trial_id: str) -> list[list[float]]:
        """The per-epoch validation accuracies of the other finished trials
        (pruned ones too), from their records (an earlier process's included)."""
        histories = []
        for other_id, other in own_oracle(self).trials.items():
            if other_id == trial_id or other.status not in ("COMPLETED", "STOPPED"):
                continue
            if other_id not in self._histories:
                record = read_trial_record(self.get_trial_dir(other_id))
                self._histories[other_id] = list(record.get("val_accuracy_history") or [])
            histories.append(self._histories[other_id])
        return [history for history in histories if history]

    def on_trial_end(self, trial):
        if self._pruned_at is not None and trial.status == "COMPLETED":
            trial.status = keras_tuner.engine.trial.TrialStatus.STOPPED  # never the best
        # Written before the oracle records the end: a process killed between
        # the two re-runs the trial, and the record is rewritten then.
        record = {
            "trial_id": trial.trial_id,
            "tuner_id": self.tuner_id,
            "status": trial.status,
            "started": self._trial_started,
            "wall_time_s": round(time.time() - self._trial_started, 3),
            "val_accuracy_history": self._epoch_values,
            "pruned_at_epoch": self._pruned_at,
        }
        self._histories[trial.trial_id] = list(self._epoch_values)
        atomic_write_json(record, Path(self.get_trial_dir(trial.trial_id)) / TRIAL_RECORD)
        super().on_trial_end(trial)
        self.trials_run.append(trial.trial_id)
        if self.release_custom_gradients:
            forget_custom_gradients(self._gradients_mark)  # the trial's graphs, freed by:
        release_memory()
        for observe in self.trial_observers:
            observe(trial)


class HyperbandTuner(ZooTuner, keras_tuner.Hyperband):
    """``keras_tuner.Hyperband`` with the zoo's trial hooks."""


class BayesianTuner(ZooTuner, keras_tuner.BayesianOptimization):
    """``keras_tuner.BayesianOptimization`` with the zoo's trial hooks."""


class DistinctRandomSearchOracle(keras_tuner.oracles.RandomSearchOracle):
    """Keras Tuner's random search, whose seeded draws are distinct trials.

    Keras Tuner draws each value from a counter of seeds
    (``random.Random(seed_state)``, one seed per value) and refuses only
    exact repeats, so nearby seeds can give a trial that repeats an earlier
    one to three decimals (seed 0: trials #1 and #2 both λ = 0, dropout
    0.3138 and 0.3139). A draw whose every choice equals an earlier trial's
    and every number lies within :attr:`SAME_WITHIN` of its range (on its
    sampling's scale: log for λ) is drawn again from the following seeds;
    the same seed still gives the same trials."""

    SAME_WITHIN = 0.01
    REDRAWS = 100

    def populate_space(self, trial_id):
        for _ in range(self.REDRAWS):
            proposal = super().populate_space(trial_id)
            if proposal["values"] is None or not self._repeats_a_trial(proposal["values"], trial_id):
                break
        return proposal

    def _repeats_a_trial(self, values: dict, trial_id: str) -> bool:
        space = {hp.name: hp for hp in self.hyperparameters.space}
        return any(other_id != trial_id and self.same_values(values, trial.hyperparameters.values,
                                                             space)
                   for other_id, trial in self.trials.items())

    @classmethod
    def same_values(cls, ours: dict, theirs: dict, space: dict) -> bool:
        """Whether two trials' values are the same configuration: the same
        names, equal choices, numbers within :attr:`SAME_WITHIN` of their range."""
        if set(ours) != set(theirs):
            return False
        for name, value in ours.items():
            hp = space.get(name)
            if isinstance(hp, keras_tuner.engine.hyperparameters.Float):
                if abs(hp.value_to_prob(value) - hp.value_to_prob(theirs[name])) > cls.SAME_WITHIN:
                    return False
            elif value != theirs[name]:
                return False
        return True


class RandomTuner(ZooTuner, keras_tuner.Tuner):
    """``keras_tuner.RandomSearch`` with the zoo's trial hooks, drawing
    distinct trials (:class:`DistinctRandomSearchOracle`)."""

    def __init__(self, hypermodel=None, objective=None, max_trials=10, seed=None, **kwargs):
        oracle = DistinctRandomSearchOracle(objective=objective, max_trials=max_trials, seed=seed)
        super().__init__(oracle, hypermodel, **kwargs)


def check_tuner_name(tuner: str) -> str:
    if tuner not in TUNERS:
        check_choice(tuner, TUNERS, "tuner")
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
    trial_observers: Sequence[TrialObserver] = (),
    release_custom_gradients: bool = True,
    clock: SearchClock | None = None,
    pruner: MedianPruner | AshaPruner | None = None,
) -> ZooTuner:
    """A Keras Tuner tuner by name, maximising ``val_accuracy``.

    It reloads the search stored under ``directory/project_name`` unless
    ``overwrite`` (Keras Tuner's own resumption). For Hyperband, ``max_epochs``
    is its largest training budget per model and ``max_trials`` (if given)
    caps the number of trials; for the other two, ``max_trials`` is the search
    length. A worker of a distributed search never overwrites: the chief owns
    the project directory. ``trial_observers``, ``release_custom_gradients``,
    ``clock`` and ``pruner``: see :class:`ZooTuner`.
    """
    check_tuner_name(tuner)
    if pruner is not None and distributed_role() != "local":
        raise ValueError("A pruner compares a trial with the others' epochs, which a worker of a "
                         "distributed search does not see; pass pruner='none' there.")
    common = dict(
        hypermodel=hypermodel,
        objective=OBJECTIVE,
        seed=seed,
        directory=os.fspath(directory),
        project_name=project_name,
        overwrite=overwrite and distributed_role() != "worker",
        distribution_strategy=distribution_strategy,
        trial_observers=trial_observers,
        release_custom_gradients=release_custom_gradients,
        clock=clock,
        pruner=pruner,
    )
    if tuner == "hyperband":
        instance = HyperbandTuner(max_epochs=max_epochs, factor=hyperband_factor,
                                  hyperband_iterations=hyperband_iterations, **common)
        if max_trials is not None:
            # Keras Tuner's Oracle stops creating trials at `max_trials`;
            # Hyperband's oracle otherwise leaves it unset.
            own_oracle(instance).max_trials = max_trials
        return instance
    if tuner == "bayesian":
        return BayesianTuner(max_trials=max_trials, **common)
    return RandomTuner(max_trials=max_trials, **common)
