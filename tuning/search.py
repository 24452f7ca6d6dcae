"""``tune``: search λ and the dropout rate of a zoo model with Keras Tuner,
then retrain the best configuration and evaluate it on the test split.

The search trains on the dataset's "train" split and scores each trial by its
best ``val_accuracy`` on "validation"; "test" is used once, for the final
model. Everything lives in the project directory ``directory/project_name``:

    oracle.json, tuner*.json, trial_*/    Keras Tuner's own state (resumable)
    trial_*/zoo_trial.json                which tuner ran the trial, its wall time
    zoo_search.json                       the settings a resumed search must keep
    best_model.keras                      the final model
    results.json                          best hyperparameters, test accuracy, trial table
    search.png                            validation accuracy over (λ, dropout rate)

Re-running the same call after an interruption (Ctrl-C, a crash, kill -9)
continues the search: Keras Tuner reloads its oracle from the directory,
finished trials are kept, a trial that was running is run again. Resuming
with other settings (model, dataset, space, epochs, ...) is refused, since
Keras Tuner would silently keep the stored ones.

Devices: GPU memory growth is turned on before anything touches a GPU;
with two or more GPUs each trial runs under ``tf.distribute.MirroredStrategy``
(``distribution_strategy="auto"``), with per-replica ``batch_size`` and
``drop_remainder=True``; ``mixed_precision=True`` builds the models under
the "mixed_float16" policy. The same code runs on the CPU unchanged. Across
processes or machines, use Keras Tuner's chief/worker mode (``tuning.tuners``),
one GPU per worker via ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import keras
import keras_tuner
import tensorflow as tf

from tuning.hypermodel import ZooHyperModel, release_memory
from tuning.search_space import DROPOUT_RATE, LEARNING_RATE, WEIGHT_DECAY, SearchSpace, trial_values
from tuning.tuners import (
    TRIAL_RECORD,
    TrialObserver,
    check_tuner_name,
    distributed_role,
    make_tuner,
)
from zoo import datasets
from zoo.io import atomic_save_model, atomic_write_json
from zoo.training import enable_gpu_memory_growth, make_strategy, training_defaults

DEFAULT_DIRECTORY = Path("runs") / "tuning"
DEFAULT_MAX_TRIALS = 10  # bayesian and random; Hyperband sets its own unless capped
RESULTS_FILE = "results.json"
PLOT_FILE = "search.png"
BEST_MODEL_FILE = "best_model.keras"
SETTINGS_FILE = "zoo_search.json"
STRATEGIES = ("auto", "none", "mirrored")


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


def _check_int(value: Any, name: str, minimum: int, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Invalid value for `{name}`: expected an int >= {minimum}"
                         f"{' or None' if allow_none else ''}, received {value!r}.")


def resolve_strategy(distribution_strategy: Any) -> tf.distribute.Strategy | None:
    """The strategy each trial runs under: "auto" mirrors over all local GPUs
    when there are two or more (else none), "none", "mirrored" (all GPUs, or
    the logical CPU devices), or a ``tf.distribute.Strategy`` instance.
    ``MultiWorkerMirroredStrategy`` is refused: Keras 3's ``fit`` fails under
    it; spread a search over machines with Keras Tuner's chief/worker mode."""
    if isinstance(distribution_strategy, tf.distribute.MultiWorkerMirroredStrategy) \
            or distribution_strategy == "multi-worker":
        raise ValueError("distribution_strategy 'multi-worker' is not supported for tuning "
                         "(Keras 3's fit fails under MultiWorkerMirroredStrategy); run Keras Tuner's "
                         "chief/worker mode instead (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, "
                         "KERASTUNER_ORACLE_PORT).")
    if isinstance(distribution_strategy, tf.distribute.Strategy):
        return distribution_strategy
    if distribution_strategy is None or distribution_strategy == "none":
        return None
    if distribution_strategy == "auto":
        if len(tf.config.list_physical_devices("GPU")) > 1:
            return tf.distribute.MirroredStrategy()
        return None
    if distribution_strategy == "mirrored":
        return make_strategy("mirrored")
    raise ValueError(f"Unknown distribution_strategy {distribution_strategy!r}. Expected one of "
                     f"{', '.join(STRATEGIES)} or a tf.distribute.Strategy.")


