"""A Keras Tuner ``HyperModel`` for any model of the zoo registry.

``build(hp)`` creates the registry model with this trial's λ and dropout rate
(:meth:`tuning.SearchSpace.declare`; everything else fixed) and compiles it as
``zoo.training`` does; ``fit(hp, model, ...)`` trains it through the same
engine (``zoo.training.fit``) with early stopping.
"""

from __future__ import annotations

import gc
import math
from typing import Any

import keras
import keras_tuner

from custom_layers.arguments import check_choice, invalid
from tuning.search_space import DROPOUT_RATE, LEARNING_RATE, WEIGHT_DECAY, SearchSpace
from zoo import datasets
from zoo.training import (
    compile_model,
    enable_gpu_memory_growth,
    fit,
    make_optimizer,
    training_callbacks,
)
from zoo.training.config import TrainConfig
from zoo.training.precision import POLICIES, choose_precision, precision_scope

#: The model arguments a search sets itself; they cannot be fixed.
TUNED_ARGUMENTS = (WEIGHT_DECAY, DROPOUT_RATE)


def check_not_tuned(model_arguments: dict[str, Any]) -> None:
    """Refuses fixed model arguments that the search tunes."""
    tuned = sorted(set(TUNED_ARGUMENTS) & set(model_arguments))
    if tuned:
        raise ValueError(f"Model argument(s) {', '.join(tuned)} are tuned by the search; "
                         "set their ranges with SearchSpace instead of fixing them.")


#: The model arguments a width multiplier scales (tuples of filters or units per layer).
WIDTH_ARGUMENTS = ("filters", "dense_units", "hidden_units")


def widened(training: TrainConfig, multiplier: float | None) -> dict[str, tuple[int, ...]]:
    """The training's model with its filters and units per layer scaled by
    ``multiplier`` (rounded, at least 1), as model arguments; {} for None.
    The base is the config's own value of each, else the model's default."""
    if multiplier is None:
        return {}
    from zoo.models.registry import model_arguments

    defaults = model_arguments(training.model)
    scaled = {}
    for name in WIDTH_ARGUMENTS:
        base = training.model_arguments.get(name, defaults.get(name))
        if isinstance(base, (tuple, list)) and base:
            scaled[name] = tuple(max(1, round(units * multiplier)) for units in base)
    if not scaled:
        raise ValueError(f"Model {training.model!r} has no width to search (none of "
                         f"{', '.join(WIDTH_ARGUMENTS)}); leave SearchSpace.width None.")
    return scaled


class ZooHyperModel(keras_tuner.HyperModel):
    """A zoo model with a tuned λ and dropout rate (and learning rate).

    Args:
        training: what each trial trains (a ``zoo.training.TrainConfig``),
            or a registry name with the config's fields as keywords (any
            other keyword is a fixed model argument: filters, batch_norm,
            layers, input_shape, ...). Its dataset gives the input shape and
            classes; ``learning_rate`` is used when the space does not tune
            it; ``learning_rate_schedule`` "cosine" decays the step size to 0
            along a cosine, as ``zoo.train`` does over a run: in ``fit`` over
            that call's epochs (a Hyperband round continued from a shorter one
            restarts the cosine from the restored state), in a model built
            outside a search over ``schedule_steps``.
        search_space: the ranges (default ``SearchSpace()``).
        schedule_steps: optimizer steps of a training outside ``fit``;
            without it such a model's step size stays constant.
        policy: the Keras dtype policy the models are built under:
            "float32", "mixed_bfloat16" or "mixed_float16" (the softmax
            stays float32); None: the config's precision, "auto" resolved
            (``zoo.training.precision``), as ``tune`` does once for a search.
        jit_compile: passed to ``model.compile``.
    """

    def __init__(
        self,
        training: TrainConfig | str = "cnn1d",
        search_space: SearchSpace | None = None,
        *,
        schedule_steps: int | None = None,
        policy: str | None = None,
        jit_compile: bool | str = "auto",
        **settings: Any,
    ):
        training = TrainConfig.from_arguments(training, **settings)
        check_not_tuned(training.model_arguments)
        super().__init__(name=f"zoo_{training.model}")
        if policy is None:
            policy = choose_precision(training.precision).policy
        check_choice(policy, POLICIES, "policy")
        self.training = training
        self.search_space = search_space if search_space is not None else SearchSpace()
        if not isinstance(self.search_space, SearchSpace):
            raise invalid("search_space", "a tuning.SearchSpace", search_space)
        self.schedule_steps = schedule_steps
        self.policy = policy
        self.jit_compile = jit_compile
        enable_gpu_memory_growth()  # before TensorFlow touches a GPU, if it has not yet

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """The registry model with this trial's hyperparameters, compiled."""
        return self.build_model(**self.search_space.declare(hp))

    def build_model(self, weight_decay: float, dropout_rate: float,
                    learning_rate: float | None = None, width: float | None = None) -> keras.Model:
        """The registry model with these values (learning rate: the fixed one
        if None), compiled: one configuration of the space, outside a search."""
        # Under the search's dtype policy, restored after the build (Keras Tuner's
        # keras.backend.clear_session() before every build resets it anyway).
        with precision_scope(self.policy):
            training = self.training
            model = training.build_model(**{WEIGHT_DECAY: weight_decay, DROPOUT_RATE: dropout_rate},
                                         **widened(training, width))
            step_size = training.learning_rate if learning_rate is None else learning_rate
            optimizer = make_optimizer(training.optimizer, step_size,
                                       training.learning_rate_schedule, self.schedule_steps)
            if training.learning_rate_schedule == "cosine" and self.schedule_steps is None:
                # fit() sets the trial's cosine; a schedule from the start (too long to
                # decay until then) keeps the optimizer's variables those of the
                # checkpoints it writes (a step size given as a number is one more
                # variable), so a continued Hyperband trial gets its state back
                optimizer.learning_rate = RestartedCosineDecay(step_size, decay_steps=2**31 - 1)
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
            early_stopping_patience=self.training.early_stopping_patience, restore_best_weights=False,
            stop_on_non_finite_loss=False,  # a diverging trial scores low; the search goes on
            callbacks=list(kwargs.pop("callbacks", None) or []))
        train_data = args[0] if args else kwargs.pop("x")
        validation_data = kwargs.pop("validation_data", None)
        epochs = kwargs.pop("epochs", 1)
        if hasattr(train_data, "num_batches") or hasattr(train_data, "cardinality"):
            steps_per_epoch = datasets.num_batches(train_data)  # zoo.datasets.load's
            if self.training.learning_rate_schedule == "cosine" and steps_per_epoch > 0:
                # This call's epochs are one complete training: its step size
                # decays to 0 by its last epoch. A Hyperband round that goes on
                # from a shorter one restarts the cosine from the restored
                # weights and optimizer state (a warm restart), so each round
                # compares models at the end of their budget, not mid-schedule.
                model.optimizer.learning_rate = RestartedCosineDecay(
                    hp.values.get(LEARNING_RATE) or self.training.learning_rate,
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
