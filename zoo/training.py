"""Training, as the lecture reads: data → model → E = E_D + λE_W → fit with
early stopping → evaluate → save.

``train`` writes everything a run produces into one run directory:

    model.keras            the trained model (best epoch's weights)
    metrics.json           test accuracy and loss, epochs run, parameters, wall time
    history.csv            one row per epoch (E, E_D, λE_W, accuracy; train and validation)
    training_curves.png    loss and accuracy per epoch
    logs/                  TensorBoard logs
    backup/                the last completed epoch while a run is unfinished (RunBackup)

Re-running the same call on an unfinished run directory resumes from the last
completed epoch, whenever the earlier process was killed (even during the
final evaluation and saving); a finished run is kept unless ``overwrite=True``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo import datasets
from zoo.io import atomic_write_json, atomic_save_model
from zoo.models import create_model
from zoo.models.registry import check_overrides

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
STRATEGIES = ("none", "mirrored", "multi-worker")


# Defaults that train each dataset well on two CPU cores; explicit arguments win.
TRAINING_DEFAULTS = {
    "mnist1d": {"epochs": 40, "batch_size": 100, "learning_rate": 3e-3},
}
GENERIC_TRAINING_DEFAULTS = {"epochs": 15, "batch_size": 64, "learning_rate": 1e-3}


def training_defaults(dataset: str) -> dict[str, float]:
    """Epochs, batch size and learning rate used for ``dataset`` when not given."""
    return {**GENERIC_TRAINING_DEFAULTS, **TRAINING_DEFAULTS.get(dataset, {})}


class RunFinishedError(RuntimeError):
    """The run directory already holds a finished run."""


@dataclass
class TrainResult:
    """What ``train`` returns: the trained model, its metrics and where they were saved."""

    model: keras.Model
    metrics: dict[str, Any]
    run_dir: Path
    history: list[dict[str, float]] = field(default_factory=list)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite, naming
    the epoch and batch. It raises rather than setting ``stop_training`` so the
    epoch is not completed: BackupAndRestore keeps the last good epoch."""

    def __init__(self, backup_dir: Path | None = None):
        super().__init__()
        self.backup_dir = backup_dir
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            kept = f"; the last good epoch is kept in {self.backup_dir}" if self.backup_dir else ""
            raise NonFiniteLossError(
                f"Training stopped: the loss became {float(loss)} at epoch {self.epoch + 1}, "
                f"batch {batch + 1} (try a smaller learning rate){kept}."
            )


def check_finite_inputs(dataset: tf.data.Dataset, name: str) -> None:
    """Raises ValueError if ``dataset`` is empty or any of its inputs is NaN or infinite."""
    empty = True
    for index, (x, _) in enumerate(dataset):
        empty = False
        if not bool(tf.reduce_all(tf.math.is_finite(tf.cast(x, tf.float32)))):
            raise ValueError(f"The {name} data contain NaN or infinite values (batch {index + 1}).")
    if empty:
        raise ValueError(f"The {name} data are empty: no batch to train on.")


def make_deterministic(seed: int) -> None:
    """Seeds Python, NumPy and TensorFlow and makes TensorFlow's ops
    deterministic, so two CPU runs with the same seed give identical weights."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class WeightPenaltyLogger(keras.callbacks.Callback):
    """Adds the weight penalty λE_W = λ‖w‖² (the sum of the model's
    regularization losses) to each epoch's logs as ``weight_penalty``,
    beside the data loss E_D (``data_loss``) and the total E (``loss``)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            penalty = sum(float(loss) for loss in self.model.losses) if self.model.losses else 0.0
            logs["weight_penalty"] = penalty


