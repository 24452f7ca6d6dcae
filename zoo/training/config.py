"""What defines a training: one frozen record, validated once, shared by
``zoo.train``, a search's trials and its final retraining (``tuning``).

Its :meth:`TrainConfig.settings` is the record a run directory keeps
(``settings.json``) and a resumed run must repeat; how a run is carried out
(directory, devices, logging, callbacks) is not part of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import keras

from custom_layers.arguments import check_bool, check_choice, check_int, check_number
from zoo import datasets
from zoo.training.engine import training_defaults
from zoo.vocabulary import OPTIMIZERS, PRECISIONS, SCHEDULES, TRAINING

#: Where a model that is not in the registry (a built keras.Model) trains by default.
FALLBACK_DATASET = "mnist_5k"


@dataclass(frozen=True)
class TrainConfig:
    """One training of a zoo model: E = E_D + λE_W minimised on ``dataset``'s
    train split with early stopping on its validation loss.

    Args:
        model: a registry name (``zoo.models.list_models()``).
        dataset: a ``zoo.datasets`` name; None: the model's own
            (``zoo.models.default_dataset``).
        model_arguments: arguments of the model's builder (weight_decay,
            dropout_rate, batch_norm, layers, filters, ...).
        epochs: the most epochs to train (early stopping may end sooner).
        batch_size: examples per step on each replica.
        learning_rate: the initial step size.
        optimizer: adam, sgd (momentum 0.9), rmsprop or adamw.
        learning_rate_schedule: "cosine" (the step size decays to 0 over
            the training) or "constant".
        early_stopping_patience: epochs without a lower validation loss before
            the training stops (the best epoch's weights are kept).
        seed: seeds the weights, dropout and the data order; None: random.
        augment: random shifts and rotations of the training images.
        precision: "auto" (the fastest the device computes natively), "float32",
            "mixed_bfloat16" or "mixed_float16" (``zoo.training.precision``).

    ``epochs``, ``batch_size``, ``learning_rate``, ``early_stopping_patience``
    and ``augment`` left None come from the model's training recipe
    (``zoo.models.training_recipe``: lenet5 trains 40 augmented epochs, the
    resnets 30), else from the dataset (``zoo.training.training_defaults``:
    15 epochs of 64 at 1e-3, or 40 of 100 at 3e-3 on mnist1d; patience 5;
    no augmentation).
    """

    model: str = "deep_cnn"
    dataset: str | None = None
    model_arguments: Mapping[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    optimizer: str = TRAINING["optimizer"].default
    learning_rate_schedule: str = TRAINING["learning_rate_schedule"].default
    early_stopping_patience: int | None = None
    seed: int | None = None
    augment: bool | None = None
    precision: str = TRAINING["precision"].default
    #: False for a model built outside the registry: its name is a label only.
    registered: bool = field(default=True, repr=False)

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: the defaults are resolved once, here
        from zoo.models.registry import RECIPE_FIELDS, check_overrides, default_dataset, training_recipe

        check_bool(self.registered, "registered")
        if not isinstance(self.model_arguments, Mapping):
            raise ValueError(f"`model_arguments` must be a dict of the model's arguments. "
                             f"Received: model_arguments={self.model_arguments!r}")
        set_(self, "model_arguments", dict(self.model_arguments))
        if self.registered:
            check_overrides(self.model, self.model_arguments)  # unknown names: did you mean
        elif self.model_arguments:
            raise ValueError(f"Model arguments {sorted(self.model_arguments)} apply only to a "
                             "model given by name.")
        if self.dataset is None:
            set_(self, "dataset", default_dataset(self.model) if self.registered else FALLBACK_DATASET)
        datasets.info(self.dataset)  # unknown names: ValueError listing the valid ones
        defaults = {**training_defaults(self.dataset),
                    **(training_recipe(self.model, self.dataset) if self.registered else {})}
        for name in RECIPE_FIELDS:
            if getattr(self, name) is None:
                set_(self, name, defaults[name])
        check_int(self.epochs, "epochs", minimum=1)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_number(self.learning_rate, "learning_rate", minimum=0, minimum_inclusive=False)
        set_(self, "optimizer", check_choice(str(self.optimizer).lower(), OPTIMIZERS, "optimizer",
                                             received=self.optimizer))
        check_choice(self.learning_rate_schedule, SCHEDULES, "learning_rate_schedule")
        check_int(self.early_stopping_patience, "early_stopping_patience", minimum=0)
        check_int(self.seed, "seed", minimum=0, allow_none=True)
        check_bool(self.augment, "augment")
        check_choice(self.precision, PRECISIONS, "precision")

    @classmethod
    def from_arguments(cls, model: Any = None, dataset: str | None = None, /,
                       **settings: Any) -> TrainConfig:
        """A config from a call's arguments: ``model`` (a name, or a config
        returned as it is), ``dataset`` and ``settings``: fields by name,
        any other keyword a model argument (``weight_decay=1e-4``)."""
        if isinstance(model, cls):
            if dataset is not None or settings:
                raise ValueError("Pass either a TrainConfig or its settings as keywords, not both.")
            return model
        fields, model_arguments = split_settings(cls, settings)
        for name, value in (("model", model), ("dataset", dataset)):
            if value is not None:
                if name in fields:
                    raise ValueError(f"`{name}` is given twice: as an argument and as a keyword.")
                fields[name] = value
        model_arguments = {**fields.pop("model_arguments", {}), **model_arguments}
        return cls(model_arguments=model_arguments, **fields)

    def build_model(self, **model_arguments: Any) -> keras.Model:
        """The registry model built for this config's dataset (its input shape
        and classes) with its model arguments, updated by ``model_arguments``;
        a model that cannot take the dataset's inputs names the dataset it is
        made for."""
        from zoo.models.registry import create_model, default_dataset

        info = datasets.info(self.dataset)
        arguments = {"input_shape": info.input_shape, "num_classes": info.num_classes,
                     **self.model_arguments, **model_arguments}
        try:
            return create_model(self.model, **arguments)
        except ValueError as error:
            own = default_dataset(self.model)
            if own == self.dataset:
                raise
            raise ValueError(f"Model {self.model!r} cannot be built for dataset {self.dataset!r} "
                             f"(inputs of shape {tuple(info.input_shape)}): "
                             f"{str(error).strip().splitlines()[0]} Its own dataset is {own!r}: pass "
                             f"dataset={own!r}.") from None

    def settings(self, precision: str | None = None) -> dict[str, Any]:
        """The record a run of this config keeps and a resumed run must repeat:
        every field, the precision resolved to the dtype policy that runs
        (``precision``; default: this config's as given) and the Keras backend."""
        record = dataclasses.asdict(self)
        del record["registered"]
        record["precision"] = self.precision if precision is None else precision
        record["backend"] = keras.backend.backend()
        return record


def split_settings(config_class, settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``settings`` split into ``config_class``'s fields and the rest."""
    names = {item.name for item in dataclasses.fields(config_class)} - {"registered"}
    return ({key: value for key, value in settings.items() if key in names},
            {key: value for key, value in settings.items() if key not in names})
