"""A training run, as the lecture reads: data → model → E = E_D + λE_W → fit
with early stopping → evaluate → save.

``train`` writes everything a run produces into one run directory:

    model.keras            the trained model (best epoch's weights)
    metrics.json           test accuracy and loss, epochs run, parameters, wall time,
                           training examples per second, precision
    settings.json          what defines the run; a resumed run must repeat it
    history.csv            one row per epoch (E, E_D, λE_W, accuracy; train and validation)
    training_curves.png    loss and accuracy per epoch
    logs/                  TensorBoard logs
    gradients.csv, .png    with ``gradient_stats_every``: per-layer gradient statistics
                           (``custom_layers.inspect.GradientStatistics``; logs/gradients)
    backup/                the run state while a run is unfinished (``RunState``)

Re-running the same call on an unfinished run directory resumes from the last
completed epoch, whenever the earlier process was killed (even during the
final evaluation and saving); a finished run is kept unless ``overwrite=True``,
and an unfinished one resumes only with the same settings (model, data,
optimisation, precision) unless ``overwrite=True``.
A multi-worker run resumes and stops early the same way (the engine's custom
loop drives the same callbacks).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from custom_layers.arguments import check_choice, check_int
from custom_layers.backends import require
from custom_layers.inspect import GradientStatistics
from zoo import datasets
from zoo.io import atomic_save_model, atomic_write_json, directory_lock
from zoo.models import create_model
from zoo.models.registry import check_overrides, default_dataset
from zoo.training import engine
from zoo.training.precision import (
    PRECISIONS,
    Precision,
    announce,
    choose_precision,
    precision_scope,
)

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf


class RunFinishedError(RuntimeError):
    """The run directory (``run_dir``) already holds a finished run."""

    def __init__(self, message: str, run_dir: Path):
        super().__init__(message)
        self.run_dir = run_dir


class RunSettingsChangedError(ValueError):
    """An unfinished run was resumed with other settings than it started with."""


SETTINGS_FILE = "settings.json"


def check_same_settings(run_dir: Path, settings: dict[str, Any]) -> None:
    """Records the settings of a new run in ``run_dir/settings.json``, or, for
    an unfinished run, raises :class:`RunSettingsChangedError` naming each
    setting that differs from the recorded ones."""
    path = run_dir / SETTINGS_FILE
    settings = json.loads(json.dumps(settings))  # tuples → lists, as read back
    if path.exists():
        try:
            recorded = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise ValueError(f"{path} is corrupt; pass overwrite=True (--overwrite) to "
                             "train afresh.") from None
        changed = [f"{key} {recorded.get(key)!r} -> {settings.get(key)!r}"
                   for key in sorted(set(recorded) | set(settings))
                   if recorded.get(key) != settings.get(key)]
        if changed:
            raise RunSettingsChangedError(
                f"{run_dir} holds an unfinished run with other settings ({'; '.join(changed)}); "
                "repeat its settings to resume it, or pass overwrite=True (--overwrite) to "
                "train afresh.")
        return
    atomic_write_json(settings, path)


@dataclass
class TrainResult:
    """What ``train`` returns: the trained model, its metrics and where they were saved."""

    model: keras.Model
    metrics: dict[str, Any]
    run_dir: Path
    history: list[dict[str, float]] = field(default_factory=list)


def check_finite_inputs(dataset, name: str) -> None:
    """Raises ValueError if ``dataset`` (a ``tf.data.Dataset`` or a
    ``keras.utils.PyDataset``) is empty or any of its inputs is NaN or infinite."""
    empty = True
    for index, (x, _) in enumerate(dataset):
        empty = False
        if not np.isfinite(np.asarray(x, np.float32)).all():
            raise ValueError(f"The {name} data contain NaN or infinite values (batch {index + 1}).")
    if empty:
        raise ValueError(f"The {name} data are empty: no batch to train on.")


def default_run_dir(model_name: str, dataset: str) -> Path:
    """``./runs/<model>-<dataset>`` under the current directory."""
    return Path.cwd() / "runs" / f"{model_name}-{dataset}"


def _prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    if (run_dir / "metrics.json").exists():
        if not overwrite:
            raise RunFinishedError(
                f"{run_dir} already holds a finished run (metrics.json exists); "
                "pass overwrite=True (--overwrite) to train it again.", run_dir)
        shutil.rmtree(run_dir)
    elif overwrite:  # an unfinished run: start it afresh
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
        (run_dir / "history.csv").unlink(missing_ok=True)
        (run_dir / SETTINGS_FILE).unlink(missing_ok=True)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise OSError(f"Run directory {run_dir} is not writable: {error.strerror}.") from None


def _read_history(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [{key: float(value) for key, value in row.items() if value not in ("", None)}
                for row in csv.DictReader(handle)]


def plot_history(history: list[dict[str, float]], path: Path, title: str) -> None:
    """Loss (E, E_D) and accuracy per epoch, training and validation, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]  # numbered from 1
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "train E"), ("data_loss", "train E_D"),
                       ("val_loss", "validation E"), ("val_data_loss", "validation E_D")):
        if history and key in history[0]:
            loss_axis.plot(epochs, [row[key] for row in history], label=label)
    for key, label in (("accuracy", "train"), ("val_accuracy", "validation")):
        if history and key in history[0]:
            accuracy_axis.plot(epochs, [row[key] for row in history], label=label)
    loss_axis.set(xlabel="epoch", ylabel="loss", title="E = E_D + λE_W")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for axis in (loss_axis, accuracy_axis):
        axis.legend()
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    temporary = path.with_name(path.name + ".tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    os.replace(temporary, path)


def train(
    model: str | keras.Model = "deep_cnn",
    dataset: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    optimizer: str = "adam",
    learning_rate_schedule: str = "cosine",
    early_stopping_patience: int = 5,
    run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    strategy: str | tf.distribute.Strategy | engine.KerasDistribution | None = None,
    seed: int | None = None,
    data_dir: str | os.PathLike | None = None,
    augment: bool = False,
    jit_compile: bool | str = "auto",
    precision: str = "auto",
    verbose: int | str = "auto",
    callbacks: list[keras.callbacks.Callback] = (),
    gradient_stats_every: int | None = None,
    per_example_gradients: bool = False,
    **model_overrides,
) -> TrainResult:
    """Trains a zoo model (a registry name, or a built ``keras.Model``) on a
    dataset (None: the model's default, ``zoo.models.default_dataset``),
    minimising E = E_D + λE_W with early stopping on the validation loss,
    evaluates it on the test split and saves the run (module docstring).

    ``model_overrides`` (weight_decay, dropout_rate, batch_norm, layers, ...)
    go to ``create_model`` when ``model`` is a name; ``callbacks`` run after
    the run's own (backup, early stopping, history, TensorBoard). ``epochs``,
    ``batch_size`` and ``learning_rate`` left None come from
    :func:`zoo.training.engine.training_defaults` for the dataset.
    ``precision`` is "auto" (the fastest the device computes natively),
    "float32", "mixed_bfloat16" or "mixed_float16"
    (:mod:`zoo.training.precision`); a built ``model`` keeps the policy it
    was built with, so for one only "auto" or that policy is accepted.
    ``gradient_stats_every`` N records per-layer gradient statistics every N
    steps (``custom_layers.inspect.GradientStatistics``, with per-example
    norms if ``per_example_gradients``) into the run directory; it observes
    a single-device run (strategy "none").
    """
    if dataset is None:
        dataset = default_dataset(model) if isinstance(model, str) else "mnist_5k"
    defaults = engine.training_defaults(dataset)
    epochs = defaults["epochs"] if epochs is None else epochs
    batch_size = defaults["batch_size"] if batch_size is None else batch_size
    learning_rate = defaults["learning_rate"] if learning_rate is None else learning_rate
    check_int(epochs, "epochs", minimum=1)
    check_int(batch_size, "batch_size", minimum=1)
    check_int(early_stopping_patience, "early_stopping_patience", minimum=0)
    check_choice(precision, PRECISIONS, "precision")
    check_int(gradient_stats_every, "gradient_stats_every", minimum=1, allow_none=True)
    if gradient_stats_every is not None and strategy not in (None, "none"):
        raise ValueError("Gradient statistics observe a single-device run (strategy 'none'); "
                         f"received strategy={strategy!r}.")
    if gradient_stats_every is not None:
        require("gradient_stats_every (GradientStatistics swaps a tapped TensorFlow training "
                "step into fit)", "tensorflow")
    # A multi-worker strategy must exist before TensorFlow runs any op.
    distribution = engine.make_strategy(strategy)
    engine.make_optimizer(optimizer, learning_rate, learning_rate_schedule)  # validate before any work
    if isinstance(model, str):
        check_overrides(model, model_overrides)
        chosen = choose_precision(precision)
    else:
        if model_overrides:
            raise ValueError(f"Model arguments {sorted(model_overrides)} apply only to a model "
                             "given by name.")
        chosen = _built_model_precision(model, precision)
    dataset_info = datasets.info(dataset)
    if not engine.on_tensorflow():
        from zoo.datasets.arrays import check_loadable

        check_loadable(dataset)  # before the run directory is written
    engine.enable_gpu_memory_growth()

    model_name = model if isinstance(model, str) else model.name
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(model_name, dataset)
    multi_worker = engine.is_multi_worker(distribution)
    if multi_worker:
        from zoo.training.custom_loop import worker_run_dir

        run_dir = worker_run_dir(run_dir)
    with directory_lock(run_dir):  # one process at a time, released however it ends
        created = not run_dir.exists()
        _prepare_run_dir(run_dir, overwrite)
        fresh = not (run_dir / SETTINGS_FILE).exists()
        check_same_settings(run_dir, {
            "model": model_name, "dataset": dataset, "epochs": epochs, "batch_size": batch_size,
            "learning_rate": learning_rate, "optimizer": optimizer,
            "learning_rate_schedule": learning_rate_schedule,
            "early_stopping_patience": early_stopping_patience, "seed": seed, "augment": augment,
            "precision": chosen.policy, "model_arguments": model_overrides,
            "backend": keras.backend.backend()})
        _announce_resumption(run_dir, epochs, verbose)
        try:
            announce(chosen, verbose=verbose != 0)

            if seed is not None:  # seeds the data pipeline's shuffling
                engine.make_deterministic(seed)
            replicas = distribution.num_replicas_in_sync
            global_batch = batch_size * replicas
            load = dict(batch_size=global_batch, seed=seed, data_dir=data_dir,
                        drop_remainder=replicas > 1)
            train_data = datasets.load(dataset, "train", augment=augment, **load)
            validation_data = datasets.load(dataset, "validation", **load)
            test_data = datasets.load(dataset, "test", batch_size=global_batch, data_dir=data_dir)
            steps_per_epoch = datasets.num_batches(train_data)
            examples_per_epoch = (steps_per_epoch * global_batch if replicas > 1
                                  else dataset_info.num_examples("train"))
            check_finite_inputs(train_data, f"{dataset} training")
            if seed is not None:  # again: building a dataset the first time draws from Python's RNG
                engine.make_deterministic(seed)

            with distribution.scope(), precision_scope(chosen.policy):
                if isinstance(model, str):
                    model = _create_for(model, dataset, dataset_info, model_overrides)
                schedule_steps = epochs * steps_per_epoch if steps_per_epoch > 0 else None
                optimizer_instance = engine.make_optimizer(optimizer, learning_rate, learning_rate_schedule,
                                                           schedule_steps)
                engine.compile_model(model, optimizer_instance, jit_compile=jit_compile)
        except BaseException:
            if fresh:  # it never started: leave nothing of it behind
                if created:
                    shutil.rmtree(run_dir, ignore_errors=True)
                else:
                    (run_dir / SETTINGS_FILE).unlink(missing_ok=True)
            raise

        history_path = run_dir / "history.csv"
        timer = engine.EpochTimer()
        observers = [] if gradient_stats_every is None else [GradientStatistics(
            run_dir, every=gradient_stats_every, per_example=per_example_gradients)]
        run_callbacks = engine.training_callbacks(
            early_stopping_patience=early_stopping_patience, run_dir=run_dir,
            tensorboard=not multi_worker, callbacks=[timer, *observers, *callbacks])
        started = time.perf_counter()
        engine.fit(model, train_data, validation_data, epochs=epochs, callbacks=run_callbacks,
                   strategy=distribution, global_batch_size=global_batch, verbose=verbose)
        wall_time = time.perf_counter() - started
        if multi_worker:
            from zoo.training.custom_loop import evaluate_custom_loop

            evaluation = evaluate_custom_loop(model, distribution, test_data)
            test_loss, test_accuracy = evaluation["test_loss"], evaluation["test_accuracy"]
            test_data_loss = evaluation["test_data_loss"]
        else:
            test_loss, test_accuracy, test_data_loss = model.evaluate(test_data, verbose=0)

        history = _read_history(history_path)
        metrics = {
            "model": model_name,
            "dataset": dataset,
            "test_accuracy": float(test_accuracy),
            "test_loss": float(test_loss),
            "test_data_loss": float(test_data_loss),
            "epochs_run": len(history),
            "params": int(model.count_params()),
            "wall_time_s": round(wall_time, 3),
            # Training examples per epoch over the median epoch's wall time (validation
            # included) of the epochs this process ran; None if it ran none (resumed a
            # finished fit).
            "train_examples_per_second": (
                round(examples_per_epoch / statistics.median(timer.seconds), 1) if timer.seconds else None),
            "precision": chosen.policy,
            "precision_reason": chosen.reason,
            "backend": keras.backend.backend(),
            "batch_size": batch_size,
            "replicas": replicas,
            "learning_rate": learning_rate,
            "learning_rate_schedule": learning_rate_schedule,
            "optimizer": optimizer,
            "seed": seed,
            "model_arguments": {k: v for k, v in model_overrides.items()},
        }
        atomic_save_model(model, run_dir / "model.keras")
        plot_history(history, run_dir / "training_curves.png", f"{model_name} on {dataset}")
        atomic_write_json(metrics, run_dir / "metrics.json")
        shutil.rmtree(run_dir / "backup", ignore_errors=True)  # the run is finished
        return TrainResult(model=model, metrics=metrics, run_dir=run_dir, history=history)


def _create_for(name: str, dataset: str, dataset_info, overrides: dict) -> keras.Model:
    """The registry model ``name`` built for ``dataset``'s inputs and classes;
    a model that cannot take them names the dataset it is made for."""
    try:
        return create_model(name, input_shape=dataset_info.input_shape,
                            num_classes=dataset_info.num_classes, **overrides)
    except ValueError as error:
        own = default_dataset(name)
        if own == dataset:
            raise
        raise ValueError(f"Model {name!r} cannot be built for dataset {dataset!r} (inputs of "
                         f"shape {tuple(dataset_info.input_shape)}): "
                         f"{str(error).strip().splitlines()[0]} Its own dataset is {own!r} "
                         f"(--dataset {own}).") from None


def _announce_resumption(run_dir: Path, epochs: int, verbose) -> None:
    """Says that an unfinished run goes on, and after which epoch."""
    try:
        done = json.loads((run_dir / "backup" / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError, TypeError):  # fresh, or corrupt: RunState says so
        return
    if verbose != 0:
        print(f"resuming {run_dir} after epoch {done} of {epochs}", flush=True)


def _built_model_precision(model: keras.Model, requested: str) -> Precision:
    """The precision of an already built model: its own dtype policy."""
    policy = model.dtype_policy.name
    choose_precision(requested)  # the name is checked whatever the model
    if requested not in ("auto", policy):
        raise ValueError(
            f"precision={requested!r} applies to a model given by name; this model was built "
            f"with the {policy!r} policy. Build it under that policy, or pass precision='auto'.")
    return Precision(policy, True, "the model's own dtype policy")


def evaluate_run(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                 batch_size: int = 256) -> dict[str, float]:
    """Re-evaluates a finished run's saved model on its dataset's test split."""
    from zoo.io import load_model

    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not run_dir.is_dir():
        raise FileNotFoundError(f"Run directory {run_dir} does not exist"
                                f"{' (it is a file)' if run_dir.exists() else ''}.")
    if not metrics_path.exists():
        raise FileNotFoundError(f"{run_dir} is not a finished run: {metrics_path.name} is missing.")
    try:
        recorded = json.loads(metrics_path.read_text())
        dataset = recorded["dataset"]
    except (json.JSONDecodeError, KeyError):
        raise ValueError(f"{metrics_path} is corrupt: cannot read the dataset name.") from None
    model = load_model(run_dir / "model.keras")
    engine.compile_model(model)
    test_data = datasets.load(dataset, "test", batch_size=batch_size, data_dir=data_dir)
    loss, accuracy, data_loss = model.evaluate(test_data, verbose=0)
    return {"dataset": dataset, "test_accuracy": float(accuracy), "test_loss": float(loss),
            "test_data_loss": float(data_loss)}
