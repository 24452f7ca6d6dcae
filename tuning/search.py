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
import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import keras
import keras_tuner

from custom_layers.arguments import check_bool, check_choice, check_int, invalid
from tuning.hypermodel import TUNED_ARGUMENTS, ZooHyperModel, release_memory
from tuning.report import plot_search, read_json, trial_table
from tuning.search_space import DROPOUT_RATE, LEARNING_RATE, WEIGHT_DECAY, SearchSpace, trial_values
from tuning.tuners import TUNERS, TrialObserver, distributed_role, make_tuner
from zoo import datasets
from zoo.io import atomic_save_model, atomic_write_json, directory_lock, load_model
from zoo.training import (
    TrainResult,
    compile_model,
    enable_gpu_memory_growth,
    make_strategy,
    train,
    training_defaults,
)
from zoo.training.engine import is_multi_worker, tensorboard_callback
from zoo.training.precision import (
    announce,
    choose_precision,
    gpu_compute_capabilities,
    precision_scope,
)

DEFAULT_DIRECTORY = Path("runs") / "tuning"
DEFAULT_MAX_TRIALS = 10  # bayesian and random; Hyperband sets its own unless capped
RESULTS_FILE = "results.json"
PLOT_FILE = "search.png"
BEST_MODEL_FILE = "best_model.keras"
SETTINGS_FILE = "zoo_search.json"
FINAL_RUN = "final"
FINAL_SETTINGS_FILE = "zoo_final.json"
STRATEGIES = ("auto", "none", "mirrored")


@dataclass(frozen=True)
class SearchConfig:
    """What defines a search; ``dataclasses.asdict`` of it is the fingerprint
    a resumed search must match (:meth:`fingerprint`).

    Args:
        model: a registry name (``zoo.models.list_models()``).
        dataset: a ``zoo.datasets`` name.
        tuner: "hyperband" (default), "bayesian" or "random". Hyperband
            trains most trials a few epochs and continues the best; Bayesian
            optimisation and random search train every trial ``max_epochs``.
        search_space: the ranges (a ``SearchSpace``, or its ``to_dict()``).
        model_arguments: fixed arguments of the model (e.g. ``filters=(8,)``).
        max_epochs: the most epochs one model trains (Hyperband's largest
            budget); None: ``zoo.train``'s epochs for the dataset (40 on
            mnist1d, else 15).
        batch_size, learning_rate: per-replica batch size and (when the space
            does not tune it) step size; None: ``zoo.train``'s for the dataset
            (``zoo.training.training_defaults``), so a tuned model is trained
            as ``zoo train`` trains it.
        learning_rate_schedule: "cosine" (as ``zoo.train``: the step size
            decays to 0 over a training) or "constant".
        optimizer: adam, sgd, rmsprop or adamw.
        early_stopping_patience: epochs without a lower ``val_loss`` before a
            trial (or the final training) stops.
        hyperband_factor, hyperband_iterations: Hyperband's schedule.
    """

    model: str = "cnn1d"
    dataset: str = "mnist1d"
    tuner: str = "hyperband"
    search_space: SearchSpace = field(default_factory=SearchSpace)
    model_arguments: dict[str, Any] = field(default_factory=dict)
    max_epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    learning_rate_schedule: str = "cosine"
    optimizer: str = "adam"
    early_stopping_patience: int = 5
    hyperband_factor: int = 3
    hyperband_iterations: int = 1

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: resolve the defaults once, here
        check_choice(self.tuner, TUNERS, "tuner")
        datasets.info(self.dataset)  # unknown names: ValueError listing the valid ones
        if isinstance(self.search_space, dict):
            set_(self, "search_space", SearchSpace.from_dict(self.search_space))
        elif not isinstance(self.search_space, SearchSpace):
            raise invalid("search_space", "a tuning.SearchSpace", self.search_space)
        tuned = sorted(set(TUNED_ARGUMENTS) & set(self.model_arguments))
        if tuned:
            raise ValueError(f"Model argument(s) {', '.join(tuned)} are tuned by the search; "
                             "set their ranges with SearchSpace instead of fixing them.")
        check_int(self.max_epochs, "max_epochs", minimum=1, allow_none=True)
        check_int(self.batch_size, "batch_size", minimum=1, allow_none=True)
        check_int(self.hyperband_factor, "hyperband_factor", minimum=2)
        check_int(self.hyperband_iterations, "hyperband_iterations", minimum=1)
        defaults = training_defaults(self.dataset)
        for name in ("batch_size", "learning_rate"):
            if getattr(self, name) is None:
                set_(self, name, defaults[name])
        if self.max_epochs is None:
            set_(self, "max_epochs", defaults["epochs"])
        set_(self, "model_arguments", dict(self.model_arguments))

    def fingerprint(self) -> dict[str, Any]:
        """``asdict`` of the config as it reads back from JSON."""
        return _json_ready(dataclasses.asdict(self))

    def hypermodel(self, precision: str = "float32", jit_compile: bool | str = "auto") -> ZooHyperModel:
        """The Keras Tuner hypermodel of this search (checks the model and its arguments)."""
        info = datasets.info(self.dataset)
        return ZooHyperModel(
            self.model, self.search_space, input_shape=info.input_shape,
            num_classes=info.num_classes, learning_rate=self.learning_rate,
            optimizer=self.optimizer, learning_rate_schedule=self.learning_rate_schedule,
            early_stopping_patience=self.early_stopping_patience, precision=precision,
            jit_compile=jit_compile, **self.model_arguments)


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


