"""Writing and checking the shipped weights (:mod:`zoo.models.weights`):
the weights of a trained run stored with their SHA-256, and the test
accuracy they give, evaluated the one way the tests evaluate it."""

from __future__ import annotations

import os
from typing import Any

import keras

from zoo.models.registry import create_model
from zoo.models import weights
from zoo.models.weights import EVALUATION_BATCH, manifest, sha256


def evaluate_shipped(model_name: str, dataset: str) -> float:
    """Test accuracy of the shipped weights, evaluated as they were when
    shipped: float32, batches of 256, the dataset's test split."""
    from zoo import datasets
    from zoo.training.precision import precision_scope

    with precision_scope("float32"):
        model = create_model(model_name, weights=dataset)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    test_data = datasets.load(dataset, "test", batch_size=EVALUATION_BATCH)
    return float(model.evaluate(test_data, verbose=0, return_dict=True)["accuracy"])


def ship_weights(model_name: str, dataset: str, model_file: str | os.PathLike, seed: int,
                 budget_mb: float, card: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Stores the weights of a trained ``model_file`` as the shipped weights of
    ``model_name`` on ``dataset`` (file, SHA-256, shapes, test accuracy) with
    its model card (``card``: :data:`zoo.models.weights.CARD_FIELDS`; the
    parameters and multiply-accumulates are counted here), unless they would
    take the shipped total past ``budget_mb``; returns the entry."""
    from zoo.flops import count_flops
    from zoo.files import atomic_write_json
    from zoo.io import load_model

    trained = load_model(model_file)
    model = create_model(model_name)  # the weights alone, without the optimizer's state
    model.set_weights(trained.get_weights())
    weights.WEIGHTS_DIR.mkdir(exist_ok=True)
    name = f"{model_name}-{dataset}.weights.h5"
    path = weights.WEIGHTS_DIR / name
    temporary = weights.WEIGHTS_DIR / f".{name}"
    model.save_weights(temporary)
    records = manifest()
    others = sum((weights.WEIGHTS_DIR / entry["file"]).stat().st_size
                 for model_entries in records.values() for entry in model_entries.values()
                 if entry["file"] != name and (weights.WEIGHTS_DIR / entry["file"]).exists())
    if (others + temporary.stat().st_size) / 2**20 > budget_mb:
        temporary.unlink()
        return None
    os.replace(temporary, path)
    count = count_flops(model)
    entry = {"file": name, "sha256": sha256(path), "seed": seed,
             "shapes": [list(weight.shape) for weight in model.weights],
             "test_accuracy": None, "parameters": count.parameters, "macs": count.macs,
             **{key: value for key, value in (card or {}).items()
                if key in weights.CARD_FIELDS and key not in ("parameters", "macs", "seed")}}
    records.setdefault(model_name, {})[dataset] = entry
    atomic_write_json(records, weights.MANIFEST)
    keras.backend.clear_session()
    entry["test_accuracy"] = evaluate_shipped(model_name, dataset)
    atomic_write_json(records, weights.MANIFEST)
    return entry
