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
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from custom_layers.arguments import check_bool, check_int
from custom_layers.backends import require
from custom_layers.inspect import GradientStatistics
from zoo import datasets, runs
from zoo.files import save_figure
from zoo.io import atomic_save_model
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
    gradient_stats: bool = False,
    gradient_stats_every: int | None = None,
    per_example_gradients: bool = False,
    **settings,
) -> TrainResult:
    """Trains a zoo model, minimising E = E_D + λE_W with early stopping on
    the validation loss, evaluates it on the test split and saves the run
    (module docstring), in phases: resolve → prepare → fit → evaluate → finish.

    What is trained is a :class:`TrainConfig`, or a registry name with its
    fields as keywords (any other is a model argument: ``train("deep_cnn",
    epochs=3, weight_decay=1e-4)``), or a built ``keras.Model`` (its own dtype policy).
    ``run_dir``: default ``./runs/MODEL-DATASET``; an unfinished run there
    resumes, a finished one is kept unless ``overwrite``. ``strategy``:
    "auto" (mirrored over two or more GPUs), "none", "mirrored",
    "multi-worker" or an instance (:func:`zoo.training.make_strategy`).
    ``verbose`` as ``keras.Model.fit``'s; ``callbacks`` run after the run's
    own. ``gradient_stats`` records per-layer gradient statistics of a
    single-device run (``custom_layers.inspect.GradientStatistics``) every
    ``gradient_stats_every`` steps (default 100; it, or ``per_example_gradients``, implies it).
    """
    # ---- resolve: the config, its precision, the strategy, checked before anything is written
    if isinstance(model, keras.Model):
        config, chosen = _config_of_built(model, dataset, settings)
    else:
        config = TrainConfig.from_arguments(model, dataset, **settings)
        chosen = choose_precision(config.precision)
    engine.check_verbose(verbose)
    strategy, every = _check_gradient_statistics(
        gradient_stats, gradient_stats_every, per_example_gradients, strategy)
    distribution = engine.make_strategy(strategy)  # multi-worker: before TensorFlow runs an op
    _check_data_source(config.dataset, data_dir)
    engine.enable_gpu_memory_growth()
    multi_worker = engine.is_multi_worker(distribution)
    directory = runs.RunDirectory(_run_path(run_dir, config, multi_worker))
    with directory.open(config.settings(chosen.policy), overwrite=overwrite):
        # ---- prepare: data, model, optimizer (a failure here leaves nothing behind)
        done = directory.completed_epochs()
        if done is not None and verbose != 0:
            print(f"resuming {directory} after epoch {done} of {config.epochs}", flush=True)
        splits = load_splits(config, distribution, data_dir)
        model = build_and_compile(config, model, chosen.policy, distribution,
                                  splits.steps_per_epoch, jit_compile)
        announce(chosen, verbose=verbose != 0)
        directory.started()

        # ---- fit: every epoch committed to the run directory
        timer = engine.EpochTimer()
        observers = [] if every is None else [GradientStatistics(
            directory.path, every=every, per_example=per_example_gradients)]
        run_callbacks = engine.training_callbacks(
            early_stopping_patience=config.early_stopping_patience, run_dir=directory.path,
            tensorboard=not multi_worker, callbacks=[timer, *observers, *callbacks])
        engine.fit(model, splits.train, splits.validation, epochs=config.epochs,
                   callbacks=run_callbacks, strategy=distribution,
                   global_batch_size=splits.global_batch, verbose=verbose)
        state = next(callback for callback in run_callbacks if isinstance(callback, RunState))

        # ---- evaluate on the test split, save, finish
        history = directory.history()
        metrics = run_record(config, chosen, model, evaluate_test(model, splits.test, distribution),
                             epochs_run=len(history), fit_seconds=state.fit_seconds(),
                             epoch_seconds=timer.seconds, splits=splits)
        atomic_save_model(model, directory.model_path)
        plot_history(history, directory / "training_curves.png", f"{config.model} on {config.dataset}")
        directory.finish(metrics)
        return TrainResult(model=model, metrics=metrics, run_dir=directory.path, history=history,
                           config=config)


# The config's fields a run's metrics.json repeats beside the results.
RECORDED_FIELDS = ("batch_size", "learning_rate", "learning_rate_schedule", "optimizer", "seed")


def run_record(config: TrainConfig, precision: Precision, model: keras.Model,
               evaluation: dict[str, float], *, epochs_run: int, fit_seconds: float,
               epoch_seconds: list[float], splits: Splits) -> dict[str, Any]:
    """A finished run's ``metrics.json``: its test results, epochs, size,
    time (``fit_seconds``: every process that trained it), speed (training
    examples per epoch over the median of this process's ``epoch_seconds``,
    validation included; None if it ran none) and what it ran with."""
    return {
        "model": config.model, "dataset": config.dataset, **evaluation,
        "epochs_run": epochs_run,
        "params": int(model.count_params()),
        "wall_time_s": round(fit_seconds, 3),
        "train_examples_per_second": (round(splits.examples_per_epoch / statistics.median(
            epoch_seconds), 1) if epoch_seconds else None),
        "precision": precision.policy, "precision_reason": precision.reason,
        "backend": keras.backend.backend(), "replicas": splits.replicas,
        **{name: getattr(config, name) for name in RECORDED_FIELDS},
        "model_arguments": dict(config.model_arguments),
    }


