"""The model registry: ``@register_model`` entry points, ``list_models``, ``create_model``.

Every entry is a function returning an uncompiled ``keras.Model``; presets are
tiny functions that fill in arguments of a family builder (``deep_mlp``,
``deep_cnn``, ``cnn1d``), as in timm. The family modules register themselves
when ``zoo.models`` is imported (which importing this module does first), so
the registry knows no family by name.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping

import keras

from custom_layers.arguments import did_you_mean

ModelBuilder = Callable[..., keras.Model]

_REGISTRY: dict[str, ModelBuilder] = {}
_RECIPES: dict[str, dict[str, Any]] = {}

#: The ``zoo.training.TrainConfig`` fields a model's training recipe may set.
RECIPE_FIELDS = ("epochs", "batch_size", "learning_rate", "early_stopping_patience", "augment")


def register_model(builder: ModelBuilder | None = None, /, *,
                   recipe: Mapping[str, Any] | None = None) -> ModelBuilder:
    """Adds ``builder`` to the registry under its function name and returns it
    with one more keyword, ``weights`` (None, a dataset of its shipped
    weights, or a ``.weights.h5`` path: :mod:`zoo.models.weights`).

    ``recipe``: the training settings the model is trained with unless told
    otherwise (:func:`training_recipe`): :data:`RECIPE_FIELDS` for every
    dataset, and under a dataset's name those that differ on it, as timm's
    and torchvision's weights each name the recipe that made them
    (``{"epochs": 40, "augment": True, "mnist": {"epochs": 20}}``). Used bare
    (``@register_model``) or called (``@register_model(recipe={"augment": True})``)."""
    if builder is None:
        return functools.partial(register_model, recipe=recipe)
    name = builder.__name__
    if name in _REGISTRY:
        raise ValueError(f"A model named {name!r} is already registered.")
    _check_recipe(name, recipe or {})

    @functools.wraps(builder)
    def build(*args, weights=None, **arguments) -> keras.Model:
        model = builder(*args, **arguments)
        if weights is not None:
            from zoo.models.weights import load_weights

            load_weights(model, name, weights, arguments, rebuild=builder)
        return model

    signature = inspect.signature(builder)
    build.__signature__ = signature.replace(parameters=[
        *signature.parameters.values(),
        inspect.Parameter("weights", inspect.Parameter.KEYWORD_ONLY, default=None)])
    _REGISTRY[name] = build
    if recipe:
        _RECIPES[name] = dict(recipe)
    return build


def register_preset(name: str, family: ModelBuilder, doc: str, *,
                    recipe: Mapping[str, Any] | None = None, **defaults) -> ModelBuilder:
    """Registers ``name`` as ``family`` with other ``defaults``: a named
    configuration (e.g. a paper's network) whose signature shows its own
    defaults and still accepts every argument of the family as an override.
    It trains with ``recipe``, else with its family's."""
    family_signature = inspect.signature(family)
    family_signature = family_signature.replace(parameters=[
        parameter for parameter in family_signature.parameters.values() if parameter.name != "weights"])
    unknown = sorted(set(defaults) - set(family_signature.parameters))
    if unknown:
        raise ValueError(f"Preset {name!r}: {family.__name__} has no argument(s) {unknown}.")
    defaults.setdefault("name", name)

    def preset(**overrides) -> keras.Model:
        return family(**{**defaults, **overrides})

    preset.__name__ = preset.__qualname__ = name
    preset.__doc__ = doc
    preset.__signature__ = family_signature.replace(parameters=[
        p.replace(default=defaults[p.name]) if p.name in defaults else p
        for p in family_signature.parameters.values()
    ])
    return register_model(preset, recipe=_RECIPES.get(family.__name__) if recipe is None else recipe)


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def get_builder(name: str) -> ModelBuilder:
    """The registered entry point called ``name``; ValueError lists the valid names."""
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model {name!r}.{did_you_mean(name, _REGISTRY)} "
                         f"Available models: {', '.join(list_models())}.")
    return _REGISTRY[name]