def resolve_strategy(distribution_strategy: Any):
    """The strategy each trial runs under: "auto" mirrors over all local GPUs
    when there are two or more (else none), "none", "mirrored" (all GPUs, or
    the logical CPU devices), or a ``tf.distribute.Strategy`` instance
    (``zoo.training.make_strategy``: on JAX, ``keras.distribution``'s).
    ``MultiWorkerMirroredStrategy`` is refused: Keras 3's ``fit`` fails under
    it; spread a search over machines with Keras Tuner's chief/worker mode."""
    if distribution_strategy == "multi-worker" or is_multi_worker(distribution_strategy):
        raise ValueError("distribution_strategy 'multi-worker' is not supported for tuning "
                         "(Keras 3's fit fails under MultiWorkerMirroredStrategy); run Keras Tuner's "
                         "chief/worker mode instead (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, "
                         "KERASTUNER_ORACLE_PORT).")
    if not isinstance(distribution_strategy, (str, type(None))):
        return make_strategy(distribution_strategy)
    name = check_choice("none" if distribution_strategy is None else distribution_strategy,
                        STRATEGIES, "distribution_strategy")
    if name == "auto":
        return make_strategy("mirrored") if len(gpu_compute_capabilities()) > 1 else None
    return make_strategy("mirrored") if name == "mirrored" else None


def search_config(config: SearchConfig | str | None = None, dataset: str | None = None, /,
                  **settings: Any) -> SearchConfig:
    """A SearchConfig from ``tune``'s arguments: ``config`` itself, or a model
    name (and dataset) with ``settings`` — SearchConfig fields, and any other
    keyword as a fixed model argument."""
    if isinstance(config, SearchConfig):
        if dataset is not None or settings:
            raise ValueError("Pass either a SearchConfig or its settings as keywords, not both.")
        return config
    names = {item.name for item in dataclasses.fields(SearchConfig)}
    fields = {key: value for key, value in settings.items() if key in names}
    model_arguments = {**fields.pop("model_arguments", {}),
                       **{key: value for key, value in settings.items() if key not in names}}
    for name, value in (("model", config), ("dataset", dataset)):
        if value is not None:
            if name in fields:
                raise ValueError(f"`{name}` is given twice: as an argument and as a keyword.")
            fields[name] = value
    return SearchConfig(model_arguments=model_arguments, **fields)


