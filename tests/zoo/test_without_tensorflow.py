"""The zoo on JAX in a process where TensorFlow cannot be imported.

Each command runs under ``KERAS_BACKEND=jax`` in a subprocess whose import
system refuses ``tensorflow`` and ``tensorflow_datasets`` (as on a machine
without them): ``zoo train`` (killed and resumed), ``zoo tune`` with two
trials, a short ``zoo reproduce`` experiment (through its Python API), and the one-line errors of
what needs TensorFlow. The array loader those runs read is checked here,
beside TensorFlow, against the tfds builders it replaces.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from zoo import datasets
from zoo.datasets.arrays import ArrayBatches, load_arrays
from zoo.datasets.loader import split_arrays

ROOT = Path(__file__).resolve().parents[2]

#: Runs ``zoo`` with TensorFlow and tensorflow-datasets made unimportable.
WITHOUT_TENSORFLOW = """
import sys

class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoTensorFlow())
from zoo.cli import main
status = main(sys.argv[1:])
assert "tensorflow" not in sys.modules
sys.exit(status)
"""


#: Runs several ``zoo`` commands (argv lists as JSON) in one process without
#: TensorFlow and prints each one's status and stderr on an OUTCOME line.
EACH_WITHOUT_TENSORFLOW = WITHOUT_TENSORFLOW.split("from zoo.cli import main")[0] + """
import contextlib, io, json
from zoo.cli import main

for argv in json.loads(sys.argv[1]):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = main(argv)
    print("OUTCOME", json.dumps([status, stderr.getvalue()]), flush=True)
assert "tensorflow" not in sys.modules
"""


def run_each_without_tensorflow(commands, cwd, timeout=600):
    """``(status, stderr)`` of each command, run one after the other in one process."""
    result = subprocess.run([sys.executable, "-c", EACH_WITHOUT_TENSORFLOW, json.dumps(commands)],
                            cwd=cwd, env=jax_environment(), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return [json.loads(line.split(" ", 1)[1]) for line in result.stdout.splitlines()
            if line.startswith("OUTCOME ")]


def jax_environment(backend="jax", **variables):
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONUNBUFFERED": "1", "JAX_PLATFORMS": "cpu", **variables}


def zoo_without_tensorflow(*arguments, cwd, timeout=600, **variables):
    return subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW, *arguments], cwd=cwd,
                          env=jax_environment(**variables), capture_output=True, text=True,
                          timeout=timeout)


def committed_epochs(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "backup" / "state.json").read_text())["epoch"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


@pytest.mark.parametrize("name", ["mnist_5k", "mnist1d"])
def test_the_array_loader_gives_the_splits_order_and_values_of_the_tfds_builders(name, data_dir):
    import tensorflow_datasets as tfds

    builder = datasets.prepare(name, data_dir)
    arrays = split_arrays(name)
    for split in ("train", "test"):
        x, y = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True,
                                                shuffle_files=False))
        np.testing.assert_array_equal(arrays[split][0], x)
        np.testing.assert_array_equal(arrays[split][1], y)
    n_val = datasets.info(name).num_examples("validation")
    for split in ("train", "validation", "test"):
        expected = datasets.load(name, split, batch_size=1000, shuffle=False, data_dir=data_dir)
        batches = load_arrays(name, split, n_val, arrays, batch_size=1000, shuffle=False,
                              seed=None)
        assert isinstance(batches, ArrayBatches) and len(batches) == len(list(expected))
        for (x, y), (x_tf, y_tf) in zip(batches, expected):
            np.testing.assert_array_equal(x, x_tf.numpy())
            np.testing.assert_array_equal(y, y_tf.numpy())
            assert x.dtype == np.float32 and y.dtype == np.int32


def test_array_batches_reshuffle_every_epoch_from_their_seed():
    x, y = np.arange(10, dtype=np.float32)[:, None], np.arange(10)

    def epochs(seed, count=3):
        batches = ArrayBatches(x, y, 4, shuffle=True, seed=seed, drop_remainder=True)
        orders = []
        for _ in range(count):
            orders.append(np.concatenate([labels for _, labels in batches]))
            batches.on_epoch_end()
        return orders

    first, again = epochs(seed=5), epochs(seed=5)
    assert len(first[0]) == 8  # two whole batches, the remainder dropped
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], first[1])
    endless = ArrayBatches(x, y, 4, repeat=True)  # passes of 3 batches: 4, 4 and 2 examples
    assert endless.num_batches is None
    assert [list(endless[index][1]) for index in (2, 3)] == [[8, 9], [0, 1, 2, 3]]


def test_train_killed_and_resumed_on_jax_without_tensorflow(tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-c", WITHOUT_TENSORFLOW, "train", "mlp", "--dataset", "mnist1d",
               "--epochs", "6", "--seed", "3", "--run-dir", str(run_dir)]
    log = tmp_path / "first.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=tmp_path, env=jax_environment(), stdout=output,
                                   stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while committed_epochs(run_dir) < 2 and process.poll() is None:
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = committed_epochs(run_dir)
    assert 2 <= done < 6, log.read_text()[-2000:]
    assert json.loads((run_dir / "settings.json").read_text())["backend"] == "jax"

    on_tensorflow = subprocess.run([sys.executable, "-m", "zoo.cli", *command[3:]], cwd=tmp_path,
                                   env=jax_environment("tensorflow"), capture_output=True,
                                   text=True, timeout=300)
    assert on_tensorflow.returncode == 2
    assert "backend 'jax' -> 'tensorflow'" in on_tensorflow.stderr
    assert len(on_tensorflow.stderr.strip().splitlines()) == 1

    resumed = zoo_without_tensorflow(*command[3:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"Epoch {done + 1}/6" in resumed.stdout and "Epoch 1/6" not in resumed.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["backend"] == "jax" and metrics["epochs_run"] == 6
    assert metrics["test_accuracy"] > 0.3  # ten classes: well above chance after 6 epochs
    assert (run_dir / "model.keras").exists() and not (run_dir / "backup").exists()
    assert list((run_dir / "logs" / "train").glob("events.out.tfevents.*"))
    assert list((run_dir / "logs" / "validation").glob("events.out.tfevents.*"))


def test_seeded_runs_on_jax_repeat_exactly_and_mirrored_splits_the_batch(tmp_path):
    outcomes = run_each_without_tensorflow(
        [["train", "mlp", "--dataset", "mnist1d", "--epochs", "2", "--seed", "5", "--run-dir",
          str(tmp_path / name)] for name in ("first", "again")], cwd=tmp_path)
    assert [status for status, _ in outcomes] == [0, 0], outcomes
    histories = [(tmp_path / name / "history.csv").read_text() for name in ("first", "again")]
    assert histories[0] == histories[1]

    two_devices = "--xla_force_host_platform_device_count=2"
    result = zoo_without_tensorflow("train", "mlp", "--dataset", "mnist1d", "--epochs", "1",
                                    "--strategy", "mirrored", "--run-dir",
                                    str(tmp_path / "mirrored"), cwd=tmp_path,
                                    XLA_FLAGS=two_devices)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "mirrored" / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["batch_size"] == 100


#: ``zoo tune`` (two trials), then a short experiment of ``zoo reproduce``
#: through its Python API (the command line has no overrides of its settings),
#: in one process without TensorFlow.
TUNE_AND_REPRODUCE = WITHOUT_TENSORFLOW.split("from zoo.cli import main")[0] + """
from zoo.cli import main
from zoo import experiments