def model_arguments(name: str) -> dict[str, object]:
    """The keyword arguments a model accepts, with their defaults."""
    parameters = inspect.signature(get_builder(name)).parameters
    return {
        key: (None if p.default is inspect.Parameter.empty else p.default)
        for key, p in parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def default_dataset(name: str) -> str:
    """The offline dataset ``name`` trains on when none is given: the one
    whose examples have the model's default ``input_shape`` (``mnist1d`` for
    the 1-D models, ``mnist_5k`` for the image models)."""
    from zoo.datasets import info, offline_datasets

    shape = model_arguments(name).get("input_shape")
    for dataset in offline_datasets():
        if shape is not None and tuple(info(dataset).input_shape) == tuple(shape):
            return dataset
    return "mnist_5k"


def datasets_for(name: str) -> list[str]:
    """The datasets model ``name`` can be built for (their input shape and
    number of classes), in ``zoo.datasets.list_datasets`` order."""
    from zoo.datasets import info, list_datasets

    fits: dict[tuple, bool] = {}
    for dataset in list_datasets():
        meta = info(dataset)
        shape = (tuple(meta.input_shape), meta.num_classes)
        if shape not in fits:
            try:
                create_model(name, input_shape=meta.input_shape, num_classes=meta.num_classes)
                fits[shape] = True
            except ValueError:
                fits[shape] = False
    return [dataset for dataset in list_datasets()
            if fits[tuple(info(dataset).input_shape), info(dataset).num_classes]]


def training_recipe(name: str, dataset: str | None = None) -> dict[str, Any]:
    """The training settings model ``name`` is trained with on ``dataset``
    unless told otherwise (by ``zoo train`` and ``zoo.train``;
    :data:`RECIPE_FIELDS`): what its results table rows were measured with —
    its settings for every dataset, updated by those it has for ``dataset``
    (None: for every dataset only). Settings it leaves out come from the
    dataset (``zoo.training.training_defaults``)."""
    get_builder(name)  # unknown names: ValueError listing the valid ones
    recipe = _RECIPES.get(name, {})
    general = {key: value for key, value in recipe.items() if key in RECIPE_FIELDS}
    return {**general, **(recipe.get(dataset, {}) if dataset is not None else {})}


def recipe_datasets(name: str) -> list[str]:
    """The datasets model ``name`` has a recipe of its own for (:func:`training_recipe`)."""
    get_builder(name)
    return [key for key in _RECIPES.get(name, {}) if key not in RECIPE_FIELDS]


def _check_recipe(name: str, recipe: Mapping[str, Any]) -> None:
    """A recipe sets :data:`RECIPE_FIELDS`, for every dataset or under a dataset's name."""
    from zoo.datasets import list_datasets

    datasets = list_datasets()
    for key, value in recipe.items():
        if key in datasets:
            if not isinstance(value, Mapping):
                raise ValueError(f"Model {name!r}: the recipe for {key!r} must be a dict of "
                                 f"{', '.join(RECIPE_FIELDS)}; received {value!r}.")
            unknown = sorted(set(value) - set(RECIPE_FIELDS))
            if unknown:
                raise ValueError(f"Model {name!r}: a recipe for {key!r} sets only "
                                 f"{', '.join(RECIPE_FIELDS)}; not {', '.join(unknown)}.")
        elif key not in RECIPE_FIELDS:
            raise ValueError(f"Model {name!r}: a recipe sets only {', '.join(RECIPE_FIELDS)}, "
                             f"or those under a dataset's name ({', '.join(datasets)}); "
                             f"not {key}.")


def create_model(name: str, **overrides) -> keras.Model:
    """Builds the registered model ``name`` with ``overrides`` of its defaults.

    Unknown names and unknown overrides raise ValueError listing the valid ones.
    """
    check_overrides(name, overrides)
    return get_builder(name)(**overrides)


def check_overrides(name: str, overrides: dict) -> None:
    """Raises ValueError if ``name`` is not registered or takes none of some ``overrides``."""
    valid = model_arguments(name)
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown argument(s) {', '.join(unknown)} for model {name!r}. "
            f"Valid arguments: {', '.join(valid)}."
        )