def tune(
    config: SearchConfig | str | None = None,
    dataset: str | None = None,
    /,
    *,
    max_trials: int | None = None,
    directory: str | os.PathLike | None = None,
    project_name: str | None = None,
    overwrite: bool = False,
    seed: int | None = None,
    data_dir: str | os.PathLike | None = None,
    precision: str = "auto",
    mixed_precision: bool | None = None,
    distribution_strategy: Any = "auto",
    retrain: bool = True,
    export_dir: str | os.PathLike | None = None,
    tensorboard: bool = False,
    jit_compile: bool | str = "auto",
    verbose: int = 1,
    trial_observers: Sequence[TrialObserver] = (),
    release_custom_gradients: bool = True,
    **settings: Any,
) -> TuneResult:
    """Runs the search ``config`` with a Keras Tuner tuner, then trains the
    best configuration again for up to ``max_epochs`` as ``zoo.train`` does
    (early stopping on validation, best epoch restored, run directory
    ``PROJECT_DIR/final``; ``retrain=False`` reloads the best trial's
    checkpoint instead), evaluates it on the test split and writes the
    project directory (module docstring).

    ``config`` is a :class:`SearchConfig`, or a model name with
    ``dataset`` and the other SearchConfig fields as keywords (any other
    keyword is a fixed model argument): ``tune("cnn1d", "mnist1d",
    tuner="bayesian", filters=(8,))``.

    Args:
        max_trials: trials of a bayesian/random search (default 10); for
            Hyperband an optional cap (its schedule follows from
            ``max_epochs``, ``hyperband_factor``, ``hyperband_iterations``).
        directory, project_name: where the search lives (default
            ``runs/tuning/MODEL-DATASET-TUNER``); an existing one is resumed
            unless ``overwrite``.
        seed: seeds Keras (weights, data order) and the oracle's sampling;
            Keras Tuner takes an oracle seed of 0 as "none" (random).
        precision: "auto" (default: the fastest the device computes
            natively), "float32", "mixed_bfloat16" or "mixed_float16"
            (``zoo.training.precision``); recorded in ``results.json``.
        mixed_precision: deprecated; ``True`` is ``precision="mixed_float16"``.
        distribution_strategy: "auto" (MirroredStrategy when there are 2+
            GPUs), "none", "mirrored" or a ``tf.distribute.Strategy``.
        export_dir: also export the best model as a SavedModel there
            (``zoo.export``; an earlier export there is replaced).
        tensorboard: TensorBoard logs per trial (with Keras Tuner's HParams)
            under ``PROJECT_DIR/logs``.
        trial_observers, release_custom_gradients: see ``tuning.tuners.ZooTuner``.

    Raises:
        ValueError: an unknown model, dataset, tuner, optimizer or strategy,
            a bad range or count — before anything is trained.
        RuntimeError: no trial completed.
    """
    # ---- validate everything before any work
    config = search_config(config, dataset, **settings)
    check_int(max_trials, "max_trials", minimum=1, allow_none=True)
    check_int(seed, "seed", minimum=0, allow_none=True)
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise invalid("verbose", "0, 1 or 2", verbose)
    if mixed_precision is not None:
        check_bool(mixed_precision, "mixed_precision")
        warnings.warn("tune(mixed_precision=...) is deprecated; pass precision='mixed_float16' "
                      "(or 'auto', 'float32', 'mixed_bfloat16') instead.", DeprecationWarning,
                      stacklevel=2)
        if mixed_precision:
            if precision not in ("auto", "mixed_float16"):
                raise ValueError(f"mixed_precision=True contradicts precision={precision!r}; "
                                 "pass precision alone.")
            precision = "mixed_float16"
    chosen = choose_precision(precision)
    hypermodel = config.hypermodel(chosen.policy, jit_compile)  # checks the model and optimizer
    role = distributed_role()
    if max_trials is None and config.tuner != "hyperband":
        max_trials = DEFAULT_MAX_TRIALS
    directory = Path(directory) if directory is not None else DEFAULT_DIRECTORY
    project_dir = directory / (project_name or f"{config.model}-{config.dataset}-{config.tuner}")
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"Tuning directory {directory} exists and is not a directory.")
    fingerprint = {**config.fingerprint(), "precision": chosen.policy,
                   "backend": keras.backend.backend()}
    enable_gpu_memory_growth()  # before the strategy (or anything) initialises the GPUs
    strategy = resolve_strategy(distribution_strategy)
    with contextlib.ExitStack() as held:
        if role != "worker":  # workers share the chief's project
            held.enter_context(directory_lock(project_dir, "Tuning project"))
        if not overwrite and role != "worker":
            _check_same_search(project_dir, fingerprint)
        announce(chosen, verbose=verbose != 0)
        replicas = strategy.num_replicas_in_sync if strategy is not None else 1
        if seed is not None:
            keras.utils.set_random_seed(seed)

        # The chief only serves the oracle during the search: it loads no data for it.
        train_data = validation_data = None
        if role != "chief":
            load = dict(batch_size=config.batch_size * replicas, seed=seed, data_dir=data_dir,
                        drop_remainder=replicas > 1)
            train_data = datasets.load(config.dataset, "train", **load)
            validation_data = datasets.load(config.dataset, "validation", **load)

        previous_policy = keras.mixed_precision.global_policy()
        try:
            search_tuner = make_tuner(
                config.tuner, hypermodel, max_trials=max_trials, max_epochs=config.max_epochs,
                directory=directory, project_name=project_dir.name, overwrite=overwrite, seed=seed,
                distribution_strategy=strategy, hyperband_factor=config.hyperband_factor,
                hyperband_iterations=config.hyperband_iterations, trial_observers=trial_observers,
                release_custom_gradients=release_custom_gradients)
            if role != "worker":
                project_dir.mkdir(parents=True, exist_ok=True)
                atomic_write_json(fingerprint, project_dir / SETTINGS_FILE)
            callbacks = [tensorboard_callback(project_dir / "logs")] if tensorboard else []
            if role == "worker":
                print(f"Worker {os.environ['KERASTUNER_TUNER_ID']}: asking the oracle at "
                      f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']} "
                      "for trials", flush=True)
            started = time.perf_counter()
            search_tuner.search(train_data, validation_data=validation_data, epochs=config.max_epochs,
                                callbacks=callbacks, verbose=verbose)
            search_time = time.perf_counter() - started
            if role == "worker":
                return TuneResult(role=role, project_dir=project_dir, tuner=search_tuner,
                                  trials_run=list(search_tuner.trials_run))

            trials = trial_table(search_tuner)
            best_trials = search_tuner.oracle.get_best_trials(1)
            if not best_trials or best_trials[0].status != "COMPLETED":
                raise RuntimeError(f"No trial of the search in {project_dir} completed; "
                                   "see the trial messages in its trial_*/trial.json files.")
            best_trial = best_trials[0]
            best = trial_values(best_trial.hyperparameters.values)
            if best[LEARNING_RATE] is None:
                best[LEARNING_RATE] = float(config.learning_rate)

            final_settings = {"retrain": retrain, "max_epochs": config.max_epochs,
                              "batch_size": config.batch_size, "seed": seed,
                              "early_stopping_patience": config.early_stopping_patience,
                              "best_trial_id": best_trial.trial_id}
            if retrain:
                final = retrain_best(config, best, project_dir, final_settings, strategy=strategy,
                                     seed=seed, data_dir=data_dir, jit_compile=jit_compile,
                                     precision=chosen.policy, verbose=verbose)
                final_model, test_loss = final.model, final.metrics["test_loss"]
                test_accuracy = final.metrics["test_accuracy"]
            else:
                release_memory()
                with precision_scope(chosen.policy):
                    final_model = search_tuner.get_best_models(1)[0]
                test_metrics = evaluate(final_model, config.dataset, batch_size=config.batch_size * replicas,
                                        data_dir=data_dir)
                test_loss, test_accuracy = test_metrics["test_loss"], test_metrics["test_accuracy"]
            atomic_save_model(final_model, project_dir / BEST_MODEL_FILE)

            exported = None
            if export_dir is not None:
                from zoo.export import export_savedmodel  # TensorFlow's SavedModel

                exported = export_savedmodel(final_model, export_dir, replace=True)
            results = {
                **fingerprint,
                "precision_reason": chosen.reason,
                "objective": "val_accuracy",
                "max_trials": max_trials,
                "replicas": replicas,
                "seed": seed,
                "best_trial_id": best_trial.trial_id,
                "best_hyperparameters": best,
                "best_val_accuracy": float(best_trial.score),
                "test_accuracy": test_accuracy,
                "test_loss": test_loss,
                "final_training": final_settings,
                "final_run": FINAL_RUN if retrain else None,
                "num_trials": len(trials),
                "num_completed_trials": sum(row["status"] == "COMPLETED" for row in trials),
                "search_wall_time_s": round(search_time, 3),
                "trials": trials,
                "best_model": BEST_MODEL_FILE,
                "export_dir": None if exported is None else str(exported),
            }
            results_path = project_dir / RESULTS_FILE
            atomic_write_json(results, results_path)
            plot_path = project_dir / PLOT_FILE
            plot_search(trials, config.search_space, plot_path,
                        title=f"{config.model} on {config.dataset}: {config.tuner} search, val accuracy",
                        best_trial_id=best_trial.trial_id)
            return TuneResult(
                role=role, project_dir=project_dir, tuner=search_tuner,
                trials_run=list(search_tuner.trials_run), best_hyperparameters=best,
                best_trial_id=best_trial.trial_id, best_val_accuracy=float(best_trial.score),
                test_accuracy=test_accuracy, test_loss=test_loss, model=final_model, trials=trials,
                results_path=results_path, plot_path=plot_path, export_dir=exported)
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)  # the trials' builds set it


