"""Shipped weights: the recorded test accuracy exactly, checked by SHA-256,
refused in one clear error when they cannot be what the caller asks for."""

import json
import os
import shutil

import numpy as np
import pytest

from zoo import create_model
from zoo.cli import main
from zoo.models import weights as shipped_weights
from zoo.models.shipping import evaluate_shipped


SHIPPED = [(model, dataset) for model, entries in shipped_weights.manifest().items()
           for dataset in entries]


def test_what_ships_is_what_the_manifest_says_and_stays_small():
    total = 0
    for model_name, dataset in SHIPPED:
        entry = shipped_weights.shipped(model_name)[dataset]
        path = shipped_weights.WEIGHTS_DIR / entry["file"]
        assert shipped_weights.sha256(path) == entry["sha256"]
        assert shipped_weights.file_shapes(path) == sorted(tuple(shape) for shape in entry["shapes"])
        total += path.stat().st_size
    assert total <= 16 * 2**20


#: Evaluated only with DEEPZOO_REAL_DATA=1, as the real-data end-to-end tests.
REAL_DATASETS = ("mnist", "fashion_mnist")


@pytest.mark.parametrize("model_name, dataset", SHIPPED)
def test_every_shipped_model_gives_its_recorded_test_accuracy(model_name, dataset):
    from zoo.datasets import availability

    if dataset in REAL_DATASETS and os.environ.get("DEEPZOO_REAL_DATA") != "1":
        pytest.skip("10,000 real test images per model: set DEEPZOO_REAL_DATA=1")
    if not availability(dataset).ready:  # MNIST and Fashion-MNIST: prepared by `zoo prepare`
        pytest.skip(f"{dataset} is not prepared here (`zoo prepare {dataset}`)")
    entry = shipped_weights.shipped(model_name)[dataset]
    assert evaluate_shipped(model_name, dataset) == entry["test_accuracy"]


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


def test_every_model_card_names_the_command_that_makes_its_weights():
    """The card's `zoo train` command parses into the settings its run trained
    with, and the card counts the parameters and MACs of the model it fits."""
    import shlex

    from zoo import commands
    from zoo.cli import build_parser
    from zoo.flops import count_flops
    from zoo.training import TrainConfig

    for model_name, entries in shipped_weights.manifest().items():
        count = count_flops(create_model(model_name))
        for dataset, entry in entries.items():
            assert (entry["parameters"], entry["macs"]) == (count.parameters, count.macs)
            args = build_parser().parse_args(shlex.split(entry["command"])[1:])
            settings = commands.training_settings(args)
            config = TrainConfig(args.model, **{key: value for key, value in settings.items()
                                                if value is not None and key != "precision"})
            assert (config.model, config.dataset, config.seed) == (model_name, dataset, entry["seed"])
            table = entry["table_test_accuracy"]
            assert abs(entry["run_test_accuracy"] - table["mean"]) <= 3 * (table["std"] or 0) + 1e-4


def test_zoo_info_prints_the_model_card(weights_dir, capsys):
    folder, _ = weights_dir
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["mlp"]["mnist_5k"].update(
        parameters=79510, macs=79400, run_test_accuracy=0.5, command="zoo train mlp --seed 0",
        table_test_accuracy={"mean": 0.49, "std": 0.01, "seeds": 3}, backend="jax",
        precision="float32", keras_version="3.15.1", tensorflow_version=None)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert main(["info", "mlp"]) == 0
    out = capsys.readouterr().out
    assert "weights='mnist_5k': mlp-mnist_5k.weights.h5 (SHA-256 " in out
    assert "test accuracy 50.00 % (evaluated in float32 at batch 256; the run recorded 50.00 %); " \
           "its results-table row 49.00 ± 1.00 % over 3 seeds" in out
    assert "made by: zoo train mlp --seed 0" in out
    assert "trained with backend jax, precision float32, keras version 3.15.1" in out
    assert main(["info", "deep_mlp"]) == 0
    assert "shipped weights: none" in capsys.readouterr().out


def test_a_file_of_another_architecture_names_the_first_layer_that_differs(tmp_path):
    path = tmp_path / "small_cnn.weights.h5"
    create_model("small_cnn").save_weights(path)
    with pytest.raises(ValueError, match=(
            r"does not fit 'lenet5': the file holds weights of 'small_cnn'; the first layer that "
            r"differs is conv_1 \(\(5, 5, 1, 6\), \(6,\)\) of 'lenet5', where the file has "
            r"conv_1_1 \(\(3, 3, 1, 16\)\)\. Pass the model the file was saved from")):
        create_model("lenet5", weights=str(path))
    import keras

    def dense_net(name, *units):
        inputs = x = keras.Input((4,))
        for index, width in enumerate(units):
            x = keras.layers.Dense(width, name=f"dense_{index}")(x)
        return keras.Model(inputs, x, name=name)

    dense_net("longer", 3, 2).save_weights(path)
    assert shipped_weights.first_difference(dense_net("shorter", 3), path) == (
        "the file holds weights of 'longer', with layers 'shorter' lacks, the first of them "
        "dense_1 ((3, 2), (2,))")


def test_a_model_card_that_disagrees_with_its_file_is_refused(weights_dir):
    folder, _ = weights_dir
    other = create_model("mlp", hidden_units=(50,))
    other.save_weights(folder / "mlp-mnist_5k.weights.h5")  # the card still lists mlp's shapes
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["mlp"]["mnist_5k"]["sha256"] = shipped_weights.sha256(folder / "mlp-mnist_5k.weights.h5")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"disagrees with its model card in manifest\.json: the card "
                                         r"lists 4 weights, the file holds 4, and the card's \(100,\) "
                                         r"is not in the file"):
        create_model("mlp", weights="mnist_5k")
