"""Trained weights shipped with the zoo, as ``keras.applications`` offers
them: ``deep_cnn(weights="mnist_5k")``, ``create_model(name, weights=...)``.

``weights`` is None (random initialisation, the default), the name of a
dataset the model's weights were trained on (``zoo/weights/manifest.json``
lists them, with the SHA-256 of each file and the test accuracy it gives),
or the path of a ``.weights.h5`` file. Shipped weights are checked by their
SHA-256 before they are read and must fit the model built (its default
architecture: an override that changes a weight's shape is refused); a
failure raises before the model is returned, so nothing half loaded
escapes. ``benchmarks/results.py --ship-weights`` writes them
(:mod:`zoo.models.shipping`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import keras

from zoo.datasets.sources import file_sha256

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"
EVALUATION_BATCH = 256


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
        shapes = [list(weight.shape) for weight in model.weights]
        if shapes != entry["shapes"]:
            changed = ", ".join(shape_changing(rebuild, arguments, entry["shapes"])) \
                or "the arguments given"
            raise WeightsError(f"The {weights!r} weights of {model_name!r} fit the model built with "
                               f"its default architecture; {changed} gives weights of other shapes. "
                               "Build it without those overrides, or pass weights=None.")
    try:
        model.load_weights(path)
    except Exception as error:  # h5py and Keras raise many types for a bad file
        raise WeightsError(f"Could not load weights from {path} into {model_name!r}: "
                           f"{str(error).strip().splitlines()[0]}") from None