search, params = sys.argv[1:]
status = main(["tune", "cnn1d", "--tuner", "random", "--max-trials", "2", "--epochs", "2",
               "--run-dir", search])
assert status == 0, status
experiments.run("params", run_dir=params, mlp_widths=(64,), cnn_channels=(4,), epochs=3, verbose=0)
assert "tensorflow" not in sys.modules
"""


def test_tune_and_reproduce_run_on_jax_without_tensorflow(tmp_path):
    project, params = tmp_path / "search", tmp_path / "params"
    result = subprocess.run([sys.executable, "-c", TUNE_AND_REPRODUCE, str(project), str(params)],
                            cwd=tmp_path, env=jax_environment(), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    results = json.loads((project / "results.json").read_text())
    assert results["backend"] == "jax"
    assert len(results["trials"]) == 2
    assert 0.1 < results["test_accuracy"] <= 1
    assert (project / "best_model.keras").exists() and (project / "search.png").exists()
    reproduced = json.loads((params / "results.json").read_text())
    assert [row["family"] for row in reproduced["table"]] == ["MLP", "CNN"]
    assert list(params.glob("*.png"))


def test_what_needs_tensorflow_is_refused_in_one_line(tmp_path):
    refused = {"needs TensorFlow": ["train", "mlp", "--dataset", "cifar10"],
               "KERAS_BACKEND=tensorflow": ["train", "mlp", "--strategy", "multi-worker"],
               "tensorflow backend": ["train", "mlp", "--gradient-stats"]}
    outcomes = run_each_without_tensorflow(
        [[*argv, "--run-dir", str(tmp_path / "run")] for argv in refused.values()], tmp_path,
        timeout=300)
    assert len(outcomes) == len(refused)
    for message, (status, stderr) in zip(refused, outcomes):
        assert status == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_shipped_weights_give_their_recorded_accuracy_on_jax_too(tmp_path):
    """The manifest's accuracies are float32 at batch 256: JAX reproduces them
    exactly (only bfloat16 kernels differ between the backends)."""
    from zoo.models import weights

    script = WITHOUT_TENSORFLOW.split("from zoo.cli import main")[0] + """
import json
from zoo.models.shipping import evaluate_shipped
print("ACCURACY", json.dumps({model: evaluate_shipped(model, "mnist_5k")
                              for model in ("lenet5", "mlp")}))
assert "tensorflow" not in sys.modules
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=jax_environment(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("ACCURACY "))
    measured = json.loads(line.split(" ", 1)[1])
    assert measured == {model: weights.shipped(model)["mnist_5k"]["test_accuracy"]
                        for model in measured}


def test_without_tensorflow_zoo_picks_jax_by_itself_and_says_so_in_one_line(tmp_path):
    environment = {key: value for key, value in jax_environment().items()
                   if key != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW, "info", "cnn1d"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**environment, "KERAS_HOME": str(tmp_path / "keras-home")})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "zoo: TensorFlow is not installed here; running on Keras' JAX backend "
        "(KERAS_BACKEND chooses another)."]
    assert "multiply-accumulates per example" in result.stdout


def test_the_tensorflow_free_install_lists_the_dependencies_but_tensorflow():
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [line.strip() for line in (ROOT / "requirements-jax.txt").read_text().splitlines()]
    required = sorted(line for line in lines if line and not line.startswith("#"))
    expected = [requirement for requirement in declared["dependencies"]
                if not requirement.startswith(("tensorflow>", "tensorflow-datasets"))]
    assert required == sorted(expected + declared["optional-dependencies"]["jax"])
