"""Trained weights shipped with the zoo, as ``keras.applications`` offers
them: ``deep_cnn(weights="mnist_5k")``, ``create_model(name, weights=...)``.

``weights`` is None (random initialisation, the default), the name of a
dataset the model's weights were trained on (``zoo/weights/manifest.json``
lists them, with the SHA-256 of each file and the test accuracy it gives),
or the path of a ``.weights.h5`` file. Shipped weights are checked by their
SHA-256 before they are read and must fit the model built (its default
architecture: an override that changes a weight's shape is refused); a
failure raises before the model is returned, so nothing half loaded
escapes. A file of another architecture is refused naming the first layer
where the two differ. ``benchmarks/results.py --ship-weights`` writes them
(:mod:`zoo.models.shipping`), each with a model card (:data:`CARD_FIELDS`,
:func:`card_lines`) as torchvision's weight metadata has one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable

import keras

from zoo.datasets.sources import file_sha256

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"
EVALUATION_BATCH = 256


#: What a shipped weights' model card records, beside the file, SHA-256 and shapes.
CARD_FIELDS = ("parameters", "macs", "test_accuracy", "run_test_accuracy", "table_test_accuracy",
               "command", "seed", "backend", "precision", "keras_version", "tensorflow_version")


class WeightsError(ValueError):
    """Weights that cannot be loaded into the model asked for."""


def manifest() -> dict[str, dict[str, dict[str, Any]]]:
    """{model: {dataset: entry}} of the shipped weights."""
    try:
        return json.loads(MANIFEST.read_text())
    except FileNotFoundError:
        return {}


def shipped(model_name: str) -> dict[str, dict[str, Any]]:
    """The shipped weights of ``model_name``, by dataset ({} when none)."""
    return manifest().get(model_name, {})


def sha256(path: Path) -> str:
    """The SHA-256 of the file at ``path``, in hex."""
    return file_sha256(path)


def card_lines(model_name: str) -> list[str]:
    """The model cards of ``model_name``'s shipped weights, one paragraph per
    dataset, as ``zoo info`` prints them."""
    lines = []
    for dataset, entry in shipped(model_name).items():
        table = entry.get("table_test_accuracy") or {}
        spread = (f"; its results-table row {table['mean'] * 100:.2f} ± {table['std'] * 100:.2f} % "
                  f"over {table['seeds']} seeds" if table.get("std") is not None else "")
        run = entry.get("run_test_accuracy")
        lines += [f"weights={dataset!r}: {entry['file']} (SHA-256 {entry['sha256'][:16]}…)",
                  f"  test accuracy {entry['test_accuracy'] * 100:.2f} % (evaluated in float32 at "
                  f"batch {EVALUATION_BATCH}" + (f"; the run recorded {run * 100:.2f} %" if run else "")
                  + f"){spread}"]
        if "parameters" in entry:
            lines.append(f"  {entry['parameters']:,} parameters, {entry['macs']:,} "
                         "multiply-accumulates per example")
        if entry.get("command"):
            lines.append(f"  made by: {entry['command']}")
        made_with = [f"{key.replace('_', ' ')} {entry[key]}" for key in
                     ("backend", "precision", "keras_version", "tensorflow_version") if entry.get(key)]
        if made_with:
            lines.append(f"  trained with {', '.join(made_with)}")
    return lines


def _snake_case(name: str) -> str:
    """A class name as Keras' weights files name its layer's group (``MaxPooling2D``
    → ``max_pooling2d``: ``keras.src.utils.naming.to_snake_case``)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", name))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _layer_groups(model: keras.Model) -> list[tuple[str, keras.Layer]]:
    """(group, layer) in ``model.layers`` order: the group of a ``.weights.h5``
    file that holds the layer's variables (Keras names it after the layer's
    class, numbered from the second of a class on)."""
    used: dict[str, int] = {}
    groups = []
    for layer in model.layers:
        group = _snake_case(type(layer).__name__)
        if group in used:
            used[group] += 1
            group = f"{group}_{used[group]}"
        else:
            used[group] = 0
        groups.append((group, layer))
    return groups


def _file_layers(path: Path) -> tuple[str | None, dict[str, tuple[str, list[tuple[int, ...]]]]]:
    """The model name a ``.weights.h5`` file was saved from, and per layer
    group the layer's name and the shapes of its variables (all nested ones)."""
    import h5py

    with h5py.File(path, "r") as handle:
        model_name = handle["vars"].attrs.get("name") if "vars" in handle else None
        layers = {}
        for group_name, group in (handle["layers"].items() if "layers" in handle else []):
            shapes: list[tuple[int, ...]] = []
            group.visititems(lambda _, item: shapes.append(tuple(item.shape))
                             if isinstance(item, h5py.Dataset) else None)
            name = group["vars"].attrs.get("name", group_name) if "vars" in group else group_name
            layers[group_name] = (str(name), shapes)
    return (str(model_name) if model_name is not None else None), layers


def file_shapes(path: Path) -> list[tuple[int, ...]]:
    """The shapes of every variable a ``.weights.h5`` file holds, sorted."""
    return sorted(shape for _, shapes in _file_layers(path)[1].values() for shape in shapes)


def _describe(name: str, shapes) -> str:
    return f"{name} ({', '.join(str(tuple(shape)) for shape in shapes) or 'no weights'})"