@dataclass
class Splits:
    """A dataset's three splits as one run reads them."""

    train: Any
    validation: Any
    test: Any
    global_batch: int  # the batch of one step over all replicas
    replicas: int
    steps_per_epoch: int
    examples_per_epoch: int


def load_splits(config: TrainConfig, distribution, data_dir=None) -> Splits:
    """The train (augmented if the config says so, reshuffled each epoch),
    validation and test splits of the config's dataset, batched for the
    strategy's replicas (the last partial batch dropped when there are
    several); the training inputs are checked to be finite. Seeded by the
    config's seed (the data order, and Python's and Keras' generators)."""
    replicas = distribution.num_replicas_in_sync
    global_batch = config.batch_size * replicas
    if config.seed is not None:  # seeds the data pipeline's shuffling
        engine.make_deterministic(config.seed)
    load = dict(batch_size=global_batch, seed=config.seed, data_dir=data_dir,
                drop_remainder=replicas > 1)
    train_data = datasets.load(config.dataset, "train", augment=config.augment, **load)
    validation_data = datasets.load(config.dataset, "validation", **load)
    test_data = datasets.load(config.dataset, "test", batch_size=global_batch, data_dir=data_dir)
    steps = datasets.num_batches(train_data)
    check_finite_inputs(train_data, f"{config.dataset} training")
    if config.seed is not None:  # again: building a dataset draws from Python's RNG
        engine.make_deterministic(config.seed)
    examples = (steps * global_batch if replicas > 1
                else datasets.info(config.dataset).num_examples("train"))
    return Splits(train_data, validation_data, test_data, global_batch, replicas, steps, examples)


def build_and_compile(config: TrainConfig, model: Any, policy: str, distribution,
                      steps_per_epoch: int, jit_compile: bool | str = "auto") -> keras.Model:
    """The config's model (``model`` itself when it is already built), built
    under the strategy and the dtype policy and compiled with the config's
    optimizer, its step size on the config's schedule over every step of the run."""
    with distribution.scope(), precision_scope(policy):
        if config.registered:
            model = config.build_model()
        total_steps = config.epochs * steps_per_epoch if steps_per_epoch > 0 else None
        optimizer = engine.make_optimizer(config.optimizer, config.learning_rate,
                                          config.learning_rate_schedule, total_steps)
        return engine.compile_model(model, optimizer, jit_compile=jit_compile)


def evaluate_test(model: keras.Model, test_data, distribution=None) -> dict[str, float]:
    """Test loss E, accuracy and data loss E_D of a compiled model on the
    test split (under a multi-worker strategy, through its custom loop)."""
    if engine.is_multi_worker(distribution):
        from zoo.training.custom_loop import evaluate_custom_loop

        evaluation = evaluate_custom_loop(model, distribution, test_data)
        return {key: float(evaluation[key]) for key in ("test_accuracy", "test_loss", "test_data_loss")}
    metrics = model.evaluate(test_data, verbose=0, return_dict=True)
    return {"test_accuracy": float(metrics["accuracy"]), "test_loss": float(metrics["loss"]),
            "test_data_loss": float(metrics["data_loss"])}


def _run_path(run_dir, config: TrainConfig, multi_worker: bool) -> Path:
    """Where the run is written: ``run_dir``, else ``./runs/MODEL-DATASET``;
    a multi-worker run's non-chief workers write beside it
    (``zoo.training.custom_loop.worker_run_dir``)."""
    path = Path(run_dir) if run_dir is not None else runs.default_run_dir(config.model, config.dataset)
    if multi_worker:
        from zoo.training.custom_loop import worker_run_dir

        path = worker_run_dir(path)
    return path


def _check_gradient_statistics(record: bool, every: int | None, per_example: bool, strategy):
    """The strategy of the run and every how many steps gradient statistics
    are recorded (None: not at all); they observe a single-device TensorFlow run."""
    check_bool(record, "gradient_stats")
    check_bool(per_example, "per_example_gradients")
    check_int(every, "gradient_stats_every", minimum=1, allow_none=True)
    if not (record or per_example or every is not None):
        return strategy, None
    if strategy == "auto":
        strategy = "none"
    if strategy not in (None, "none"):
        raise ValueError("Gradient statistics observe a single-device run (strategy 'none'); "
                         f"received strategy={strategy!r}.")
    require("gradient_stats (GradientStatistics swaps a tapped TensorFlow training "
            "step into fit)", "tensorflow")
    return strategy, GradientStatistics.DEFAULT_EVERY if every is None else every


def _check_data_source(dataset: str, data_dir) -> None:
    """Refuses, before the run directory is written, a data directory that is
    a file and (off TensorFlow) a dataset that cannot be read."""
    if data_dir is not None:
        datasets.data_directory(data_dir)
    if not engine.on_tensorflow():
        from zoo.datasets.arrays import check_loadable

        check_loadable(dataset)


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