def retrain_best(config: SearchConfig, values: dict[str, float | None], project_dir: Path,
                 final_settings: dict[str, Any], **train_options) -> TrainResult:
    """The best configuration trained from scratch as ``zoo.train`` trains it,
    in the run directory ``PROJECT_DIR/final``: a finished run with the same
    ``final_settings`` is reused, an unfinished one resumes, one of other
    settings (the search went on and found another best) starts afresh."""
    run_dir = project_dir / FINAL_RUN
    settings_path = run_dir / FINAL_SETTINGS_FILE
    same = read_json(settings_path) == _json_ready(final_settings)
    if same and (run_dir / "metrics.json").exists():
        model = compile_model(load_model(run_dir / "model.keras"))
        return TrainResult(model=model, metrics=read_json(run_dir / "metrics.json"), run_dir=run_dir)
    if run_dir.exists() and not same:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(final_settings, settings_path)
    return train_and_evaluate(config, values, run_dir=run_dir, **train_options)


def train_and_evaluate(config: SearchConfig, values: dict[str, float | None], *,
                       run_dir: str | os.PathLike, seed: int | None = None,
                       data_dir: str | os.PathLike | None = None,
                       strategy: Any = None, verbose: int = 0,
                       jit_compile: bool | str = "auto", precision: str = "auto",
                       overwrite: bool = False) -> TrainResult:
    """Trains one configuration of the space (``values``: weight_decay,
    dropout_rate, optionally learning_rate) from scratch with ``zoo.train``
    and the search's training settings (up to ``max_epochs``, early stopping
    on "validation", best epoch restored, evaluated on "test") in
    ``run_dir``: how ``tune`` retrains its best configuration, usable for
    baselines. An interrupted call resumes when made again."""
    release_memory()
    learning_rate = values.get(LEARNING_RATE) or config.learning_rate
    return train(
        config.model, dataset=config.dataset, epochs=config.max_epochs,
        batch_size=config.batch_size, learning_rate=learning_rate, optimizer=config.optimizer,
        learning_rate_schedule=config.learning_rate_schedule,
        early_stopping_patience=config.early_stopping_patience, run_dir=run_dir,
        overwrite=overwrite, strategy=strategy, seed=seed, data_dir=data_dir,
        jit_compile=jit_compile, precision=precision, verbose=verbose,
        weight_decay=values[WEIGHT_DECAY],
        dropout_rate=values[DROPOUT_RATE], **config.model_arguments)