class RunBackup(keras.callbacks.Callback):
    """Backs up a run at the end of every epoch so that a process killed at
    any moment (SIGKILL included) resumes from its last completed epoch.

    ``keras.callbacks.BackupAndRestore`` is not enough for that: it overwrites
    its weights and its epoch counter in place (a kill in between, or during
    the write, leaves a mismatched or unreadable backup), it does not keep the
    early-stopping state (a resumed run forgot its best epoch and its
    patience), ``CSVLogger`` appends rows independently of it (rows lost or
    repeated), and it deletes the backup when ``fit`` returns, before the model
    and metrics are saved (a kill then retrained from scratch).

    Here each epoch is committed in one atomic step: the weights (with the
    optimizer state) and the early-stopping callback's best weights go to new
    files, then ``state.json`` (epoch, history rows, early-stopping state,
    file names) replaces the previous one; ``history.csv`` is rewritten from
    it. Nothing is deleted when ``fit`` returns: ``train`` removes the backup
    once ``metrics.json`` is written. Place it after the early-stopping and
    weight-penalty callbacks, so that it commits their state of the epoch.
    """

    STATE = "state.json"

    def __init__(self, backup_dir: Path, history_path: Path,
                 early_stopping: keras.callbacks.EarlyStopping | None = None):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.history_path = Path(history_path)
        self.early_stopping = early_stopping
        self.history: list[dict[str, float]] = []
        self._best_file: str | None = None

    def _corrupt(self, detail: str) -> ValueError:
        return ValueError(f"The backup in {self.backup_dir} is corrupt or from another model "
                          f"({detail}); delete that directory to train from scratch, or pass "
                          "overwrite=True (--overwrite).")

    def on_train_begin(self, logs=None):
        self.history, self._best_file = [], None
        state_path = self.backup_dir / self.STATE
        if not state_path.exists():  # a fresh start: no history either
            self.history_path.unlink(missing_ok=True)
            return
        try:
            state = json.loads(state_path.read_text())
            epoch, weights, history = state["epoch"], state["weights"], state["history"]
            stopping = state.get("early_stopping")
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
        self.model._initial_epoch = self.params.get("epochs", epoch) if state.get("stopped") else epoch
        self._write_history()

    def on_epoch_end(self, epoch, logs=None):
        completed = epoch + 1
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        row = {"epoch": epoch, **{key: _loggable(value) for key, value in sorted((logs or {}).items())
                                  if key != "epoch"}}
        history = [*self.history, row]
        # New file names: what the committed state.json names is never rewritten.
        weights = f"epoch-{completed}.weights.h5"
        self.model.save_weights(self.backup_dir / weights, overwrite=True)
        _fsync(self.backup_dir / weights)
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
                 "early_stopping": stopping, "stopped": bool(self.model.stop_training)}
        atomic_write_json(state, self.backup_dir / self.STATE)  # the commit
        self.history = history
        keep = {self.STATE, weights, self._best_file}
        for path in self.backup_dir.iterdir():  # earlier epochs, unfinished temporary files
            if path.name not in keep and path.is_file():
                path.unlink(missing_ok=True)
        self._write_history()

    def _write_history(self) -> None:
        columns = list(dict.fromkeys(key for row in self.history for key in row))
        temporary = self.history_path.with_name(f".{self.history_path.name}.tmp")
        with temporary.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.history)
        os.replace(temporary, self.history_path)


def _loggable(value: Any) -> float | str:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _atomic_savez(path: Path, arrays: list) -> None:
    temporary = path.with_name(f".{path.stem}.tmp.npz")
    with open(temporary, "wb") as handle:
        np.savez(handle, *arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def enable_gpu_memory_growth() -> None:
    """Lets TensorFlow take GPU memory as needed instead of all of it up front."""
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: the setting cannot change any more
            pass


SCHEDULES = ("cosine", "constant")


def make_optimizer(optimizer: str, learning_rate: float, schedule: str = "constant",
                   total_steps: int | None = None) -> keras.optimizers.Optimizer:
    """A Keras optimizer by name (adam, sgd with momentum 0.9, rmsprop, adamw),
    its step size constant or decayed to 0 along a cosine over ``total_steps``."""
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) \
            or not learning_rate > 0:
        raise ValueError(f"Invalid learning rate: expected a number > 0, received {learning_rate!r}.")
    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown learning-rate schedule {schedule!r}. Expected one of {SCHEDULES}.")
    if schedule == "cosine" and total_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)
    name = str(optimizer).lower()
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate)
    raise ValueError(f"Unknown optimizer {optimizer!r}. Expected one of {OPTIMIZERS}.")


