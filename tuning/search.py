"""``tune``: search λ and the dropout rate of a zoo model with Keras Tuner,
then retrain the best configuration and evaluate it on the test split.

A search is defined by a :class:`SearchConfig` (model, dataset, tuner, space,
training settings); how it runs (where, how many trials, devices, export) are
keyword options of :func:`tune`. The search trains on the dataset's "train"
split and scores each trial by its best ``val_accuracy`` on "validation";
"test" is used once, for the final model. Everything lives in the project
directory ``directory/project_name``:

    oracle.json, tuner*.json, trial_*/    Keras Tuner's own state (resumable)
    trial_*/zoo_trial.json                which tuner ran the trial, its wall time
    zoo_search.json                       the SearchConfig a resumed search must keep
    final/                                the best configuration retrained: a zoo.train run
    best_model.keras                      the final model
    results.json                          best hyperparameters, test accuracy, trial table
    search.png                            validation accuracy over (λ, dropout rate)

Re-running the same call after an interruption (Ctrl-C, a crash, kill -9)
continues the search: Keras Tuner reloads its oracle from the directory,
finished trials are kept, a trial that was running is run again; a final
retraining that was running resumes from its last completed epoch (it is an
ordinary ``zoo.train`` run in ``final/``). Resuming with another
SearchConfig is refused, since Keras Tuner would silently keep the stored one.

Devices: GPU memory growth is turned on before anything touches a GPU;
with two or more GPUs each trial runs mirrored (``tf.distribute.MirroredStrategy``;
``keras.distribution.DataParallel`` on JAX)
(``distribution_strategy="auto"``), with per-replica ``batch_size`` and
``drop_remainder=True``; ``precision`` ("auto": the fastest precision the
device computes natively, ``zoo.training.precision``) sets the dtype policy
the models are built under, and is part of what a resumed search must keep.
The same code runs on the CPU unchanged. Across
processes or machines, use Keras Tuner's chief/worker mode (``tuning.tuners``),
one GPU per worker via ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import keras
import keras_tuner

from custom_layers.arguments import check_choice, check_int, invalid
from tuning import TUNERS
from tuning.budget import SearchClock, parse_duration, stop_when_spent
from tuning.front import check_objectives, pareto_front, parse_pick, pick_member, plot_front
from tuning.hypermodel import ZooHyperModel, check_not_tuned, release_memory, widened
from tuning.pruners import make_pruner
from tuning.report import plot_search, trial_number, trial_table
from tuning.search_space import DROPOUT_RATE, LEARNING_RATE, WEIGHT_DECAY, WIDTH, SearchSpace, trial_values
from tuning.tuners import StopWhenBudgetSpent, TrialObserver, distributed_role, make_tuner
from tuning.vocabulary import PRUNERS, SEARCH
from zoo import datasets, runs
from zoo.files import atomic_write_json
from zoo.io import atomic_save_model, load_model
from zoo.training import (
    TrainConfig,
    TrainResult,
    compile_model,
    enable_gpu_memory_growth,
    make_strategy,
    train,
)
from zoo.training.config import split_settings
from zoo.training.engine import is_multi_worker, resolve_verbose, tensorboard_callback
from zoo.training.precision import (
    announce,
    choose_precision,
    detect_device,
    precision_scope,
)

DEFAULT_DIRECTORY = Path("runs") / "tuning"
DEFAULT_MAX_TRIALS = 10  # bayesian and random; Hyperband sets its own unless capped
RESULTS_FILE = "results.json"
PLOT_FILE = "search.png"
FRONT_PLOT_FILE = "front.png"
BEST_MODEL_FILE = "best_model.keras"
SETTINGS_FILE = "zoo_search.json"
FINAL_RUN = "final"
STRATEGIES = ("auto", "none", "mirrored")


@dataclass(frozen=True)
class SearchConfig:
    """What defines a search; :meth:`settings` is the record a resumed search
    must repeat.

    Args:
        training: what each trial trains and the final model retrains (a
            ``zoo.training.TrainConfig``: model, dataset, fixed model
            arguments, epochs, batch size, optimizer, schedule, patience,
            seed, precision); its ``epochs`` are the most one model trains
            (Hyperband's largest budget). Default: ``TrainConfig("cnn1d")``.
        tuner: "hyperband" (default), "bayesian" or "random". Hyperband
            trains most trials a few epochs and continues the best; Bayesian
            optimisation and random search train every trial ``epochs``.
        search_space: the ranges (a ``SearchSpace``, or its ``to_dict()``).
        hyperband_factor, hyperband_iterations: Hyperband's schedule.
        time_budget: the search's wall-clock budget, in seconds or as
            ``"30m"``, ``"1h30m"`` (``tuning.budget``): no trial starts once it
            is spent, the trial in flight ends at its next epoch, and the best
            is still retrained and reported; a resumed search counts the time
            already spent. None (default): no budget.
        pruner: "none" (default), "median" or "asha" (``tuning.pruners``):
            stops a random or Bayesian search's trial that is behind the
            others after an epoch; it is recorded as pruned, never the best.
        objectives: ("val_accuracy",) (default) or ("val_accuracy", "macs"):
            also report the front of accuracy against multiply-accumulates
            (``tuning.front``), with a search space that may include ``width``.
    """

    training: TrainConfig = field(default_factory=lambda: TrainConfig("cnn1d"))
    tuner: str = SEARCH["tuner"].default
    search_space: SearchSpace = field(default_factory=SearchSpace)
    hyperband_factor: int = SEARCH["hyperband_factor"].default
    hyperband_iterations: int = SEARCH["hyperband_iterations"].default
    time_budget: float | str | None = SEARCH["time_budget"].default
    pruner: str = SEARCH["pruner"].default
    objectives: tuple[str, ...] | str = SEARCH["objectives"].default

    def __post_init__(self):
        if not isinstance(self.training, TrainConfig):
            raise invalid("training", "a zoo.training.TrainConfig", self.training)
        if not self.training.registered:
            raise ValueError("A search builds its models by name; this TrainConfig names none "
                             "from the registry.")
        check_not_tuned(self.training.model_arguments)
        check_choice(self.tuner, TUNERS, "tuner")
        if isinstance(self.search_space, dict):
            object.__setattr__(self, "search_space", SearchSpace.from_dict(self.search_space))
        elif not isinstance(self.search_space, SearchSpace):
            raise invalid("search_space", "a tuning.SearchSpace", self.search_space)
        check_int(self.hyperband_factor, "hyperband_factor", minimum=2)
        check_int(self.hyperband_iterations, "hyperband_iterations", minimum=1)
        if self.time_budget is not None:
            object.__setattr__(self, "time_budget", parse_duration(self.time_budget))
        check_choice(self.pruner, PRUNERS, "pruner")
        object.__setattr__(self, "objectives", check_objectives(self.objectives))
        if self.pruner != "none" and self.tuner == "hyperband":
            raise ValueError(f"pruner={self.pruner!r} stops trials of a random or bayesian search; "
                             "Hyperband stops trials by its own brackets: pass tuner='random' or "
                             "'bayesian', or pruner='none'.")

    @classmethod
    def from_arguments(cls, config: Any = None, dataset: str | None = None, /,
                       **settings: Any) -> SearchConfig:
        """A SearchConfig from ``tune``'s arguments: ``config`` itself, or a
        model name (and dataset) with ``settings``: this class's fields,
        ``TrainConfig``'s, and any other keyword a fixed model argument."""
        if isinstance(config, cls):
            if dataset is not None or settings:
                raise ValueError("Pass either a SearchConfig or its settings as keywords, not both.")
            return config
        own, training_settings = split_settings(cls, settings)
        if "training" in own:
            if config is not None or dataset is not None or training_settings:
                raise ValueError("Pass either `training` or its settings as keywords, not both.")
            return cls(**own)
        if config is None and "model" not in training_settings:
            config = "cnn1d"
        training = TrainConfig.from_arguments(config, dataset, **training_settings)
        return cls(training=training, **own)

    @property
    def model(self) -> str:
        return self.training.model

    @property
    def dataset(self) -> str:
        return self.training.dataset

    def settings(self, precision: str | None = None) -> dict[str, Any]:
        """The record of this search (``precision``: the dtype policy its
        "auto" resolved to); a resumed search must repeat it."""
        return {"training": self.training.settings(precision), "tuner": self.tuner,
                "search_space": self.search_space.to_dict(),
                "hyperband_factor": self.hyperband_factor,
                "hyperband_iterations": self.hyperband_iterations,
                # recorded where set: searches recorded before they existed resume
                **({"time_budget": self.time_budget} if self.time_budget is not None else {}),
                **({"pruner": self.pruner} if self.pruner != "none" else {}),
                **({"objectives": list(self.objectives)} if self.objectives != ("val_accuracy",)
                   else {})}

    def hyperband_schedule(self) -> dict[str, int]:
        """Hyperband's factor and iterations, as ``tuning.tuners.make_tuner`` takes them."""
        return {"hyperband_factor": self.hyperband_factor,
                "hyperband_iterations": self.hyperband_iterations}

    def hypermodel(self, policy: str = "float32", jit_compile: bool | str = "auto") -> ZooHyperModel:
        """The Keras Tuner hypermodel of this search."""
        return ZooHyperModel(self.training, self.search_space, policy=policy, jit_compile=jit_compile)


@dataclass
class TuneResult:
    """What ``tune`` returns.

    On a distributed worker only ``role``, ``project_dir``, ``trials_run`` and
    ``tuner`` are set: the chief holds the results.
    """

    role: str
    project_dir: Path
    tuner: keras_tuner.Tuner
    trials_run: list[str] = field(default_factory=list)
    best_hyperparameters: dict[str, float | None] | None = None
    best_trial_id: str | None = None
    best_val_accuracy: float | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    model: keras.Model | None = None
    trials: list[dict[str, Any]] = field(default_factory=list)
    results_path: Path | None = None
    plot_path: Path | None = None
    export_dir: Path | None = None


def resolve_strategy(strategy: Any):
    """The strategy each trial runs under: "auto" mirrors over all local GPUs
    when there are two or more (else none), "none", "mirrored" (all GPUs, or
    the logical CPU devices), or a strategy instance
    (``zoo.training.make_strategy``: on JAX, ``keras.distribution``'s).
    ``MultiWorkerMirroredStrategy`` is refused: Keras 3's ``fit`` fails under
    it; spread a search over machines with Keras Tuner's chief/worker mode.
    GPU memory growth is turned on first, before anything initialises a GPU."""
    enable_gpu_memory_growth()
    if strategy == "multi-worker" or is_multi_worker(strategy):
        raise ValueError("strategy 'multi-worker' is not supported for tuning "
                         "(Keras 3's fit fails under MultiWorkerMirroredStrategy); run Keras Tuner's "
                         "chief/worker mode instead (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, "
                         "KERASTUNER_ORACLE_PORT).")
    if not isinstance(strategy, (str, type(None))):
        return make_strategy(strategy)
    name = check_choice("auto" if strategy is None else strategy, STRATEGIES, "strategy")
    if name == "auto":
        name = "mirrored" if len(detect_device().gpu_compute_capabilities) > 1 else "none"
    return make_strategy("mirrored") if name == "mirrored" else None


def tune(
    config: SearchConfig | str | None = None,
    dataset: str | None = None,
    /,
    *,
    max_trials: int | None = None,
    run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    data_dir: str | os.PathLike | None = None,
    strategy: Any = "auto",
    retrain: bool = True,
    export_dir: str | os.PathLike | None = None,
    tensorboard: bool = False,
    jit_compile: bool | str = "auto",
    verbose: int | str = "auto",
    trial_observers: Sequence[TrialObserver] = (),
    release_custom_gradients: bool = True,
    pick: str = "best",
    **settings: Any,
) -> TuneResult:
    """Runs the search ``config`` with a Keras Tuner tuner, retrains the best
    configuration as ``zoo.train`` does (in ``RUN_DIR/final``; ``retrain=False``
    reloads the best trial's checkpoint instead), evaluates it on the test split
    and writes the project (module docstring): resolve → search → final model → finish.

    ``config`` is a :class:`SearchConfig`, or a model name with ``dataset``
    and the fields of SearchConfig and ``zoo.training.TrainConfig`` as
    keywords (any other keyword is a fixed model argument):
    ``tune("cnn1d", "mnist1d", tuner="bayesian", epochs=9, filters=(8,))``.
    ``max_trials``: of a bayesian/random search (default 10), a cap for
    Hyperband. ``run_dir``: default ``runs/tuning/MODEL-DATASET-TUNER``; an
    unfinished search there resumes, a finished one returns its results,
    unless ``overwrite``. ``strategy`` as ``zoo.train``'s but "multi-worker";
    ``export_dir``: a SavedModel of the best model there; ``tensorboard``: logs
    per trial in ``RUN_DIR/logs``; the observers: ``tuning.tuners.ZooTuner``;
    ``pick``: which front member is retrained (``tuning.front``). A bad name,
    range or count raises ValueError before anything trains; RuntimeError if none completed.
    """
    # ---- resolve: the search, its precision, strategy and project, checked before any work
    config = SearchConfig.from_arguments(config, dataset, **settings)
    training = config.training
    check_int(max_trials, "max_trials", minimum=1, allow_none=True)
    _check_pick(pick, config)
    fit_verbose = resolve_verbose(verbose)
    chosen = choose_precision(training.precision)
    role = distributed_role()
    max_trials = max_trials or (None if config.tuner == "hyperband" else DEFAULT_MAX_TRIALS)
    project = project_directory(run_dir, config)
    record = config.settings(chosen.policy)
    distribution = resolve_strategy(strategy)
    replicas = distribution.num_replicas_in_sync if distribution is not None else 1
    with contextlib.ExitStack() as held:
        if role != "worker":  # workers share the chief's project
            held.enter_context(project.lock())
            if not overwrite:
                _check_same_search(project, record)
        announce(chosen, verbose=fit_verbose != 0)
        if training.seed is not None:
            keras.utils.set_random_seed(training.seed)

        # ---- search: the trials (the chief only serves the oracle: it loads no data)
        train_data, validation_data = (None, None) if role == "chief" else _search_splits(
            training, replicas, data_dir)
        clock = SearchClock(project.path, config.time_budget, resume=not overwrite)
        search_tuner = make_tuner(
            config.tuner, config.hypermodel(chosen.policy, jit_compile), max_trials=max_trials,
            max_epochs=training.epochs, directory=project.path.parent,
            project_name=project.path.name, overwrite=overwrite, seed=training.seed,
            distribution_strategy=distribution, trial_observers=trial_observers, clock=clock,
            pruner=make_pruner(config.pruner),
            release_custom_gradients=release_custom_gradients, **config.hyperband_schedule())
        if role != "worker":
            project.record(record)
        callbacks = [StopWhenBudgetSpent(clock),
                     *([tensorboard_callback(project.logs_dir)] if tensorboard else [])]
        search_time = _search(search_tuner, train_data, validation_data, training.epochs,
                              callbacks, fit_verbose, role)
        if role == "worker":
            return TuneResult(role=role, project_dir=project.path, tuner=search_tuner,
                              trials_run=list(search_tuner.trials_run))

        # ---- the best trial (or the front's pick): retrained, evaluated on the test split
        trials, best_trial, best, front = _chosen_trial(search_tuner, config, pick, project.path)
        final_model, evaluation = _final_model(
            search_tuner, best_config(training, best), best_trial, best, project.path,
            chosen.policy, retrain=retrain, strategy=distribution, data_dir=data_dir,
            jit_compile=jit_compile, verbose=fit_verbose, batch_size=training.batch_size * replicas)

        # ---- finish: the best model, its export, the results and the plot
        exported = _save_best(final_model, project, export_dir)
        _write_results(project, config, record, chosen, best_trial, best, trials, front, evaluation,
                       max_trials=max_trials, replicas=replicas, retrain=retrain,
                       search_time=search_time, exported=exported)
        return TuneResult(
            role=role, project_dir=project.path, tuner=search_tuner,
            trials_run=list(search_tuner.trials_run), best_hyperparameters=best,
            best_trial_id=best_trial.trial_id, best_val_accuracy=float(best_trial.score),
            test_accuracy=evaluation["test_accuracy"], test_loss=evaluation["test_loss"],
            model=final_model, trials=trials, results_path=project.finished_path,
            plot_path=project / PLOT_FILE, export_dir=exported)


def _save_best(model: keras.Model, project: runs.RunDirectory, export_dir) -> Path | None:
    """Saves the final model in the project and, with ``export_dir``, exports
    it there as a SavedModel (replacing an earlier export); returns where."""
    atomic_save_model(model, project / BEST_MODEL_FILE)
    if export_dir is None:
        return None
    from zoo.export import export_savedmodel  # TensorFlow's SavedModel

    return export_savedmodel(model, export_dir, replace=True)


def _write_results(project: runs.RunDirectory, config: SearchConfig, record: dict[str, Any],
                   chosen, best_trial, best: dict[str, float | None], trials: list[dict[str, Any]],
                   front: list[dict[str, Any]], evaluation: dict[str, float], *,
                   max_trials: int | None, replicas: int, retrain: bool, search_time: float,
                   exported: Path | None) -> None:
    """Writes a finished search's ``results.json`` (the training as ``zoo
    train`` records it, the search's settings, its best trial, test results
    and the trial table), then its plot of validation accuracy over the space."""
    results = {
        **config.training.settings(chosen.policy),  # flat: the training as zoo train records it
        **{key: value for key, value in record.items() if key != "training"},
        "precision_reason": chosen.reason, "objective": "val_accuracy",
        "objectives": list(config.objectives),
        "front": [{key: row[key] for key in ("trial_id", "trial", "val_accuracy", "macs", WIDTH)}
                  for row in front],
        "max_trials": max_trials, "replicas": replicas,
        "best_trial_id": best_trial.trial_id,
        "best_trial_number": trial_number(best_trial.trial_id),
        "best_hyperparameters": best, "best_val_accuracy": float(best_trial.score),
        **evaluation, "final_run": FINAL_RUN if retrain else None,
        "num_trials": len(trials),
        "num_completed_trials": sum(row["status"] == "COMPLETED" for row in trials),
        # every process's search time, resumptions included (tuning.budget)
        "search_wall_time_s": round(search_time, 3), "time_budget_s": config.time_budget,
        "stopped_by_budget": config.time_budget is not None and search_time >= config.time_budget,
        "num_pruned_trials": sum(row["status"] == "PRUNED" for row in trials),
        "trial_epochs": sum(row["epochs_run"] or 0 for row in trials),
        "trials": trials,
        "best_model": BEST_MODEL_FILE, "export_dir": None if exported is None else str(exported),
    }
    atomic_write_json(results, project.finished_path)
    plot_search(trials, config.search_space, project / PLOT_FILE,
                title=f"{config.model} on {config.dataset}: {config.tuner} search, val accuracy",
                best_trial_id=best_trial.trial_id)
    if front:
        plot_front(trials, front, project / FRONT_PLOT_FILE, picked_trial_id=best_trial.trial_id,
                   title=f"{config.model} on {config.dataset}: accuracy against cost")


def project_directory(run_dir: str | os.PathLike | None, config: SearchConfig) -> runs.RunDirectory:
    """The search's project directory: ``run_dir``, else
    ``runs/tuning/MODEL-DATASET-TUNER``; its parent must be a directory."""
    path = Path(run_dir) if run_dir is not None else (
        DEFAULT_DIRECTORY / f"{config.model}-{config.dataset}-{config.tuner}")
    if path.parent.exists() and not path.parent.is_dir():
        raise ValueError(f"Tuning directory {path.parent} exists and is not a directory.")
    return runs.RunDirectory(path, "Tuning project", settings_file=SETTINGS_FILE,
                             finished_file=RESULTS_FILE)


def _search_splits(training: TrainConfig, replicas: int, data_dir) -> tuple[Any, Any]:
    """The train and validation splits every trial reads, batched for the replicas."""
    load = dict(batch_size=training.batch_size * replicas, seed=training.seed,
                data_dir=data_dir, drop_remainder=replicas > 1)
    return (datasets.load(training.dataset, "train", augment=training.augment, **load),
            datasets.load(training.dataset, "validation", **load))


def _search(search_tuner: keras_tuner.Tuner, train_data, validation_data, epochs: int,
            callbacks: list, verbose, role: str) -> float:
    """Runs the tuner's search (a worker asks the chief's oracle for its
    trials; the chief, serving them, stops its oracle when the budget runs
    out); returns the seconds the search has spent, its earlier processes' too."""
    if role == "worker":
        print(f"Worker {os.environ['KERASTUNER_TUNER_ID']}: asking the oracle at "
              f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']} "
              "for trials", flush=True)
    timer = stop_when_spent(search_tuner.clock, search_tuner.oracle) if role == "chief" else None
    try:
        search_tuner.search(train_data, validation_data=validation_data, epochs=epochs,
                            callbacks=callbacks, verbose=verbose)
    finally:
        if timer is not None:
            timer.cancel()
        spent = search_tuner.clock.commit()  # what a resumed search goes on from
    return spent


def _check_pick(pick: str, config: SearchConfig) -> None:
    """Refuses a pick of a front member where the search draws no front."""
    if parse_pick(pick) is not None and "macs" not in config.objectives:
        raise ValueError(f"pick={pick!r} chooses a member of the front of accuracy against cost, "
                         "which this search does not draw; pass objectives=('val_accuracy', "
                         "'macs'), or pick='best'.")


def _chosen_trial(search_tuner: keras_tuner.Tuner, config: SearchConfig, pick: str,
                  project_dir: Path):
    """The trial table (with each trial's MACs where they are an objective),
    the trial to retrain and its values (the fixed learning rate filled in
    where the space does not search it), and the front ([] without one):
    the best completed trial, or the front member ``pick`` chooses."""
    trials = trial_table(search_tuner)
    best_trials = search_tuner.oracle.get_best_trials(1)
    if not best_trials or best_trials[0].status != "COMPLETED":
        raise RuntimeError(f"No trial of the search in {project_dir} completed; "
                           "see the trial messages in its trial_*/trial.json files.")
    chosen, front = best_trials[0], []
    if "macs" in config.objectives:
        from zoo.flops import count_flops

        macs: dict[float | None, int] = {}
        for row in trials:
            if row[WIDTH] not in macs:
                model = config.training.build_model(**widened(config.training, row[WIDTH]))
                macs[row[WIDTH]] = count_flops(model).macs
            row["macs"] = macs[row[WIDTH]]
        front = pareto_front(trials)
        chosen = search_tuner.oracle.trials[pick_member(front, pick)["trial_id"]]
        release_memory()
    values = trial_values(chosen.hyperparameters.values)
    if values[LEARNING_RATE] is None:
        values[LEARNING_RATE] = float(config.training.learning_rate)
    return trials, chosen, values, front


def _final_model(search_tuner: keras_tuner.Tuner, final_config: TrainConfig, best_trial,
                 best: dict[str, float | None], project_dir: Path, policy: str, *, retrain: bool,
                 batch_size: int, data_dir, verbose, **train_options) -> tuple[keras.Model, dict]:
    """The final model and its test loss and accuracy: the best configuration
    retrained from scratch (``retrain``), else the best trial's checkpoint."""
    if retrain:
        if verbose:
            print(f"retraining the best configuration (trial {trial_number(best_trial.trial_id)}: "
                  f"λ = {best[WEIGHT_DECAY]:.3g}, dropout rate = {best[DROPOUT_RATE]:.3f}) for up "
                  f"to {final_config.epochs} epochs in {project_dir / FINAL_RUN}", flush=True)
        final = retrain_best(final_config, project_dir, policy, data_dir=data_dir,
                             verbose=verbose, **train_options)
        return final.model, {key: final.metrics[key] for key in ("test_accuracy", "test_loss")}
    release_memory()
    with precision_scope(policy), warnings.catch_warnings():
        # the checkpoint's optimizer state is not needed to evaluate it
        warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
        model = search_tuner.load_model(best_trial)  # its best epoch's checkpoint
    return model, evaluate(model, final_config.dataset, batch_size=batch_size, data_dir=data_dir)


def best_config(training: TrainConfig, values: dict[str, float | None]) -> TrainConfig:
    """``training`` with one configuration of the space (``values``:
    weight_decay, dropout_rate, optionally learning_rate) filled in."""
    return dataclasses.replace(
        training, learning_rate=values.get(LEARNING_RATE) or training.learning_rate,
        model_arguments={**training.model_arguments, WEIGHT_DECAY: values[WEIGHT_DECAY],
                         DROPOUT_RATE: values[DROPOUT_RATE],
                         **widened(training, values.get(WIDTH))})


def retrain_best(config: TrainConfig, project_dir: Path, policy: str,
                 **train_options) -> TrainResult:
    """The best configuration ``config`` trained from scratch by ``zoo.train``
    in ``PROJECT_DIR/final``: a finished run of the same settings is reused,
    an unfinished one resumes, one of other settings (the search went on and
    found another best) starts afresh."""
    final = runs.RunDirectory(project_dir / FINAL_RUN)
    changed = final.changes(config.settings(policy))
    if changed == [] and final.is_finished():
        model = compile_model(load_model(final.model_path))
        return TrainResult(model=model, metrics=final.finished_metrics(), run_dir=final.path,
                           config=config)
    release_memory()
    return train(config, run_dir=final.path, overwrite=bool(changed), **train_options)


def train_and_evaluate(config: SearchConfig, values: dict[str, float | None], *,
                       run_dir: str | os.PathLike, **train_options) -> TrainResult:
    """Trains one configuration of the space (``values``: weight_decay,
    dropout_rate, optionally learning_rate) from scratch with ``zoo.train``
    and the search's training settings (up to ``epochs``, early stopping on
    "validation", best epoch restored, evaluated on "test") in ``run_dir``:
    how ``tune`` retrains its best configuration, usable for baselines. An
    interrupted call resumes when made again. ``train_options`` are
    ``zoo.train``'s options (strategy, data_dir, verbose, overwrite, ...) or
    ``TrainConfig`` fields that replace the search's (``seed=2``)."""
    fields, options = split_settings(TrainConfig, train_options)
    release_memory()
    return train(dataclasses.replace(best_config(config.training, values), **fields),
                 run_dir=run_dir, **options)


def evaluate(model: keras.Model, dataset: str, batch_size: int = 64,
             data_dir: str | os.PathLike | None = None) -> dict[str, float]:
    """Test loss and accuracy of a compiled model on the dataset's "test" split."""
    test_data = datasets.load(dataset, "test", batch_size=batch_size, data_dir=data_dir)
    metrics = model.evaluate(test_data, verbose=0, return_dict=True)
    return {"test_loss": float(metrics["loss"]), "test_accuracy": float(metrics["accuracy"])}


def _check_same_search(project: runs.RunDirectory, record: dict[str, Any]) -> None:
    """Refuses to resume a search stored in ``project`` with another
    config: Keras Tuner would silently keep the stored space and schedule."""
    changed = project.changes(record)
    if changed is None and (project / "oracle.json").exists():
        raise ValueError(f"{project} holds a Keras Tuner project that was not started by "
                         "tuning.tune; choose another run_dir, or pass overwrite=True.")
    if changed:
        raise ValueError(f"The search in {project} was started with other settings "
                         f"({'; '.join(changed)}). Run it with the same ones to resume, or pass "
                         "overwrite=True or another run_dir to start afresh.")