def evaluate(model: keras.Model, dataset: str, batch_size: int = 64,
             data_dir: str | os.PathLike | None = None) -> dict[str, float]:
    """Test loss and accuracy of a compiled model on the dataset's "test" split."""
    test_data = datasets.load(dataset, "test", batch_size=batch_size, data_dir=data_dir)
    metrics = model.evaluate(test_data, verbose=0, return_dict=True)
    return {"test_loss": float(metrics["loss"]), "test_accuracy": float(metrics["accuracy"])}


def _json_ready(data: Any) -> Any:
    """``data`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(data, default=repr))


def _check_same_search(project_dir: Path, fingerprint: dict[str, Any]) -> None:
    """Refuses to resume a search stored in ``project_dir`` with another
    config: Keras Tuner would silently keep the stored space and schedule."""
    path = project_dir / SETTINGS_FILE
    if not path.exists():
        if (project_dir / "oracle.json").exists():
            raise ValueError(f"{project_dir} holds a Keras Tuner project that was not started by "
                             "tuning.tune; choose another project name or overwrite it.")
        return
    stored = read_json(path)
    # Searches recorded before precision was a setting ran in float32 (unless
    # their caller asked for mixed_float16, which was not recorded).
    stored.setdefault("precision", "float32")
    changed = sorted(key for key in set(stored) | set(fingerprint)
                     if stored.get(key) != fingerprint.get(key))
    if changed:
        details = "; ".join(f"{key}: {stored.get(key)!r} -> {fingerprint.get(key)!r}" for key in changed)
        raise ValueError(f"The search in {project_dir} was started with other settings ({details}). "
                         "Run it with the same ones to resume, or pass overwrite=True (--overwrite) "
                         "or another project name to start afresh.")
