"""A Keras Tuner ``HyperModel`` for any model of the zoo registry.

``build(hp)`` creates the registry model with this trial's λ and dropout rate
(:meth:`tuning.SearchSpace.declare`; everything else fixed) and compiles it as
``zoo.training`` does; ``fit(hp, model, ...)`` trains it through the same
engine (``zoo.training.fit``) with early stopping.
"""

from __future__ import annotations

import gc
import math
from typing import Any, Sequence

import keras
import keras_tuner

from custom_layers.arguments import check_choice, check_int, invalid
from tuning.search_space import LEARNING_RATE, SearchSpace
from zoo import datasets
from zoo.models.registry import check_overrides, create_model, get_builder
from zoo.training import (
    compile_model,
    enable_gpu_memory_growth,
    fit,
    make_optimizer,
    training_callbacks,
)
from zoo.training.precision import POLICIES

#: The model arguments a search sets itself; they cannot be fixed overrides.
TUNED_ARGUMENTS = ("weight_decay", "dropout_rate")


class ZooHyperModel(keras_tuner.HyperModel):
    """Registry model ``model`` with a tuned λ and dropout rate (and learning rate).

    Args:
        model: a registry name (``zoo.models.list_models()``).
        search_space: the ranges (default ``SearchSpace()``).
        input_shape, num_classes: of the dataset (None: the model's defaults).
        learning_rate: used when the space does not tune it.
        optimizer: adam, sgd, rmsprop or adamw (``zoo.training.make_optimizer``).
        learning_rate_schedule: "constant", or "cosine" — the step size decays
            to 0 along a cosine, as ``zoo.train`` does over a run: in ``fit``
            over that call's epochs (a Hyperband round continued from a
            shorter one restarts the cosine from the restored state), in a
            model built outside a search over ``schedule_steps``.
        schedule_steps: optimizer steps of a training outside ``fit``;
            without it such a model's step size stays constant.
        early_stopping_patience: epochs without a lower ``val_loss`` before a trial stops.
        precision: the Keras dtype policy the models are built under:
            "float32", "mixed_bfloat16" or "mixed_float16" (the softmax
            stays float32); ``tune`` resolves "auto" before it gets here.
        jit_compile: passed to ``model.compile``.
        **model_overrides: fixed model arguments (filters, dense_units, batch_norm, layers, ...).
    """

    def __init__(
        self,
        model: str,
        search_space: SearchSpace | None = None,
        *,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        learning_rate: float = 1e-3,
        optimizer: str = "adam",
        learning_rate_schedule: str = "constant",
        schedule_steps: int | None = None,
        early_stopping_patience: int = 5,
        precision: str = "float32",
        jit_compile: bool | str = "auto",
        **model_overrides: Any,
    ):
        super().__init__(name=f"zoo_{model}")
        get_builder(model)  # unknown names: ValueError listing the registry
        tuned = sorted(set(TUNED_ARGUMENTS) & set(model_overrides))
        if tuned:
            raise ValueError(f"Model argument(s) {', '.join(tuned)} are tuned by the search; "
                             "set their ranges with SearchSpace instead of fixing them.")
        if input_shape is not None:
            model_overrides["input_shape"] = tuple(input_shape)
        if num_classes is not None:
            model_overrides["num_classes"] = num_classes
        check_overrides(model, model_overrides)
        make_optimizer(optimizer, learning_rate, learning_rate_schedule)  # validates all three
        check_int(early_stopping_patience, "early_stopping_patience", minimum=0)
        check_choice(precision, POLICIES, "precision")
        self.model_name = model
        self.search_space = search_space if search_space is not None else SearchSpace()
        if not isinstance(self.search_space, SearchSpace):
            raise invalid("search_space", "a tuning.SearchSpace", search_space)
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.learning_rate_schedule = learning_rate_schedule
        self.schedule_steps = schedule_steps
        self.early_stopping_patience = early_stopping_patience
        self.precision = precision
        self.jit_compile = jit_compile
        self.model_overrides = model_overrides
        enable_gpu_memory_growth()  # before TensorFlow touches a GPU, if it has not yet

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """The registry model with this trial's hyperparameters, compiled."""
        return self.build_model(**self.search_space.declare(hp))

    def build_model(self, weight_decay: float, dropout_rate: float,
                    learning_rate: float | None = None) -> keras.Model:
        """The registry model with these values (learning rate: the fixed one
        if None), compiled: one configuration of the space, outside a search."""
        # keras.backend.clear_session() (Keras Tuner calls it before every
        # build) resets the dtype policy, so it is set again for each model.
        keras.mixed_precision.set_global_policy(self.precision)
        model = create_model(self.model_name, weight_decay=weight_decay, dropout_rate=dropout_rate,
                             **self.model_overrides)
        optimizer = make_optimizer(self.optimizer,
                                   self.learning_rate if learning_rate is None else learning_rate,
                                   self.learning_rate_schedule, self.schedule_steps)
        compile_model(model, optimizer, jit_compile=self.jit_compile)
        # Built now, the optimizer's slots are in the checkpoints Keras Tuner
        # writes and are restored when Hyperband continues a trial.
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args, **kwargs):
        """Trains a trial through ``zoo.training``'s engine: the λE_W log and
        early stopping on ``val_loss`` (the trial is scored on its best epoch,
        so the weights are not rolled back) before the tuner's callbacks;
        Hyperband's ``epochs``/``initial_epoch`` arrive in ``kwargs``. Returns
        the History, whose ``val_accuracy`` the tuner scores."""
        enable_gpu_memory_growth()
        callbacks = training_callbacks(
            early_stopping_patience=self.early_stopping_patience, restore_best_weights=False,
            stop_on_non_finite_loss=False,  # a diverging trial scores low; the search goes on
            callbacks=list(kwargs.pop("callbacks", None) or []))
        train_data = args[0] if args else kwargs.pop("x")
        validation_data = kwargs.pop("validation_data", None)
        epochs = kwargs.pop("epochs", 1)
        if hasattr(train_data, "num_batches") or hasattr(train_data, "cardinality"):
            steps_per_epoch = datasets.num_batches(train_data)  # zoo.datasets.load's
            if self.learning_rate_schedule == "cosine" and steps_per_epoch > 0:
                # This call's epochs are one complete training: its step size
                # decays to 0 by its last epoch. A Hyperband round that goes on
                # from a shorter one restarts the cosine from the restored
                # weights and optimizer state (a warm restart), so each round
                # compares models at the end of their budget, not mid-schedule.
                model.optimizer.learning_rate = RestartedCosineDecay(
                    hp.values.get(LEARNING_RATE) or self.learning_rate,
                    decay_steps=max(1, (epochs - kwargs.get("initial_epoch", 0)) * steps_per_epoch),
                    start_step=int(model.optimizer.iterations))
        return fit(model, train_data, validation_data, epochs=epochs, callbacks=callbacks, **kwargs)


class RestartedCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """η(t) = η₀ · ½(1 + cos(π · min(1, (t − t₀)/T))): a cosine decay to 0 over
    ``decay_steps`` T optimizer steps that starts at step t₀ = ``start_step``."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, start_step: int = 0):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.start_step = int(start_step)

    def __call__(self, step):
        progress = (keras.ops.cast(step, "float32") - self.start_step) / self.decay_steps
        progress = keras.ops.clip(progress, 0.0, 1.0)
        return self.initial_learning_rate * 0.5 * (1.0 + keras.ops.cos(math.pi * progress))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "start_step": self.start_step}


def release_memory() -> None:
    """Drops Keras' global state and unreferenced models between trials
    (Keras Tuner keeps RAM otherwise: keras-tuner #395, #873)."""
    keras.backend.clear_session()
    gc.collect()