def first_difference(model: keras.Model, path: Path, name: str | None = None) -> str | None:
    """Where the weights file at ``path`` stops fitting ``model`` (called
    ``name``, else its own name): the first layer whose variables differ in
    number or shape, named on both sides; None when every layer fits."""
    name = name or model.name
    saved_from, layers = _file_layers(path)
    ours = _layer_groups(model)
    for group, layer in ours:
        shapes = sorted(tuple(weight.shape) for weight in layer.weights)
        theirs = layers.get(group)
        if theirs is None and not shapes:
            continue
        if theirs is None or sorted(theirs[1]) != shapes:
            file_side = (f"the file has {_describe(*theirs)}" if theirs is not None
                         else "the file has no layer")
            return (f"the file holds weights of {saved_from!r}; the first layer that differs is "
                    f"{_describe(layer.name, shapes)} of {name!r}, where {file_side}")
    known = {group for group, _ in ours}
    extra = [entry for group, entry in sorted(layers.items()) if group not in known and entry[1]]
    if extra:
        return (f"the file holds weights of {saved_from!r}, with layers {name!r} lacks, "
                f"the first of them {_describe(*extra[0])}")
    return None


def shape_changing(rebuild: Callable[..., keras.Model], arguments: dict[str, Any],
                   shapes: list[list[int]]) -> list[str]:
    """``name=value`` of each of ``arguments`` that alone makes ``rebuild``
    (a model's builder) give weights of other ``shapes`` (``num_classes=5``
    does, ``dropout_rate`` does not): what an error names when weights cannot fit."""
    changing = []
    for key, value in sorted(arguments.items()):
        try:
            built = [list(weight.shape) for weight in rebuild(**{key: value}).weights]
        except ValueError:  # builds only beside other overrides: it takes part in the change
            built = None
        if built != shapes:
            changing.append(f"{key}={value!r}")
    return changing


def load_weights(model: keras.Model, model_name: str, weights: str | os.PathLike,
                 arguments: dict[str, Any], rebuild: Callable[..., keras.Model]) -> None:
    """Loads ``weights`` (a dataset name of the shipped weights, or a path)
    into the freshly built ``model``; ``arguments`` are those ``rebuild`` (its
    builder) built it with, the ones that change a weight's shape named when
    the weights cannot fit them."""
    entry = None
    if isinstance(weights, str) and not weights.endswith(".h5") and os.sep not in weights:
        available = shipped(model_name)
        if weights not in available:
            have = ", ".join(repr(name) for name in available) or "none"
            raise WeightsError(f"Model {model_name!r} has no shipped weights for {weights!r}; it has: "
                               f"{have}. Pass weights=None, one of those, or a .weights.h5 path.")
        entry = available[weights]
        path = WEIGHTS_DIR / entry["file"]
    elif isinstance(weights, (str, os.PathLike)):
        path = Path(weights)
    else:
        raise WeightsError(f"Invalid value for argument `weights`. Expected None, a dataset name or "
                           f"a .weights.h5 path. Received: weights={weights!r}.")
    if not path.is_file():
        raise WeightsError(f"Weights file {path} does not exist.")
    if entry is not None:
        found = sha256(path)
        if found != entry["sha256"]:
            raise WeightsError(f"Weights file {path} is not the one shipped (truncated or changed): "
                               f"expected SHA-256 {entry['sha256']}, found {found}.")
        in_file, on_card = file_shapes(path), sorted(tuple(shape) for shape in entry["shapes"])
        if in_file != on_card:
            unmatched = [shape for shape in on_card if shape not in in_file]
            which = (f"the card's {unmatched[0]} is not in the file" if unmatched else
                     f"the file's {next(s for s in in_file if s not in on_card)} is not on the card"
                     if any(s not in on_card for s in in_file) else "their counts differ")
            raise WeightsError(f"Weights file {path} disagrees with its model card in "
                               f"{MANIFEST.name}: the card lists {len(on_card)} weights, the file "
                               f"holds {len(in_file)}, and {which}. Reinstall the package, or "
                               "pass weights=None.")
        shapes = [list(weight.shape) for weight in model.weights]
        if shapes != entry["shapes"]:
            changed = ", ".join(shape_changing(rebuild, arguments, entry["shapes"])) \
                or "the arguments given"
            raise WeightsError(f"The {weights!r} weights of {model_name!r} fit the model built with "
                               f"its default architecture; {changed} gives weights of other shapes. "
                               "Build it without those overrides, or pass weights=None.")
    try:
        difference = first_difference(model, path, model_name)
    except Exception as error:  # h5py raises many types for a file it cannot read
        raise WeightsError(f"Could not load weights from {path} into {model_name!r}: "
                           f"{_first_line(error)}") from None
    if difference is not None:
        raise WeightsError(f"Weights file {path} does not fit {model_name!r}: {difference}. "
                           "Pass the model the file was saved from, or weights=None.")
    try:
        model.load_weights(path)
    except Exception as error:  # h5py and Keras raise many types for a bad file
        raise WeightsError(f"Could not load weights from {path} into {model_name!r}: "
                           f"{_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    """The first line of ``error``'s message that says something (not one ending in a colon)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    whole = [line for line in lines if not line.endswith(":")]
    return (whole or lines or [type(error).__name__])[0]