def compile_model(model: keras.Model, optimizer: str | keras.optimizers.Optimizer = "adam",
                  learning_rate: float = 1e-3, jit_compile: bool | str = "auto") -> keras.Model:
    """Compiles with sparse categorical cross-entropy E_D (the total loss adds
    the layers' λ‖w‖² penalties) and reports accuracy and E_D on its own."""
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        optimizer = make_optimizer(optimizer, learning_rate)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(name="data_loss"),
        ],
        jit_compile=jit_compile,
    )
    return model


def default_run_dir(model_name: str, dataset: str) -> Path:
    """``./runs/<model>-<dataset>`` under the current directory."""
    return Path.cwd() / "runs" / f"{model_name}-{dataset}"


def _prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    if (run_dir / "metrics.json").exists():
        if not overwrite:
            raise RunFinishedError(
                f"{run_dir} already holds a finished run (metrics.json exists); "
                "pass overwrite=True (--overwrite) to train it again."
            )
        shutil.rmtree(run_dir)
    elif overwrite:  # an unfinished run: start it afresh
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
        (run_dir / "history.csv").unlink(missing_ok=True)
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

    epochs = [row["epoch"] + 1 for row in history]
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


def make_strategy(strategy: str | tf.distribute.Strategy | None) -> tf.distribute.Strategy:
    """The tf.distribute strategy for a name: "none" (default device),
    "mirrored" (all local GPUs, or every logical CPU device when there is no GPU)
    or "multi-worker" (from the TF_CONFIG environment variable)."""
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    name = "none" if strategy is None else str(strategy)
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        # On CPUs, reduce through one device rather than with collective ops:
        # collective instance keys of two strategies in one process collide.
        return tf.distribute.MirroredStrategy(
            [d.name for d in tf.config.list_logical_devices("CPU")],
            cross_device_ops=tf.distribute.ReductionToOneDevice(),
        )
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy 'multi-worker' needs the TF_CONFIG environment variable "
                             "(cluster and task of this worker).")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy {strategy!r}. Expected one of {STRATEGIES}.")


