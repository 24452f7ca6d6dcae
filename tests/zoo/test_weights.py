"""Shipped weights: the recorded test accuracy exactly, checked by SHA-256,
refused in one clear error when they cannot be what the caller asks for."""

import json
import shutil

import numpy as np
import pytest

from zoo import create_model
from zoo.cli import main
from zoo.models import weights as shipped_weights
from zoo.models.shipping import evaluate_shipped


def test_every_shipped_model_gives_its_recorded_test_accuracy():
    manifest = shipped_weights.manifest()
    assert manifest, "no weights are shipped"
    total = 0
    for model_name, entries in manifest.items():
        for dataset, entry in entries.items():
            path = shipped_weights.WEIGHTS_DIR / entry["file"]
            assert shipped_weights.sha256(path) == entry["sha256"]
            assert evaluate_shipped(model_name, dataset) == entry["test_accuracy"]
            total += path.stat().st_size
    assert total <= 10 * 2**20  # what ships stays small


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """A shipped-weights folder holding weights of `mlp` for mnist_5k."""
    monkeypatch.setattr(shipped_weights, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(shipped_weights, "MANIFEST", tmp_path / "manifest.json")
    model = create_model("mlp")
    model.save_weights(tmp_path / "mlp-mnist_5k.weights.h5")
    entry = {"file": "mlp-mnist_5k.weights.h5",
             "sha256": shipped_weights.sha256(tmp_path / "mlp-mnist_5k.weights.h5"),
             "shapes": [list(weight.shape) for weight in model.weights], "test_accuracy": 0.5,
             "seed": 0}
    (tmp_path / "manifest.json").write_text(json.dumps({"mlp": {"mnist_5k": entry}}))
    return tmp_path, model


def test_shipped_weights_load_by_dataset_name_and_by_path(weights_dir):
    folder, trained = weights_dir
    for weights in ("mnist_5k", str(folder / "mlp-mnist_5k.weights.h5")):
        model = create_model("mlp", weights=weights, layers="keras")  # the twin takes them too
        for ours, theirs in zip(model.get_weights(), trained.get_weights()):
            np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("arguments, message", [
    (dict(weights="mnist1d"), r"Model 'mlp' has no shipped weights for 'mnist1d'; it has: 'mnist_5k'"),
    (dict(weights="mnist_5k", num_classes=5),
     r"The 'mnist_5k' weights of 'mlp' fit the model built with its default architecture; "
     r"num_classes=5 gives weights of other shapes"),
    (dict(weights="mnist_5k", input_shape=(40, 1)), r"input_shape=\(40, 1\) gives weights"),
    (dict(weights="mnist_5k", dropout_rate=0.3, batch_norm=True, num_classes=5),  # names only
     r"default architecture; batch_norm=True, num_classes=5 gives weights"),     # what changes shapes
    (dict(weights="missing/w.weights.h5"), r"Weights file missing/w\.weights\.h5 does not exist"),
    (dict(weights=3), r"Expected None, a dataset name or a \.weights\.h5 path\. Received: weights=3"),
])
def test_weights_that_cannot_fit_are_refused_by_name(weights_dir, arguments, message):
    with pytest.raises(ValueError, match=message):
        create_model("mlp", **arguments)


def test_tampered_and_truncated_weights_are_refused(weights_dir, tmp_path):
    folder, _ = weights_dir
    path = folder / "mlp-mnist_5k.weights.h5"
    expected = shipped_weights.sha256(path)
    truncated = tmp_path / "truncated.weights.h5"
    shutil.copy(path, truncated)
    with open(truncated, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    with pytest.raises(ValueError, match=r"Could not load weights from .*truncated\.weights\.h5"):
        create_model("mlp", weights=str(truncated))
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"expected SHA-256 {expected}, found "
                                         f"{shipped_weights.sha256(path)}"):
        create_model("mlp", weights="mnist_5k")


def test_zoo_predict_takes_a_model_name_and_says_which_weights(weights_dir, tmp_path, capsys):
    np.save(tmp_path / "digit.npy", np.zeros((28, 28, 1), np.float32))
    assert main(["predict", "mlp", str(tmp_path / "digit.npy")]) == 0
    captured = capsys.readouterr()
    assert "using the shipped mnist_5k weights of mlp (test accuracy 0.5000" in captured.err
    assert captured.out.startswith("digit.npy\tclass ")
    assert main(["predict", "deep_mlp", str(tmp_path / "digit.npy")]) == 2
    assert "Model 'deep_mlp' has no shipped weights" in capsys.readouterr().err
