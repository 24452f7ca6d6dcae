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
and an unfinished one resumes only with the same settings (its
``TrainConfig.settings()``) unless ``overwrite=True``. The directory is
locked while a run uses it (``zoo.runs``).
A multi-worker run resumes and stops early the same way (the engine's custom
loop drives the same callbacks).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from custom_layers.arguments import check_int
from custom_layers.backends import require
from custom_layers.inspect import GradientStatistics
from zoo import datasets, runs
from zoo.io import atomic_save_model, atomic_write_json, save_figure
from zoo.runs import RunFinishedError, RunSettingsChangedError  # noqa: F401  (train raises them)
from zoo.training import engine
from zoo.training.config import TrainConfig, split_settings
from zoo.training.precision import Precision, announce, choose_precision, precision_scope
from zoo.training.run_state import RunState

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf


@dataclass
class TrainResult:
    """What ``train`` returns: the trained model, its metrics and where they were saved."""

    model: keras.Model
    metrics: dict[str, Any]
    run_dir: Path
    history: list[dict[str, float]] = field(default_factory=list)
    config: TrainConfig | None = None


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


def plot_history(history: list[dict[str, float]], path: Path, title: str) -> None:
    """Loss (E, E_D) and accuracy per epoch, training and validation, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
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
    save_figure(figure, path)


def train(
    model: str | TrainConfig | keras.Model = "deep_cnn",
    dataset: str | None = None,
    /,
    *,
    run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    strategy: str | tf.distribute.Strategy | engine.KerasDistribution | None = "auto",
    data_dir: str | os.PathLike | None = None,
    jit_compile: bool | str = "auto",
    verbose: int | str = "auto",
    callbacks: list[keras.callbacks.Callback] = (),
    gradient_stats_every: int | None = None,
    per_example_gradients: bool = False,
    **settings,
) -> TrainResult:
    """Trains a zoo model, minimising E = E_D + λE_W with early stopping on
    the validation loss, evaluates it on the test split and saves the run
    (module docstring).

    What is trained is a :class:`TrainConfig`: pass one, or a registry name
    with the config's fields as keywords (any other keyword is a model
    argument: ``train("deep_cnn", epochs=3, weight_decay=1e-4)``), or a
    built ``keras.Model`` with the training fields (it keeps the dtype policy
    it was built with, so only precision "auto" or that policy is accepted).

    How it runs: ``run_dir`` (default ``./runs/MODEL-DATASET``; an
    unfinished run there resumes, a finished one is kept unless
    ``overwrite``); ``strategy`` "auto" (mirrored over two or more GPUs, else
    none), "none", "mirrored", "multi-worker" or a strategy instance
    (:func:`zoo.training.make_strategy`); ``verbose`` "auto", 0, 1 or 2 as
    in ``keras.Model.fit``; ``callbacks`` run after the run's own (backup,
    early stopping, history, TensorBoard). ``gradient_stats_every`` N
    records per-layer gradient statistics every N steps
    (``custom_layers.inspect.GradientStatistics``, with per-example norms if
    ``per_example_gradients``) into the run directory; it observes a
    single-device run.
    """
    if isinstance(model, keras.Model):
        config, chosen = _config_of_built(model, dataset, settings)
    else:
        config = TrainConfig.from_arguments(model, dataset, **settings)
        chosen = choose_precision(config.precision)
    engine.check_verbose(verbose)
    check_int(gradient_stats_every, "gradient_stats_every", minimum=1, allow_none=True)
    if gradient_stats_every is not None:
        if strategy == "auto":
            strategy = "none"
        if strategy not in (None, "none"):
            raise ValueError("Gradient statistics observe a single-device run (strategy 'none'); "
                             f"received strategy={strategy!r}.")
        require("gradient_stats_every (GradientStatistics swaps a tapped TensorFlow training "
                "step into fit)", "tensorflow")
    # A multi-worker strategy must exist before TensorFlow runs any op.
    distribution = engine.make_strategy(strategy)
    dataset, dataset_info = config.dataset, datasets.info(config.dataset)
    if data_dir is not None:
        datasets.data_directory(data_dir)  # a file: refused before the run directory
    if not engine.on_tensorflow():
        from zoo.datasets.arrays import check_loadable

        check_loadable(dataset)  # before the run directory is written
    engine.enable_gpu_memory_growth()

    run_dir = Path(run_dir) if run_dir is not None else runs.default_run_dir(config.model, dataset)
    multi_worker = engine.is_multi_worker(distribution)
    if multi_worker:
        from zoo.training.custom_loop import worker_run_dir

        run_dir = worker_run_dir(run_dir)
    with runs.directory_lock(run_dir):  # one process at a time, released however it ends
        created = not run_dir.exists()
        settings = config.settings(chosen.policy)
        runs.prepare_run_dir(run_dir, overwrite, settings)
        fresh = not (run_dir / runs.SETTINGS_FILE).exists()
        runs.check_same_settings(run_dir, settings)
        _announce_resumption(run_dir, config.epochs, verbose)
        try:
            if config.seed is not None:  # seeds the data pipeline's shuffling
                engine.make_deterministic(config.seed)
            replicas = distribution.num_replicas_in_sync
            global_batch = config.batch_size * replicas
            load = dict(batch_size=global_batch, seed=config.seed, data_dir=data_dir,
                        drop_remainder=replicas > 1)
            train_data = datasets.load(dataset, "train", augment=config.augment, **load)
            validation_data = datasets.load(dataset, "validation", **load)
            test_data = datasets.load(dataset, "test", batch_size=global_batch, data_dir=data_dir)
            steps_per_epoch = datasets.num_batches(train_data)
            examples_per_epoch = (steps_per_epoch * global_batch if replicas > 1
                                  else dataset_info.num_examples("train"))
            check_finite_inputs(train_data, f"{dataset} training")
            if config.seed is not None:  # again: building a dataset draws from Python's RNG
                engine.make_deterministic(config.seed)

            with distribution.scope(), precision_scope(chosen.policy):
                if config.registered:
                    model = config.build_model()
                schedule_steps = config.epochs * steps_per_epoch if steps_per_epoch > 0 else None
                optimizer = engine.make_optimizer(config.optimizer, config.learning_rate,
                                                  config.learning_rate_schedule, schedule_steps)
                engine.compile_model(model, optimizer, jit_compile=jit_compile)
            announce(chosen, verbose=verbose != 0)
        except BaseException:
            if fresh:  # it never started: leave nothing of it behind
                if created:
                    shutil.rmtree(run_dir, ignore_errors=True)
                else:
                    (run_dir / runs.SETTINGS_FILE).unlink(missing_ok=True)
            raise

        history_path = run_dir / runs.HISTORY_FILE
        timer = engine.EpochTimer()
        observers = [] if gradient_stats_every is None else [GradientStatistics(
            run_dir, every=gradient_stats_every, per_example=per_example_gradients)]
        run_callbacks = engine.training_callbacks(
            early_stopping_patience=config.early_stopping_patience, run_dir=run_dir,
            tensorboard=not multi_worker, callbacks=[timer, *observers, *callbacks])
        engine.fit(model, train_data, validation_data, epochs=config.epochs, callbacks=run_callbacks,
                   strategy=distribution, global_batch_size=global_batch, verbose=verbose)
        # the seconds of every process that trained the run, not only this one's
        wall_time = next(callback for callback in run_callbacks
                         if isinstance(callback, RunState)).fit_seconds()
        if multi_worker:
            from zoo.training.custom_loop import evaluate_custom_loop

            evaluation = evaluate_custom_loop(model, distribution, test_data)
            test_loss, test_accuracy = evaluation["test_loss"], evaluation["test_accuracy"]
            test_data_loss = evaluation["test_data_loss"]
        else:
            test_loss, test_accuracy, test_data_loss = model.evaluate(test_data, verbose=0)

        history = runs.read_history(history_path)
        metrics = {
            "model": config.model,
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
            "batch_size": config.batch_size,
            "replicas": replicas,
            "learning_rate": config.learning_rate,
            "learning_rate_schedule": config.learning_rate_schedule,
            "optimizer": config.optimizer,
            "seed": config.seed,
            "model_arguments": dict(config.model_arguments),
        }
        atomic_save_model(model, run_dir / runs.MODEL_FILE)
        plot_history(history, run_dir / "training_curves.png", f"{config.model} on {dataset}")
        atomic_write_json(metrics, run_dir / runs.FINISHED_FILE)
        shutil.rmtree(run_dir / runs.BACKUP_DIR, ignore_errors=True)  # the run is finished
        return TrainResult(model=model, metrics=metrics, run_dir=run_dir, history=history,
                           config=config)


def _config_of_built(model: keras.Model, dataset: str | None,
                     settings: dict) -> tuple[TrainConfig, Precision]:
    """The config of a training of an already built model, and its precision:
    the model's own dtype policy."""
    fields, model_arguments = split_settings(TrainConfig, settings)
    if model_arguments or "model_arguments" in fields or "model" in fields:
        names = sorted({*model_arguments, *fields.get("model_arguments", {})}) or ["model"]
        raise ValueError(f"Model arguments {names} apply only to a model given by name.")
    dataset = fields.pop("dataset", None) if dataset is None else dataset
    config = TrainConfig(model=model.name, dataset=dataset, registered=False, **fields)
    policy = model.dtype_policy.name
    if config.precision not in ("auto", policy):
        raise ValueError(
            f"precision={config.precision!r} applies to a model given by name; this model was "
            f"built with the {policy!r} policy. Build it under that policy, or pass precision='auto'.")
    return config, Precision(policy, True, "the model's own dtype policy")


def _announce_resumption(run_dir: Path, epochs: int, verbose) -> None:
    """Says that an unfinished run goes on, and after which epoch."""
    try:
        done = json.loads((run_dir / runs.BACKUP_DIR / RunState.STATE).read_text())["epoch"]
    except (OSError, ValueError, KeyError, TypeError):  # fresh, or corrupt: RunState says so
        return
    if verbose != 0:
        print(f"resuming {run_dir} after epoch {done} of {epochs}", flush=True)


def evaluate_run(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                 batch_size: int = 256) -> dict[str, float]:
    """Re-evaluates a finished run's saved model on its dataset's test split."""
    from zoo.io import load_model

    run_dir = Path(run_dir)
    metrics_path = run_dir / runs.FINISHED_FILE
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
    model = load_model(run_dir / runs.MODEL_FILE)
    engine.compile_model(model)
    test_data = datasets.load(dataset, "test", batch_size=batch_size, data_dir=data_dir)
    loss, accuracy, data_loss = model.evaluate(test_data, verbose=0)
    return {"dataset": dataset, "test_accuracy": float(accuracy), "test_loss": float(loss),
            "test_data_loss": float(data_loss)}
