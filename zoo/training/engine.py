"""The engine: how every model of the zoo is compiled and trained.

``zoo train``, the multi-worker loop, Keras Tuner's trials, the retraining of
a search's best configuration and the ``zoo reproduce`` experiments all come
through here, so they share one objective, one set of callbacks and one
early-stopping rule:

- :func:`compile_model` — E = E_D + λE_W: sparse categorical cross-entropy
  E_D (:func:`data_loss`: ``custom_layers.losses``' for a model of custom
  layers, so every gradient of the step is written out), the layers' L2
  penalties λ‖w‖², accuracy and E_D reported on their own; the optimizer
  from :func:`make_optimizer`.
- :func:`training_callbacks` — the run's callbacks in the order they must
  run: stop on Ctrl-C, stop on a non-finite loss, log λE_W, early stopping, the run state
  (``zoo.training.run_state.RunState``), TensorBoard, then the caller's.
- :func:`fit` — Keras' ``model.fit``, or under
  ``MultiWorkerMirroredStrategy`` the custom loop of
  ``zoo.training.custom_loop`` driving the same callbacks; both return a
  ``keras.callbacks.History``.

It runs on the Keras backend in use. On TensorFlow, strategies are
``tf.distribute``'s; on JAX, "mirrored" is ``keras.distribution.DataParallel``
over the local devices and "multi-worker" is refused (it is TensorFlow's
``MultiWorkerMirroredStrategy``); TensorBoard logs come from Keras' callback on
TensorFlow and from the ``tensorboard`` package's writer elsewhere.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Sequence

import contextlib
from typing import Any

import keras

from custom_layers.arguments import check_choice, check_int, check_number
from zoo import runs
from zoo.interrupts import interrupt_requested
from zoo.training.loss import data_loss
from zoo.training.run_state import RunState
from zoo.vocabulary import OPTIMIZERS, SCHEDULES

STRATEGIES = ("auto", "none", "mirrored", "multi-worker")

# Defaults that train each dataset well on two CPU cores; explicit arguments win.
TRAINING_DEFAULTS = {
    "mnist1d": {"epochs": 40, "batch_size": 100, "learning_rate": 3e-3},
}
GENERIC_TRAINING_DEFAULTS = {"epochs": 15, "batch_size": 64, "learning_rate": 1e-3,
                             "early_stopping_patience": 5, "augment": False}


def training_defaults(dataset: str) -> dict[str, float]:
    """Epochs, batch size, learning rate, early-stopping patience and
    augmentation used for ``dataset`` when neither the call nor the model's
    recipe (``zoo.models.training_recipe``) gives them."""
    return {**GENERIC_TRAINING_DEFAULTS, **TRAINING_DEFAULTS.get(dataset, {})}


# ----------------------------------------------------------------------------- compile


def make_optimizer(optimizer: str, learning_rate: float, schedule: str = "constant",
                   total_steps: int | None = None) -> keras.optimizers.Optimizer:
    """A Keras optimizer by name (adam, sgd with momentum 0.9, rmsprop, adamw),
    its step size constant or decayed to 0 along a cosine over ``total_steps``."""
    check_number(learning_rate, "learning_rate", minimum=0, minimum_inclusive=False)
    check_choice(schedule, SCHEDULES, "learning_rate_schedule")
    name = check_choice(str(optimizer).lower(), OPTIMIZERS, "optimizer", received=optimizer)
    if schedule == "cosine" and total_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    return keras.optimizers.AdamW(learning_rate)


def compile_model(model: keras.Model, optimizer: str | keras.optimizers.Optimizer = "adam",
                  learning_rate: float = 1e-3, jit_compile: bool | str = "auto") -> keras.Model:
    """Compiles with sparse categorical cross-entropy E_D (:func:`data_loss`;
    the total loss adds the layers' λ‖w‖² penalties) and reports accuracy and
    E_D on its own."""
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        optimizer = make_optimizer(optimizer, learning_rate)
    model.compile(
        optimizer=optimizer,
        loss=data_loss(model),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(name="data_loss"),
        ],
        jit_compile=jit_compile,
    )
    return model


# ----------------------------------------------------------------------------- callbacks


class NonFiniteLossError(FloatingPointError, RuntimeError):
    """The training loss became NaN or infinite."""


class TerminateOnNonFiniteLoss(keras.callbacks.TerminateOnNaN):
    """``keras.callbacks.TerminateOnNaN(raise_error=True)``, its error naming
    the epoch and batch (1-based) and where the last good epoch is kept. It
    raises rather than stopping gracefully, so the epoch is not committed and
    the run state keeps the last good one."""

    def __init__(self, backup_dir: Path | None = None):
        super().__init__(raise_error=True)
        self.backup_dir = backup_dir
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        try:
            super().on_batch_end(batch, logs)
        except RuntimeError:
            loss = float((logs or {})["loss"])
            kept = f"; the last good epoch is kept in {self.backup_dir}" if self.backup_dir else ""
            raise NonFiniteLossError(
                f"Training stopped: the loss became {loss} at epoch {self.epoch + 1}, "
                f"batch {batch + 1} (try a smaller learning rate){kept}.") from None


class StopOnInterrupt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt at the next batch once the ``zoo`` command
    has received Ctrl-C (``zoo.interrupts.interrupt_requested``): a second
    chance for an interrupt that Python ignored where it was first raised."""

    def _check(self):
        if interrupt_requested.is_set():
            raise KeyboardInterrupt

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_test_batch_end(self, batch, logs=None):
        self._check()


class WeightPenaltyLogger(keras.callbacks.Callback):
    """Adds the weight penalty λE_W = λ‖w‖² (the sum of the model's
    regularization losses) to each epoch's logs as ``weight_penalty``,
    beside the data loss E_D (``data_loss``) and the total E (``loss``)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            penalty = sum(float(loss) for loss in self.model.losses) if self.model.losses else 0.0
            logs["weight_penalty"] = penalty


class EpochScalars(keras.callbacks.Callback):
    """TensorBoard's epoch scalars (``epoch_loss``, ``epoch_accuracy``, …
    under ``log_dir/train`` and ``log_dir/validation``, as Keras' TensorBoard
    callback names them) written with the ``tensorboard`` package's own
    writer, which needs no TensorFlow: the logs of a run on JAX."""

    def __init__(self, log_dir: str | Path):
        super().__init__()
        self.log_dir = Path(log_dir)
        self._writers: dict[str, Any] = {}

    def _writer(self, name: str):
        if name not in self._writers:
            from tensorboard.summary import Writer

            self._writers[name] = Writer(str(self.log_dir / name))
        return self._writers[name]

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            run, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self._writer(run).add_scalar(f"epoch_{tag}", float(value), epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def tensorboard_callback(log_dir: str | Path) -> keras.callbacks.Callback:
    """Keras' TensorBoard callback on TensorFlow; :class:`EpochScalars` elsewhere."""
    if keras.backend.backend() == "tensorflow":
        return keras.callbacks.TensorBoard(str(log_dir))
    return EpochScalars(log_dir)