def tune(
    model: str = "cnn1d",
    dataset: str = "mnist1d",
    tuner: str = "hyperband",
    max_trials: int | None = None,
    max_epochs: int | None = None,
    directory: str | os.PathLike | None = None,
    project_name: str | None = None,
    overwrite: bool = False,
    search_space: SearchSpace | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    data_dir: str | os.PathLike | None = None,
    mixed_precision: bool = False,
    distribution_strategy: str | tf.distribute.Strategy | None = "auto",
    learning_rate: float | None = None,
    learning_rate_schedule: str = "cosine",
    optimizer: str = "adam",
    early_stopping_patience: int = 5,
    hyperband_factor: int = 3,
    hyperband_iterations: int = 1,
    retrain: bool = True,
    export_dir: str | os.PathLike | None = None,
    tensorboard: bool = False,
    jit_compile: bool | str = "auto",
    verbose: int = 1,
    trial_observers: Sequence[TrialObserver] = (),
    release_custom_gradients: bool = True,
    **model_overrides: Any,
) -> TuneResult:
    """Searches λ and the dropout rate (and the learning rate, if the space
    says so) of the registry model ``model`` on ``dataset`` with a Keras Tuner
    tuner, then trains the best configuration again for up to ``max_epochs``
    (early stopping on validation, best epoch restored; ``retrain=False``
    reloads the best trial's checkpoint instead), evaluates it on the test
    split and writes the project directory (module docstring).

    Args:
        tuner: "hyperband" (default), "bayesian" or "random". Hyperband
            trains most trials a few epochs and continues the best; Bayesian
            optimisation and random search train every trial ``max_epochs``.
        max_trials: trials of a bayesian/random search (default 10); for
            Hyperband an optional cap (its schedule follows from
            ``max_epochs``, ``hyperband_factor``, ``hyperband_iterations``).
        max_epochs: the most epochs one model trains (Hyperband's largest
            budget); default: ``zoo.train``'s epochs for the dataset (40 on
            mnist1d, else 15).
        directory, project_name: where the search lives (default
            ``runs/tuning/MODEL-DATASET-TUNER``); an existing one is resumed
            unless ``overwrite``.
        search_space: the ranges (default ``SearchSpace()``).
        batch_size, learning_rate: per-replica batch size and (when the space
            does not tune it) step size; default: ``zoo.train``'s for the
            dataset (``zoo.training.training_defaults``), so a tuned model is
            trained as ``zoo train`` trains it.
        learning_rate_schedule: "cosine" (default, as ``zoo.train``): the step
            size decays to 0 over ``max_epochs``; "constant".
        mixed_precision: build the models under the "mixed_float16" policy.
        distribution_strategy: "auto" (MirroredStrategy when there are 2+
            GPUs), "none", "mirrored" or a ``tf.distribute.Strategy``.
        export_dir: also export the best model as a SavedModel there.
        tensorboard: TensorBoard logs per trial (with Keras Tuner's HParams)
            under ``PROJECT_DIR/logs``.
        trial_observers, release_custom_gradients: see ``tuning.tuners.ZooTuner``.
        seed: seeds Keras (weights, data order) and the oracle's sampling;
            Keras Tuner takes an oracle seed of 0 as "none" (random).
        **model_overrides: fixed arguments of the model (e.g. ``filters=(8,)``).

    Raises:
        ValueError: an unknown model, dataset, tuner, optimizer or strategy,
            a bad range or count — before anything is trained.
        RuntimeError: no trial completed.
    """
    # ---- validate everything before any work
    check_tuner_name(tuner)
    _check_int(max_trials, "max_trials", 1, allow_none=True)
    _check_int(max_epochs, "max_epochs", 1, allow_none=True)
    _check_int(batch_size, "batch_size", 1, allow_none=True)
    _check_int(hyperband_factor, "hyperband_factor", 2)
    _check_int(hyperband_iterations, "hyperband_iterations", 1)
    if seed is not None:
        _check_int(seed, "seed", 0)
    if verbose not in (0, 1, 2):
        raise ValueError(f"Invalid value for `verbose`: expected 0, 1 or 2, received {verbose!r}.")
    if search_space is None:
        search_space = SearchSpace()
    elif isinstance(search_space, dict):
        search_space = SearchSpace.from_dict(search_space)
    dataset_info = datasets.info(dataset)
    defaults = training_defaults(dataset)
    batch_size = defaults["batch_size"] if batch_size is None else batch_size
    max_epochs = defaults["epochs"] if max_epochs is None else max_epochs
    learning_rate = defaults["learning_rate"] if learning_rate is None else learning_rate
    hypermodel = ZooHyperModel(
        model, search_space, input_shape=dataset_info.input_shape,
        num_classes=dataset_info.num_classes, learning_rate=learning_rate, optimizer=optimizer,
        learning_rate_schedule=learning_rate_schedule,
        early_stopping_patience=early_stopping_patience, mixed_precision=mixed_precision,
        jit_compile=jit_compile, **model_overrides)  # checks the model, its arguments, the optimizer
    role = distributed_role()
    if max_trials is None and tuner != "hyperband":
        max_trials = DEFAULT_MAX_TRIALS
    directory = Path(directory) if directory is not None else DEFAULT_DIRECTORY
    project_name = project_name or f"{model}-{dataset}-{tuner}"
    project_dir = directory / project_name
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"Tuning directory {directory} exists and is not a directory.")
    # What makes trials comparable; a resumed search must not change it.
    settings = _json_ready({
        "model": model, "dataset": dataset, "tuner": tuner, "search_space": search_space.to_dict(),
        "model_arguments": model_overrides, "max_epochs": max_epochs, "batch_size": batch_size,
        "learning_rate": learning_rate, "learning_rate_schedule": learning_rate_schedule,
        "optimizer": optimizer, "early_stopping_patience": early_stopping_patience,
        "hyperband_factor": hyperband_factor, "hyperband_iterations": hyperband_iterations,
    })
    if not overwrite and role != "worker":
        _check_same_search(project_dir, settings)

    enable_gpu_memory_growth()  # before the strategy (or anything) initialises the GPUs
    strategy = resolve_strategy(distribution_strategy)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if seed is not None:
        keras.utils.set_random_seed(seed)

    load = dict(batch_size=batch_size * replicas, seed=seed, data_dir=data_dir,
                drop_remainder=replicas > 1)
    # The chief only serves the oracle during the search: it loads no data for it.
    train_data = validation_data = None
    if role != "chief":
        train_data = datasets.load(dataset, "train", **load)
        validation_data = datasets.load(dataset, "validation", **load)
        hypermodel.schedule_steps = max_epochs * int(train_data.cardinality())

    try:
        search_tuner = make_tuner(
            tuner, hypermodel, max_trials=max_trials, max_epochs=max_epochs,
            directory=directory, project_name=project_name, overwrite=overwrite, seed=seed,
            distribution_strategy=strategy, hyperband_factor=hyperband_factor,
            hyperband_iterations=hyperband_iterations, trial_observers=trial_observers,
            release_custom_gradients=release_custom_gradients)
        if role != "worker":
            project_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(settings, project_dir / SETTINGS_FILE)
        callbacks = [keras.callbacks.TensorBoard(str(project_dir / "logs"))] if tensorboard else []
        if role == "worker":
            print(f"Worker {os.environ['KERASTUNER_TUNER_ID']}: asking the oracle at "
                  f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']} "
                  "for trials", flush=True)
        started = time.perf_counter()
        search_tuner.search(train_data, validation_data=validation_data, epochs=max_epochs,
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
            best[LEARNING_RATE] = float(learning_rate)

        final_settings = {"retrain": retrain, "max_epochs": max_epochs, "batch_size": batch_size,
                          "seed": seed, "early_stopping_patience": early_stopping_patience,
                          "best_trial_id": best_trial.trial_id}
        final_model, test_loss, test_accuracy = _final_model(
            search_tuner, hypermodel, best_trial, best, project_dir, final_settings, strategy,
            dataset, load, data_dir, max_epochs, verbose, seed)

        exported = None
        if export_dir is not None:
            exported = export_saved_model(final_model, export_dir)
        results = {
            "model": model,
            "dataset": dataset,
            "tuner": tuner,
            "objective": "val_accuracy",
            "search_space": search_space.to_dict(),
            "model_arguments": {key: value for key, value in model_overrides.items()},
            "max_trials": max_trials,
            "max_epochs": max_epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "learning_rate_schedule": learning_rate_schedule,
            "optimizer": optimizer,
            "replicas": replicas,
            "mixed_precision": mixed_precision,
            "seed": seed,
            "best_trial_id": best_trial.trial_id,
            "best_hyperparameters": best,
            "best_val_accuracy": float(best_trial.score),
            "test_accuracy": test_accuracy,
            "test_loss": test_loss,
            "final_training": final_settings,
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
        plot_search(trials, search_space, plot_path,
                    title=f"{model} on {dataset}: {tuner} search, val accuracy",
                    best_trial_id=best_trial.trial_id)
        return TuneResult(
            role=role, project_dir=project_dir, tuner=search_tuner,
            trials_run=list(search_tuner.trials_run), best_hyperparameters=best,
            best_trial_id=best_trial.trial_id, best_val_accuracy=float(best_trial.score),
            test_accuracy=test_accuracy, test_loss=test_loss, model=final_model, trials=trials,
            results_path=results_path, plot_path=plot_path, export_dir=exported)
    finally:
        if mixed_precision:
            keras.mixed_precision.set_global_policy("float32")


def _final_model(search_tuner, hypermodel, best_trial, best, project_dir, final_settings, strategy,
                 dataset, load, data_dir, max_epochs, verbose, seed):
    """The best configuration's model and its test loss and accuracy: reused
    from an earlier run of the same search when nothing changed, else
    retrained from scratch (or reloaded from the trial's checkpoint)."""
    from zoo.io import load_model
    from zoo.training import compile_model

    model_path = project_dir / BEST_MODEL_FILE
    previous = _read_results(project_dir / RESULTS_FILE)
    if previous.get("final_training") == final_settings and model_path.exists():
        model = load_model(model_path)
        compile_model(model)
        return model, previous["test_loss"], previous["test_accuracy"]

    if final_settings["retrain"]:
        model, metrics = train_and_evaluate(
            hypermodel, best, dataset, max_epochs=max_epochs, batch_size=load["batch_size"],
            seed=seed, data_dir=data_dir, strategy=strategy, verbose=verbose,
            drop_remainder=load["drop_remainder"])
    else:
        release_memory()
        model = search_tuner.get_best_models(1)[0]
        metrics = evaluate(model, dataset, batch_size=load["batch_size"], data_dir=data_dir)
    atomic_save_model(model, model_path)
    return model, metrics["test_loss"], metrics["test_accuracy"]


def train_and_evaluate(
    hypermodel: ZooHyperModel,
    values: dict[str, float | None],
    dataset: str,
    *,
    max_epochs: int,
    batch_size: int = 64,
    seed: int | None = None,
    data_dir: str | os.PathLike | None = None,
    strategy: tf.distribute.Strategy | None = None,
    verbose: int = 0,
    drop_remainder: bool = False,
) -> tuple[keras.Model, dict[str, float]]:
    """Trains one configuration of the space (``values``: weight_decay,
    dropout_rate, optionally learning_rate) from scratch on "train" for up to
    ``max_epochs``, early stopping on "validation" with the best epoch
    restored, and evaluates it on "test": how ``tune`` retrains its best
    configuration, usable for baselines. ``batch_size`` is global; the
    step size follows the hypermodel's schedule, spread over ``max_epochs``."""
    release_memory()
    if seed is not None:
        keras.utils.set_random_seed(seed)
    load = dict(batch_size=batch_size, seed=seed, data_dir=data_dir, drop_remainder=drop_remainder)
    train_data = datasets.load(dataset, "train", **load)
    validation_data = datasets.load(dataset, "validation", **load)
    hypermodel = copy.copy(hypermodel)  # the schedule spans this training's steps
    hypermodel.schedule_steps = max_epochs * int(train_data.cardinality())
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = hypermodel.build_model(values[WEIGHT_DECAY], values[DROPOUT_RATE],
                                       values.get(LEARNING_RATE))
    history = model.fit(
        train_data, validation_data=validation_data, epochs=max_epochs, verbose=verbose,
        shuffle=False,  # the pipeline reshuffles each epoch itself
        callbacks=[keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=hypermodel.early_stopping_patience,
            restore_best_weights=True)])
    metrics = evaluate(model, dataset, batch_size=batch_size, data_dir=data_dir)
    metrics["epochs_run"] = len(history.history["loss"])
    return model, metrics


def evaluate(model: keras.Model, dataset: str, batch_size: int = 64,
             data_dir: str | os.PathLike | None = None) -> dict[str, float]:
    """Test loss and accuracy of a compiled model on the dataset's "test" split."""
    test_data = datasets.load(dataset, "test", batch_size=batch_size, data_dir=data_dir)
    metrics = model.evaluate(test_data, verbose=0, return_dict=True)
    return {"test_loss": float(metrics["loss"]), "test_accuracy": float(metrics["accuracy"])}


def _json_ready(data: Any) -> Any:
    """``data`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(data, default=repr))


def _check_same_search(project_dir: Path, settings: dict[str, Any]) -> None:
    """Refuses to resume a search stored in ``project_dir`` with other
    settings: Keras Tuner would silently keep the stored space and schedule."""
    path = project_dir / SETTINGS_FILE
    if not path.exists():
        if (project_dir / "oracle.json").exists():
            raise ValueError(f"{project_dir} holds a Keras Tuner project that was not started by "
                             "tuning.tune; choose another project name or overwrite it.")
        return
    stored = _read_results(path)
    changed = sorted(key for key in set(stored) | set(settings) if stored.get(key) != settings.get(key))
    if changed:
        details = "; ".join(f"{key}: {stored.get(key)!r} -> {settings.get(key)!r}" for key in changed)
        raise ValueError(f"The search in {project_dir} was started with other settings ({details}). "
                         "Run it with the same ones to resume, or pass overwrite=True (--overwrite) "
                         "or another project name to start afresh.")


def _read_results(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _read_record(project_dir: Path, trial_id: str) -> dict[str, Any]:
    return _read_results(project_dir / f"trial_{trial_id}" / TRIAL_RECORD)


def trial_table(search_tuner: keras_tuner.Tuner) -> list[dict[str, Any]]:
    """One row per trial of the search (chief or single process): id, status,
    λ, dropout rate, learning rate, best val accuracy, best epoch, epoch budget,
    which tuner ran it and its wall time."""
    project_dir = Path(search_tuner.project_dir)
    rows = []
    for trial_id, trial in sorted(search_tuner.oracle.trials.items(),
                                  key=lambda item: (len(item[0]), item[0])):  # "9" < "10"
        values = trial.hyperparameters.values
        record = _read_record(project_dir, trial_id)
        score = trial.score
        rows.append({
            "trial_id": trial_id,
            "status": trial.status,
            **trial_values(values),
            "val_accuracy": None if score is None or math.isnan(score) else float(score),
            "best_epoch": None if trial.best_step is None else int(trial.best_step) + 1,
            "epochs": values.get("tuner/epochs"),
            "continues_trial": values.get("tuner/trial_id"),
            "tuner_id": record.get("tuner_id"),
            "wall_time_s": record.get("wall_time_s"),
        })
    return rows


def format_trial_table(trials: list[dict[str, Any]], best_trial_id: str | None = None) -> str:
    """The trial table as aligned text: trial, λ, dropout, (learning rate,
    Hyperband's epoch budget,) val accuracy, status and the tuner that ran it."""
    with_learning_rate = any(row.get(LEARNING_RATE) is not None for row in trials)
    with_epochs = any(row.get("epochs") is not None for row in trials)
    columns = [("trial", 6, lambda row: row["trial_id"]),
               ("λ", 9, lambda row: f"{row[WEIGHT_DECAY]:.2e}" if row[WEIGHT_DECAY] else "0"),
               ("dropout", 7, lambda row: f"{row[DROPOUT_RATE]:.3f}")]
    if with_learning_rate:
        columns.append(("lr", 9, lambda row: _format(row.get(LEARNING_RATE), ".2e")))
    if with_epochs:
        columns.append(("epochs", 6, lambda row: _format(row.get("epochs"), "d")))
    columns += [("val acc", 7, lambda row: _format(row["val_accuracy"], ".4f")),
                ("status", -9, lambda row: row["status"]),
                ("tuner", -8, lambda row: row.get("tuner_id") or "")]

    def line(cells):
        return "  ".join(f"{cell:<{-width}}" if width < 0 else f"{cell:>{width}}"
                         for cell, (_, width, _) in zip(cells, columns))

    lines = [line([name for name, _, _ in columns]).rstrip()]
    for row in trials:
        text = line([render(row) for _, _, render in columns]).rstrip()
        lines.append(text + ("  <- best" if row["trial_id"] == best_trial_id else ""))
    return "\n".join(lines)


def _format(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def plot_search(trials: list[dict[str, Any]], search_space: SearchSpace, path: Path,
                title: str, best_trial_id: str | None = None) -> None:
    """Validation accuracy of each completed trial over (λ, dropout rate), as a
    PNG; λ on a symmetric-log axis so that λ = 0 has its place."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [row for row in trials if row["val_accuracy"] is not None]
    figure, axis = plt.subplots(figsize=(7, 5))
    if done:
        points = axis.scatter([row[WEIGHT_DECAY] for row in done], [row[DROPOUT_RATE] for row in done],
                              c=[row["val_accuracy"] for row in done], cmap="viridis", s=60,
                              edgecolors="black", linewidths=0.5)
        figure.colorbar(points, ax=axis, label="validation accuracy")
        best = [row for row in done if row["trial_id"] == best_trial_id]
        if best:
            axis.scatter([best[0][WEIGHT_DECAY]], [best[0][DROPOUT_RATE]], marker="*", s=300,
                         facecolors="none", edgecolors="red", linewidths=1.5, label="best")
            axis.legend(loc="best")
    low, high = search_space.weight_decay
    axis.set_xscale("symlog", linthresh=low)
    axis.set_xlim(-0.5 * low if search_space.include_zero_weight_decay else low * 0.8, high * 1.25)
    axis.set_ylim(search_space.dropout_rate[0] - 0.02, search_space.dropout_rate[1] + 0.02)
    axis.set(xlabel="weight decay λ (symlog; 0 = none)", ylabel="dropout rate", title=title)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    os.replace(temporary, path)


def export_saved_model(model: keras.Model, export_dir: str | os.PathLike) -> Path:
    """The best model as a TensorFlow SavedModel (``zoo.export.export_savedmodel``:
    a ``serve`` endpoint, custom gradients kept) in ``export_dir``, written
    beside it first and then moved into place. An earlier export there is
    replaced, so that re-running a search's command works; any other
    existing, non-empty directory is refused."""
    from zoo.export import export_savedmodel

    export_dir = Path(export_dir)
    if export_dir.exists() and (not export_dir.is_dir() or (
            any(export_dir.iterdir()) and not (export_dir / "saved_model.pb").exists())):
        raise ValueError(f"Export directory {export_dir} exists and does not hold a SavedModel; "
                         "choose an empty or new directory.")
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=export_dir.parent, prefix=f".{export_dir.name}."))
    try:
        export_savedmodel(model, staging / "saved_model")
        if export_dir.exists():
            shutil.rmtree(export_dir)
        os.replace(staging / "saved_model", export_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return export_dir