def train(
    model: str | keras.Model = "deep_cnn",
    dataset: str = "mnist_5k",
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    optimizer: str = "adam",
    learning_rate_schedule: str = "cosine",
    early_stopping_patience: int = 5,
    run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    strategy: str | tf.distribute.Strategy | None = None,
    seed: int | None = None,
    data_dir: str | os.PathLike | None = None,
    augment: bool = False,
    jit_compile: bool | str = "auto",
    verbose: int | str = "auto",
    callbacks: list[keras.callbacks.Callback] = (),
    **model_overrides,
) -> TrainResult:
    """Trains a zoo model (a registry name, or a built ``keras.Model``) on a
    dataset, minimising E = E_D + λE_W with early stopping on the validation
    loss, evaluates it on the test split and saves the run (module docstring).

    ``model_overrides`` (weight_decay, dropout_rate, batch_norm, layers, ...)
    go to ``create_model`` when ``model`` is a name; ``callbacks`` run after
    the run's own (backup, early stopping, history, TensorBoard). ``epochs``,
    ``batch_size`` and ``learning_rate`` left None come from
    :func:`training_defaults` for the dataset.
    """
    defaults = training_defaults(dataset)
    epochs = defaults["epochs"] if epochs is None else epochs
    batch_size = defaults["batch_size"] if batch_size is None else batch_size
    learning_rate = defaults["learning_rate"] if learning_rate is None else learning_rate
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"Invalid value for `epochs`: expected an int >= 1, received {epochs!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Invalid value for `batch_size`: expected an int >= 1, received {batch_size!r}.")
    if isinstance(early_stopping_patience, bool) or not isinstance(early_stopping_patience, int) \
            or early_stopping_patience < 0:
        raise ValueError("Invalid value for `early_stopping_patience`: expected an int >= 0, "
                         f"received {early_stopping_patience!r}.")
    # A multi-worker strategy must exist before TensorFlow runs any op.
    distribution = make_strategy(strategy)
    make_optimizer(optimizer, learning_rate, learning_rate_schedule)  # validate before any work
    if isinstance(model, str):
        check_overrides(model, model_overrides)
    dataset_info = datasets.info(dataset)
    enable_gpu_memory_growth()

    model_name = model if isinstance(model, str) else model.name
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(model_name, dataset)
    multi_worker = isinstance(distribution, tf.distribute.MultiWorkerMirroredStrategy)
    if multi_worker:
        from zoo import distributed

        run_dir = distributed.worker_run_dir(run_dir)
    _prepare_run_dir(run_dir, overwrite)

    if seed is not None:  # seeds the data pipeline's shuffling
        make_deterministic(seed)
    replicas = distribution.num_replicas_in_sync
    global_batch = batch_size * replicas
    load = dict(batch_size=global_batch, seed=seed, data_dir=data_dir,
                drop_remainder=replicas > 1)
    train_data = datasets.load(dataset, "train", augment=augment, **load)
    validation_data = datasets.load(dataset, "validation", **load)
    test_data = datasets.load(dataset, "test", batch_size=global_batch, data_dir=data_dir)
    steps_per_epoch = int(train_data.cardinality())
    check_finite_inputs(train_data, f"{dataset} training")
    if seed is not None:  # again: building a dataset the first time draws from Python's RNG
        make_deterministic(seed)

    with distribution.scope():
        if isinstance(model, str):
            model = create_model(model, input_shape=dataset_info.input_shape,
                                 num_classes=dataset_info.num_classes, **model_overrides)
        elif model_overrides:
            raise ValueError(f"Model arguments {sorted(model_overrides)} apply only to a model "
                             "given by name.")
        schedule_steps = epochs * steps_per_epoch if steps_per_epoch > 0 else None
        compile_model(model, make_optimizer(optimizer, learning_rate, learning_rate_schedule,
                                            schedule_steps), jit_compile=jit_compile)

    history_path = run_dir / "history.csv"
    started = time.perf_counter()
    if multi_worker:
        distributed.fit_custom_loop(
            model, distribution, train_data, validation_data, epochs, global_batch,
            early_stopping_patience, run_dir / "backup",
            callbacks=[distributed.HistoryWriter(history_path), *callbacks],
        )
        wall_time = time.perf_counter() - started
        evaluation = distributed.evaluate_custom_loop(model, distribution, test_data)
        test_loss, test_accuracy = evaluation["test_loss"], evaluation["test_accuracy"]
        test_data_loss = evaluation["test_data_loss"]
    else:
        early_stopping = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=early_stopping_patience, restore_best_weights=True)
        run_callbacks = [
            StopOnNonFiniteLoss(run_dir / "backup"),
            WeightPenaltyLogger(),
            early_stopping,
            RunBackup(run_dir / "backup", history_path, early_stopping),  # writes history.csv
            keras.callbacks.TensorBoard(str(run_dir / "logs")),
            *callbacks,
        ]
        model.fit(train_data, validation_data=validation_data, epochs=epochs,
                  callbacks=run_callbacks, verbose=verbose,
                  shuffle=False)  # the dataset reshuffles itself every epoch
        wall_time = time.perf_counter() - started
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
    if not multi_worker:  # the run is finished: its backup is no longer needed
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
    return TrainResult(model=model, metrics=metrics, run_dir=run_dir, history=history)


def evaluate_run(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                 batch_size: int = 256) -> dict[str, float]:
    """Re-evaluates a finished run's saved model on its dataset's test split."""
    from zoo.io import load_model

    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        raise FileNotFoundError(f"{run_dir} is not a finished run: {metrics_path.name} is missing.")
    try:
        recorded = json.loads(metrics_path.read_text())
        dataset = recorded["dataset"]
    except (json.JSONDecodeError, KeyError):
        raise ValueError(f"{metrics_path} is corrupt: cannot read the dataset name.") from None
    model = load_model(run_dir / "model.keras")
    compile_model(model)
    test_data = datasets.load(dataset, "test", batch_size=batch_size, data_dir=data_dir)
    loss, accuracy, data_loss = model.evaluate(test_data, verbose=0)
    return {"dataset": dataset, "test_accuracy": float(accuracy), "test_loss": float(loss),
            "test_data_loss": float(data_loss)}
