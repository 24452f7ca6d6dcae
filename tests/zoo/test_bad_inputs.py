"""The zoo's table of malformed inputs across the Python API (models,
datasets, training, export and prediction) and the `zoo` command.

Every row must fail with a clear error that names the problem: the Python API
with the given exception type and a message matching the row's pattern; the
command exits non-zero with exactly one line on stderr (``zoo: error: ...``)
and no traceback. Command rows run in-process through ``zoo.cli.main``; the
rows marked SUBPROCESS run the real ``python -m zoo.cli``.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from zoo import create_model, datasets
from zoo.cli import main
from zoo.export import Predictor, export_run, read_named_inputs
from zoo.io import load_model as load
from zoo.io import atomic_save_model
from zoo.training import evaluate_run, train

INPUT_SHAPE = (40, 1)  # MNIST-1D


class CrashAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Good and bad model files, arrays and run directories, made once."""
    root = tmp_path_factory.mktemp("bad_inputs")
    data_dir = str(root / "tensorflow_datasets")
    datasets.prepare("mnist1d", data_dir=data_dir)

    model = create_model("mlp", input_shape=INPUT_SHAPE)
    atomic_save_model(model, root / "model.keras")
    data = (root / "model.keras").read_bytes()
    (root / "truncated.keras").write_bytes(data[: len(data) // 2])
    (root / "random.keras").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "model.h5").write_bytes(data)
    code = keras.Sequential([keras.Input(INPUT_SHAPE), keras.layers.Lambda(lambda x: x * 2.0)])
    code.save(root / "lambda.keras")  # carries Python bytecode
    (root / "not_a_savedmodel").mkdir()

    np.save(root / "good.npy", np.zeros((2, *INPUT_SHAPE), "float32"))
    np.save(root / "wrong_shape.npy", np.zeros((2, 28, 28, 1), "float32"))
    np.save(root / "empty.npy", np.zeros((0, *INPUT_SHAPE), "float32"))
    (root / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (root / "notes.txt").write_text("not an input")
    (root / "a_file").write_text("a regular file, not a directory")

    # An unfinished run (one epoch backed up), then two copies with a corrupt backup.
    unfinished = root / "unfinished"
    with pytest.raises(KeyboardInterrupt):
        train("mlp", dataset="mnist1d", epochs=2, batch_size=400, run_dir=unfinished,
              data_dir=data_dir, verbose=0, callbacks=[CrashAfterFirstEpoch()])
    state = json.loads((unfinished / "backup" / "state.json").read_text())
    corrupt_state = root / "corrupt_backup_state"
    shutil.copytree(unfinished, corrupt_state)
    (corrupt_state / "backup" / "state.json").write_text('{"epoch": 1, "weig')
    corrupt_weights = root / "corrupt_backup_weights"
    shutil.copytree(unfinished, corrupt_weights)
    (corrupt_weights / "backup" / state["weights"]).write_bytes(b"\x89HDF\r\n" + bytes(512))

    corrupt_metrics = root / "corrupt_metrics"
    corrupt_metrics.mkdir()
    (corrupt_metrics / "metrics.json").write_text("{not json")
    keras.backend.clear_session()
    return SimpleNamespace(root=root, data_dir=data_dir, weights_file=state["weights"])


@pytest.fixture
def ctx(files, tmp_path, monkeypatch):
    return SimpleNamespace(files=files, tmp=tmp_path, monkeypatch=monkeypatch,
                           path=lambda name: str(files.root / name))


def train_mlp(ctx, run_dir=None, **arguments):
    return train("mlp", **{"dataset": "mnist1d", "epochs": 1, "batch_size": 400, "verbose": 0,
                           "data_dir": ctx.files.data_dir,
                           "run_dir": run_dir or ctx.tmp / "run", **arguments})


def predictor(ctx):
    return Predictor(ctx.path("model.keras"))


def with_empty_training_data(ctx):
    original = datasets.load

    def load(name, split, **options):
        data = original(name, split, **options)
        return data.take(0) if split == "train" else data

    ctx.monkeypatch.setattr(datasets, "load", load)
    return train_mlp(ctx)


def unwritable_run_dir(ctx):
    parent = ctx.tmp / "read_only"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        run_dir = parent / "run"
        if os.access(parent, os.W_OK):  # root ignores permissions: a file as the parent instead
            run_dir = Path(ctx.path("a_file")) / "run"
        return train_mlp(ctx, run_dir=run_dir)
    finally:
        parent.chmod(0o700)


#: (id, call(ctx), exception type, pattern the message must match)
API_ROWS = [
    # models and layers
    ("unknown model", lambda c: create_model("vgg16"), ValueError,
     r"Unknown model 'vgg16'\. Available models: .*deep_cnn"),
    ("unknown model argument", lambda c: create_model("mlp", hidden=(3,)), ValueError,
     r"Unknown argument\(s\) hidden for model 'mlp'\. Valid arguments: .*hidden_units"),
    ("negative weight decay", lambda c: create_model("deep_mlp", weight_decay=-1e-3), ValueError,
     r"argument `weight_decay`\. Expected a finite number >= 0\. Received: weight_decay=-0\.001\."),
    ("dropout rate 1", lambda c: create_model("deep_mlp", dropout_rate=1.0), ValueError,
     r"argument `dropout_rate`\. Expected a finite number >= 0 and < 1\. Received: dropout_rate=1\.0\."),
    ("CNN input of rank 2", lambda c: create_model("deep_cnn", input_shape=(28, 28)), ValueError,
     r"argument `input_shape`\. Expected 3 positive sizes .*Received: input_shape=\(28, 28\)\."),
    ("unknown layer set", lambda c: create_model("deep_cnn", layers="torch"), ValueError,
     r"argument `layers`\. Expected one of 'custom', 'keras'\. Received: layers='torch'\."),
    ("a block of 0 filters", lambda c: create_model("deep_cnn", filters=(0, 8)), ValueError,
     r"argument `filters`\. Expected a sequence of positive integers\. Received: filters=\(0, 8\)"),
    ("one class", lambda c: create_model("mlp", num_classes=1), ValueError,
     r"argument `num_classes`\. Expected an integer >= 2\. Received: num_classes=1\."),
    ("model input of the wrong shape",
     lambda c: create_model("cnn1d", input_shape=INPUT_SHAPE)(np.zeros((2, 30, 1), "float32")),
     ValueError, r"incompatible with the layer: expected shape=\(None, 40, 1\)"),
    ("model input of the wrong rank",
     lambda c: create_model("deep_cnn")(np.zeros((2, 784), "float32")),
     ValueError, r"expected shape=\(None, 28, 28, 1\), found shape=\(2, 784\)"),
    ("unknown dataset", lambda c: datasets.load("imagenet42"), ValueError,
     r"unknown dataset 'imagenet42'; valid names are: .*mnist1d"),
    ("unknown split", lambda c: datasets.load("mnist1d", "training"), ValueError,
     r"unknown split 'training'; valid splits are: train, validation, test"),
    ("batch size 0", lambda c: datasets.load("mnist1d", batch_size=0), ValueError,
     r"argument `batch_size`\. Expected a positive integer\. Received: batch_size=0\."),
    ("empty training split", lambda c: datasets.load("mnist1d", validation_split=0.99999),
     ValueError, r"leaves 4000 for validation and 0 for training; both must be non-empty"),
    ("augmenting signals", lambda c: datasets.load("mnist1d", augment=True), ValueError,
     r"augment=True applies to image datasets; 'mnist1d' is a signal dataset"),
    # training
    ("negative λ in training", lambda c: train_mlp(c, weight_decay=-0.1), ValueError,
     r"argument `weight_decay`\. Expected a finite number >= 0"),
    ("empty training data", with_empty_training_data, ValueError,
     r"The mnist1d training data are empty"),
    ("unwritable run directory", unwritable_run_dir, OSError,
     r"Run directory .*run is not writable: (Permission denied|Not a directory)"),
    ("corrupt backup state",
     lambda c: train_mlp(c, run_dir=c.files.root / "corrupt_backup_state", epochs=2),
     ValueError, r"The backup in .*corrupt_backup_state/backup is corrupt or from another model "
                 r"\(state\.json: .*\); delete that directory"),
    ("corrupt backup weights",
     lambda c: train_mlp(c, run_dir=c.files.root / "corrupt_backup_weights", epochs=2),
     ValueError, r"The backup in .*corrupt_backup_weights/backup is corrupt or from another model "
                 r"\(epoch-1\.weights\.h5"),
    ("other settings on resume",
     lambda c: train_mlp(c, run_dir=c.files.root / "unfinished", epochs=3), ValueError,
     r"unfinished holds an unfinished run with other settings \(epochs 2 -> 3\); repeat its "
     r"settings to resume it, or pass overwrite=True to train afresh\."),
    ("corrupt metrics.json", lambda c: evaluate_run(c.path("corrupt_metrics")), ValueError,
     r"metrics\.json is corrupt: cannot read the dataset name"),
    # model files, export and prediction
    ("missing model file", lambda c: load(c.tmp / "missing.keras"), FileNotFoundError,
     r"Model file .*missing\.keras does not exist"),
    ("random bytes as .keras", lambda c: load(c.path("random.keras")), ValueError,
     r"random\.keras is not a valid \.keras file \(truncated or not a model archive\)"),
    ("truncated .keras", lambda c: load(c.path("truncated.keras")), ValueError,
     r"truncated\.keras is not a valid \.keras file \(truncated"),
    ("not a .keras name", lambda c: load(c.path("model.h5")), ValueError,
     r"Expected a \.keras model file, received .*model\.h5"),
    ("Lambda layer with code", lambda c: load(c.path("lambda.keras")), ValueError,
     r"lambda\.keras: Requested the deserialization of a `Lambda` layer .*arbitrary code "
     r"execution.*safe_mode=False"),
    ("export of a missing run", lambda c: export_run(c.tmp / "no_run", c.tmp / "out"),
     FileNotFoundError, r"no_run/model\.keras does not exist"),
    ("not a SavedModel directory", lambda c: Predictor(c.path("not_a_savedmodel")), ValueError,
     r"is not a SavedModel directory \(no saved_model\.pb\)"),
    ("prediction input of the wrong rank",
     lambda c: predictor(c).predict(np.zeros((2, 40, 1, 1))), ValueError,
     r"Inputs have shape \(2, 40, 1, 1\); expected \(batch, 40, 1\) or \(40, 1\)"),
    ("prediction input of strings", lambda c: predictor(c).predict(np.full((2, 40, 1), "x")),
     ValueError, r"Inputs must be real numbers \(int or float\), received dtype <U1"),
    ("prediction input of complex numbers",
     lambda c: predictor(c).predict(np.zeros((2, 40, 1), complex)), ValueError,
     r"Inputs must be real numbers \(int or float\), received dtype complex128"),
    ("empty prediction batch", lambda c: predictor(c).predict(np.zeros((0, 40, 1))), ValueError,
     r"Inputs hold no examples \(shape \(0, 40, 1\)\)"),
    ("NaN prediction input", lambda c: predictor(c).predict(np.full((1, 40, 1), np.nan)),
     ValueError, r"Inputs contain NaN or infinite values"),
    ("unsupported input file", lambda c: read_named_inputs([c.path("notes.txt")], INPUT_SHAPE),
     ValueError, r"Unsupported input file .*notes\.txt: expected \.npy, \.png, \.jpg or \.jpeg"),
]


#: Arguments of ``zoo.train`` refused before any work: (id, arguments, pattern).
TRAINING_ROWS = [
    ("epochs 0", dict(epochs=0),
     r"Invalid value for argument `epochs`\. Expected a positive integer\. Received: epochs=0\."),
    ("batch size 0", dict(batch_size=0),
     r"Invalid value for argument `batch_size`\. Expected a positive integer\. Received: batch_size=0\."),
    ("unknown optimizer", dict(optimizer="lbfgs"),
     r"Invalid value for argument `optimizer`\. Expected one of 'adam', 'sgd', 'rmsprop', "
     r"'adamw'\. Received: optimizer='lbfgs'\."),
    ("negative learning rate", dict(learning_rate=-0.1),
     r"Invalid value for argument `learning_rate`\. Expected a finite number > 0\. "
     r"Received: learning_rate=-0\.1\."),
    ("unknown strategy", dict(strategy="tpu-pod"),
     r"Invalid value for argument `strategy`\. Expected one of 'auto', 'none', 'mirrored', 'multi-worker'"),
    ("unknown dataset to train on", dict(dataset="imagenet42"), r"unknown dataset 'imagenet42'"),
    ("unknown precision", dict(precision="half"),
     r"Invalid value for argument `precision`\. Expected one of 'auto', 'float32', "
     r"'mixed_bfloat16', 'mixed_float16'\. Received: precision='half'\."),
    ("gradient statistics every 0 steps", dict(gradient_stats_every=0),
     r"Invalid value for argument `gradient_stats_every`\. Expected a positive integer or None\. "
     r"Received: gradient_stats_every=0\."),
    ("gradient statistics of a mirrored run", dict(gradient_stats_every=10, strategy="mirrored"),
     r"Gradient statistics observe a single-device run \(strategy 'none'\); "
     r"received strategy='mirrored'\."),
]


@pytest.mark.parametrize("arguments, pattern", [row[1:] for row in TRAINING_ROWS],
                         ids=[row[0] for row in TRAINING_ROWS])
def test_training_refuses_bad_arguments_before_writing_anything(ctx, arguments, pattern):
    with pytest.raises(ValueError, match=pattern):
        train_mlp(ctx, run_dir=ctx.tmp / "never", **arguments)
    assert not (ctx.tmp / "never").exists()


@pytest.mark.parametrize("call, error, pattern", [row[1:] for row in API_ROWS],
                         ids=[row[0] for row in API_ROWS])
def test_python_api_refuses_bad_input_naming_the_problem(ctx, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(ctx)


#: (id, argv with {name} for the module's files and {tmp} for a fresh directory,
#:  pattern, in a real subprocess)
CLI_ROWS = [
    ("unknown model", ["train", "vgg16"], r"Unknown model 'vgg16'\. Available models:"),
    ("unknown dataset", ["train", "mlp", "--dataset", "imagenet42"],
     r"unknown dataset 'imagenet42'; valid names are"),
    ("unknown optimizer", ["train", "mlp", "--optimizer", "lbfgs"],
     r"Invalid value for argument --optimizer\. .*Received: --optimizer lbfgs\."),
    ("negative λ", ["train", "mlp", "--weight-decay", "-1"],
     r"argument --weight-decay: expected a number >= 0, received '-1'"),
    ("dropout 1", ["train", "mlp", "--dropout-rate", "1"],
     r"argument --dropout-rate: expected a rate in \[0, 1\), received '1'"),
    ("an abbreviated flag", ["train", "mlp", "--epoch", "1"],
     r"unrecognized arguments: --epoch 1"),
    ("epochs 0", ["train", "mlp", "--epochs", "0"],
     r"argument --epochs: expected a positive integer, received '0'"),
    ("unknown model to describe", ["info", "vgg16"], r"Unknown model 'vgg16'"),
    ("corrupt backup", ["train", "mlp", "--dataset", "mnist1d", "--batch-size", "400",
                        "--epochs", "2", "--run-dir", "{corrupt_backup_state}", "--data-dir", "{data_dir}"],
     r"The backup in .*corrupt_backup_state/backup is corrupt"),
    ("missing model file", ["predict", "{tmp}/missing.keras", "{good.npy}"],
     r"Model file .*missing\.keras does not exist"),
    ("input of the wrong shape", ["predict", "{model.keras}", "{wrong_shape.npy}"],
     r"expected \(batch, 40, 1\)"),
    ("empty input batch", ["predict", "{model.keras}", "{empty.npy}"], r"Inputs hold no examples"),
    ("unreadable .npy", ["predict", "{model.keras}", "{garbage.npy}"], r"is not a readable \.npy array"),
    ("truncated model file", ["predict", "{truncated.keras}", "{good.npy}"],
     r"truncated\.keras is not a valid \.keras file"),
    ("corrupt metrics.json", ["evaluate", "{corrupt_metrics}"], r"metrics\.json is corrupt"),
    ("export of a missing run", ["export", "{tmp}/no_run", "{tmp}/out"], r"does not exist"),
    ("conversion of a missing model", ["convert", "{tmp}/missing.keras", "{tmp}/out.keras"],
     r"Model file .*missing\.keras does not exist"),
    ("negative learning rate", ["train", "mlp", "--learning-rate", "-1"],
     r"argument --learning-rate: expected a finite number > 0, received '-1'"),
    ("unknown layer set", ["train", "mlp", "--layers", "torch"], r"argument --layers: invalid choice"),
    ("unknown precision", ["train", "mlp", "--precision", "fp8"],
     r"Invalid value for argument --precision\. Expected one of 'auto', 'float32', "
     r"'mixed_bfloat16', 'mixed_float16'\. Received: --precision fp8\."),
    ("other settings on resume, in flags", ["train", "mlp", "--dataset", "mnist1d", "--batch-size",
                                            "400", "--epochs", "3", "--run-dir", "{unfinished}",
                                            "--data-dir", "{data_dir}"],
     r"\(epochs 2 -> 3\); repeat its settings to resume it, or pass --overwrite to train afresh\."),
    ("gradient statistics every 0 steps", ["train", "mlp", "--gradient-stats-every", "0"],
     r"argument --gradient-stats-every: expected a positive integer, received '0'"),
    ("unknown command", ["frobnicate"], r"invalid choice: 'frobnicate'"),
    ("Lambda layer with code", ["predict", "{lambda.keras}", "{good.npy}"],
     r"Could not load model from .*lambda\.keras: Requested the deserialization of a `Lambda` "
     r"layer .*safe_mode=False"),
    ("run directory under a regular file",
     ["train", "mlp", "--dataset", "mnist1d", "--run-dir", "{a_file}/run", "--data-dir", "{data_dir}"],
     r"Run directory .*a_file/run is not writable: Not a directory"),
]

#: The same in a real `python -m zoo.cli` process (one: each imports TensorFlow; the
#: other rows run in this process, and tests/zoo/test_cli.py runs one more).
SUBPROCESS_ROWS = [
    ("random bytes as model file", ["predict", "{random.keras}", "{good.npy}"],
     r"random\.keras is not a valid \.keras file"),
]


def expand(argv, ctx):
    names = {path.name: str(path) for path in ctx.files.root.iterdir()}
    names.update(tmp=str(ctx.tmp), data_dir=ctx.files.data_dir)
    return [re.sub(r"\{([^}]+)\}", lambda match: names[match.group(1)], arg) for arg in argv]


def check_one_line(stderr, pattern):
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    # one prefix, "zoo: error: ...", for a bad argument of a subcommand too
    assert lines[0].startswith("zoo: error: ") and re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("argv, pattern", [row[1:] for row in CLI_ROWS], ids=[row[0] for row in CLI_ROWS])
def test_cli_refuses_bad_input_with_one_line_and_a_non_zero_status(ctx, capsys, argv, pattern):
    try:
        status = main(expand(argv, ctx))
    except SystemExit as exit_info:  # argument errors: argparse exits
        status = exit_info.code
    assert status == 2
    check_one_line(capsys.readouterr().err, pattern)


@pytest.mark.parametrize("argv, pattern", [row[1:] for row in SUBPROCESS_ROWS],
                         ids=[row[0] for row in SUBPROCESS_ROWS])
def test_cli_process_refuses_bad_input_with_one_line_and_no_traceback(ctx, argv, pattern):
    result = subprocess.run([sys.executable, "-m", "zoo.cli", *expand(argv, ctx)], capture_output=True,
                            text=True, timeout=300, cwd=ctx.tmp,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 2, result.stderr
    check_one_line(result.stderr, pattern)


def test_the_table_has_at_least_30_rows():
    assert len(API_ROWS) + len(TRAINING_ROWS) + len(CLI_ROWS) + len(SUBPROCESS_ROWS) >= 30