class EpochTimer(keras.callbacks.Callback):
    """The wall time of every epoch this process runs (its validation pass
    included), for the training speed a run records."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)


def training_callbacks(
    *,
    early_stopping_patience: int | None = None,
    monitor: str = "val_loss",
    restore_best_weights: bool = True,
    run_dir: Path | None = None,
    stop_on_non_finite_loss: bool = True,
    tensorboard: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> list[keras.callbacks.Callback]:
    """The callbacks of a training, in the order they must run.

    ``early_stopping_patience`` None trains every epoch; otherwise Keras'
    ``EarlyStopping`` on ``monitor``. With a ``run_dir``, the run state
    (``run_dir/backup``, ``run_dir/history.csv``) is committed after each
    epoch — after early stopping and the λE_W log, so that it holds their
    state of the epoch — and TensorBoard logs go to ``run_dir/logs``.
    ``callbacks`` (the caller's) run last.
    """
    run_callbacks: list[keras.callbacks.Callback] = [StopOnInterrupt()]
    if stop_on_non_finite_loss:
        run_callbacks.append(TerminateOnNonFiniteLoss(None if run_dir is None
                                                      else run_dir / runs.BACKUP_DIR))
    run_callbacks.append(WeightPenaltyLogger())
    early_stopping = None
    if early_stopping_patience is not None:
        check_int(early_stopping_patience, "early_stopping_patience", minimum=0)
        early_stopping = keras.callbacks.EarlyStopping(
            monitor=monitor, patience=early_stopping_patience,
            restore_best_weights=restore_best_weights)
        run_callbacks.append(early_stopping)
    if run_dir is not None:
        run_callbacks.append(RunState(run_dir / runs.BACKUP_DIR, run_dir / runs.HISTORY_FILE,
                                      early_stopping))
        if tensorboard:
            run_callbacks.append(tensorboard_callback(run_dir / runs.LOGS_DIR))
    return [*run_callbacks, *callbacks]


# ----------------------------------------------------------------------------- fit

VERBOSITIES = ("auto", 0, 1, 2)


def check_verbose(verbose) -> int | str:
    """``verbose`` as ``keras.Model.fit`` takes it: "auto", 0 (silent), 1 (a
    progress bar) or 2 (one line per epoch); the one check of every entry point."""
    if isinstance(verbose, bool) or verbose not in VERBOSITIES:
        raise ValueError(f"`verbose` must be one of 'auto', 0, 1, 2. Received: verbose={verbose!r}")
    return verbose


def resolve_verbose(verbose) -> int:
    """``verbose`` with "auto" decided as ``zoo``'s commands decide it: a
    progress bar (1) on a terminal, one line per epoch (2) where the output
    goes to a file or a pipe, which a progress bar's redraws would fill with
    escape sequences."""
    if check_verbose(verbose) != "auto":
        return verbose
    return 1 if sys.stdout.isatty() else 2


def fit(
    model: keras.Model,
    train_data,
    validation_data=None,
    *,
    epochs: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    strategy=None,
    global_batch_size: int | None = None,
    verbose: int | str = 0,
    **fit_arguments,
) -> keras.callbacks.History:
    """Trains a compiled ``model`` with ``callbacks`` (build them with
    :func:`training_callbacks`) and returns the History.

    Under ``MultiWorkerMirroredStrategy`` Keras' ``fit`` fails
    (keras-team/keras#20585), so the custom loop of
    ``zoo.training.custom_loop`` runs the epochs and calls the same callbacks
    at the same points: early stopping, resumption and the run state behave
    as under ``fit``. ``fit_arguments`` (``initial_epoch``,
    ``steps_per_epoch``) go to ``model.fit``.
    """
    if is_multi_worker(strategy):
        from zoo.training.custom_loop import fit_custom_loop

        return fit_custom_loop(model, strategy, train_data, validation_data, epochs=epochs,
                               global_batch_size=global_batch_size, callbacks=callbacks,
                               verbose=verbose)
    fit_arguments.setdefault("shuffle", False)  # the datasets reshuffle themselves every epoch
    return model.fit(train_data, validation_data=validation_data, epochs=epochs,
                     callbacks=list(callbacks), verbose=resolve_verbose(verbose), **fit_arguments)


# ----------------------------------------------------------------------------- devices


def on_tensorflow() -> bool:
    """Whether Keras runs on TensorFlow (else JAX: ``KERAS_BACKEND``)."""
    return keras.backend.backend() == "tensorflow"


def enable_gpu_memory_growth() -> None:
    """Lets TensorFlow take GPU memory as needed instead of all of it up front.
    (JAX reads ``XLA_PYTHON_CLIENT_PREALLOCATE`` when it starts; the ``zoo``
    command sets it to false.)"""
    if not on_tensorflow():
        return
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: the setting cannot change any more
            pass


def make_deterministic(seed: int) -> None:
    """Seeds Python, NumPy and the backend (Keras' global seed) and, on
    TensorFlow, makes its ops deterministic, so two CPU runs with the same
    seed give identical weights (JAX's CPU kernels are deterministic)."""
    keras.utils.set_random_seed(seed)
    if on_tensorflow():
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


class KerasDistribution:
    """A strategy on a backend other than TensorFlow, with the two members
    the engine uses of a ``tf.distribute.Strategy``: ``scope()`` and
    ``num_replicas_in_sync``. ``distribution`` None is the default device;
    otherwise a ``keras.distribution`` (``DataParallel``) whose scope places
    the variables and shards each batch over its devices."""

    def __init__(self, distribution: keras.distribution.Distribution | None = None):
        self.distribution = distribution
        self.num_replicas_in_sync = (
            1 if distribution is None else len(distribution.device_mesh.devices.flatten()))

    def scope(self):
        return contextlib.nullcontext() if self.distribution is None else self.distribution.scope()


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` is TensorFlow's ``MultiWorkerMirroredStrategy``."""
    if strategy is None or isinstance(strategy, KerasDistribution) or not on_tensorflow():
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def make_strategy(strategy=None):
    """The strategy for a name: "auto" (default: "mirrored" when there are
    two or more GPUs, else "none"), "none" (the default device), "mirrored"
    (all local GPUs, or every logical CPU device when there is no GPU) or
    "multi-worker" (from the TF_CONFIG environment variable; TensorFlow
    only). On TensorFlow a ``tf.distribute.Strategy``; on JAX a
    :class:`KerasDistribution`."""
    if isinstance(strategy, KerasDistribution):
        return strategy
    if on_tensorflow():
        import tensorflow as tf

        if isinstance(strategy, tf.distribute.Strategy):
            return strategy
    name = check_choice("auto" if strategy is None else strategy, STRATEGIES, "strategy")
    if name == "auto":
        from zoo.training.precision import detect_device

        name = "mirrored" if len(detect_device().gpu_compute_capabilities) > 1 else "none"
    if not on_tensorflow():
        if name == "multi-worker":
            raise ValueError(
                "strategy 'multi-worker' is TensorFlow's MultiWorkerMirroredStrategy and needs "
                f"KERAS_BACKEND=tensorflow; the backend in use is {keras.backend.backend()!r}. "
                "Use 'mirrored' (every local device) or 'none'.")
        if name == "none":
            return KerasDistribution()
        return KerasDistribution(keras.distribution.DataParallel(
            devices=keras.distribution.list_devices()))
    import tensorflow as tf

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
    if "TF_CONFIG" not in os.environ:
        raise ValueError("strategy 'multi-worker' needs the TF_CONFIG environment variable "
                         "(cluster and task of this worker).")
    return tf.distribute.MultiWorkerMirroredStrategy()
