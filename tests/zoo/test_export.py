"""SavedModel export (loadable without this package), .keras loading, `zoo predict`."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from zoo import deep_cnn
from zoo.cli import main
from zoo.export import Predictor, export_savedmodel
from zoo.io import load_model as load
from zoo.io import atomic_save_model

INPUT_SHAPE = (12, 12, 1)

# Runs in a fresh interpreter where importing this project fails.
STANDALONE_LOADER = """
import sys, json
for name in ("zoo", "custom_layers", "tuning", "keras"):
    sys.modules[name] = None  # any import of them now raises ImportError
import numpy as np
import tensorflow as tf
served = tf.saved_model.load(sys.argv[1])
x = np.load(sys.argv[2])
np.save(sys.argv[3], served.serve(tf.constant(x)).numpy())
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small CNN with batch norm and dropout, trained a few steps so the
    moving statistics differ from their initial values."""
    tf.keras.utils.set_random_seed(0)
    model = deep_cnn(input_shape=INPUT_SHAPE, filters=(8,), convs_per_block=1, dense_units=(16,),
                     dropout_rate=0.5)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((64, *INPUT_SHAPE)).astype("float32")
    y = rng.integers(0, 10, 64)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    directory = tmp_path_factory.mktemp("export")
    export_savedmodel(model, directory / "savedmodel")
    atomic_save_model(model, directory / "model.keras")
    return model, x[:5], directory


def test_savedmodel_runs_without_this_package_and_matches_predict(trained, tmp_path):
    model, x, directory = trained
    np.save(tmp_path / "x.npy", x)
    result = subprocess.run(
        [sys.executable, "-c", STANDALONE_LOADER, str(directory / "savedmodel"),
         str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_serve_is_inference_mode_with_a_free_batch_axis(trained):
    model, x, directory = trained
    served = tf.saved_model.load(str(directory / "savedmodel"))
    first, second = served.serve(tf.constant(x)), served.serve(tf.constant(x))
    np.testing.assert_array_equal(first, second)  # no dropout noise, moving BN statistics
    assert served.serve(tf.constant(x[:1])).shape == (1, 10)


def test_saved_model_cli_lists_the_serve_signature(trained):
    _, _, directory = trained
    cli = shutil.which("saved_model_cli") or pytest.fail("saved_model_cli is not installed")
    result = subprocess.run([cli, "show", "--dir", str(directory / "savedmodel"), "--all"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "signature_def['serve']" in result.stdout
    assert "shape: (-1, 12, 12, 1)" in result.stdout and "DT_FLOAT" in result.stdout


def test_loaded_savedmodel_keeps_the_hand_written_gradients(trained):
    model, x, directory = trained
    served = tf.saved_model.load(str(directory / "savedmodel"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(served.serve(tf.constant(x)) ** 2)
    loaded_grads = tape.gradient(loss, served.trainable_variables)
    with tf.GradientTape() as tape:
        reference = tf.reduce_sum(model(x, training=False) ** 2)
    reference_grads = dict(zip([v.path for v in model.trainable_variables],
                               tape.gradient(reference, model.trainable_variables)))
    assert loaded_grads and all(g is not None for g in loaded_grads)
    for variable, gradient in zip(served.trainable_variables, loaded_grads):
        name = variable.name.split(":")[0]
        np.testing.assert_allclose(gradient, reference_grads[name], rtol=1e-4, atol=1e-6)


def test_keras_file_round_trip(trained):
    model, x, directory = trained
    np.testing.assert_allclose(load(directory / "model.keras").predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    (b"definitely not a zip archive", "not a valid .keras file"),
    ("truncate", "not a valid .keras file"),
])
def test_bad_keras_files_give_clear_errors(trained, tmp_path, content, message):
    _, _, directory = trained
    path = tmp_path / "broken.keras"
    if content == "truncate":
        data = (directory / "model.keras").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load(path)


def test_keras_file_from_an_incompatible_version_is_refused(trained, tmp_path):
    import zipfile

    _, _, directory = trained
    path = tmp_path / "future.keras"
    with zipfile.ZipFile(directory / "model.keras") as source, \
            zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                config["class_name"] = "LayerFromTheFuture"
                data = json.dumps(config).encode()
            target.writestr(item, data)
    with pytest.raises(ValueError, match="Could not load model"):
        load(path)


def test_export_refuses_to_overwrite(trained):
    model, _, directory = trained
    with pytest.raises(FileExistsError, match="already exists"):
        export_savedmodel(model, directory / "savedmodel")


def test_predict_cli_on_arrays_and_images(trained, tmp_path, capsys):
    model, x, directory = trained
    np.save(tmp_path / "one.npy", x[0])
    np.save(tmp_path / "batch.npy", x[1:4])
    png = tf.io.encode_png(tf.cast(np.repeat(x[4] * 255, 2, axis=0)[:24, :24], tf.uint8))
    tf.io.write_file(str(tmp_path / "digit.png"), png)
    expected = model.predict(x[:4], verbose=0).argmax(axis=1)
    for model_path in (directory / "model.keras", directory, directory / "savedmodel"):  # directory: a run
        assert main(["predict", str(model_path), str(tmp_path / "one.npy"),
                     str(tmp_path / "batch.npy"), str(tmp_path / "digit.png")]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 5
        assert [int(line.split("class ")[1].split()[0]) for line in lines[:4]] == list(expected)


def test_predict_rejects_a_wrong_shape_naming_the_expected_one(trained, tmp_path, capsys):
    _, _, directory = trained
    np.save(tmp_path / "wrong.npy", np.zeros((2, 28, 28, 1), "float32"))
    assert main(["predict", str(directory / "model.keras"), str(tmp_path / "wrong.npy")]) == 2
    assert "expected (batch, 12, 12, 1)" in capsys.readouterr().err
    assert Predictor(directory / "savedmodel").input_shape == INPUT_SHAPE


def test_predict_names_each_input_and_says_what_it_changed(trained, tmp_path, capsys):
    model, x, directory = trained
    np.save(tmp_path / "batch.npy", x[:2])
    np.save(tmp_path / "grey_levels.npy", (x[2] * 255).astype("uint8"))
    drawing = np.full((12, 12, 1), 255, np.uint8)  # black strokes on white paper
    drawing[2:10, 5:7] = 0
    tf.io.write_file(str(tmp_path / "drawn.png"), tf.io.encode_png(drawing))
    assert main(["predict", str(directory / "model.keras"), str(tmp_path / "batch.npy"),
                 str(tmp_path / "grey_levels.npy"), str(tmp_path / "drawn.png")]) == 0
    captured = capsys.readouterr()
    names = [line.split("\t")[0] for line in captured.out.strip().splitlines()]
    assert names == ["batch.npy[0]", "batch.npy[1]", "grey_levels.npy", "drawn.png"]
    notes = captured.err.strip().splitlines()
    assert len(notes) == 2 and "grey_levels.npy holds values in [" in notes[0]
    assert "trained on inputs in [0, 1]" in notes[0]
    assert "drawn.png is drawn dark on light; inverted" in notes[1]
    inverted = np.zeros((1, 12, 12, 1), "float32")
    inverted[0, 2:10, 5:7] = 1.0
    expected = int(model.predict(inverted, verbose=0).argmax())
    assert captured.out.strip().splitlines()[-1].split("\t")[1] == f"class {expected}"


def test_export_overwrite_replaces_a_savedmodel_only(trained, tmp_path, capsys):
    model, _, directory = trained
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(directory / "model.keras", run / "model.keras")
    assert main(["export", str(run), str(tmp_path / "served")]) == 0
    assert main(["export", str(run), str(tmp_path / "served")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(run), str(tmp_path / "served"), "--overwrite"]) == 0
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    assert main(["export", str(run), str(tmp_path / "notes"), "--overwrite"]) == 2
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
