"""Two `zoo train --strategy multi-worker` processes on 127.0.0.1, joined by
TF_CONFIG, train one model together and finish with identical weights."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from zoo import datasets


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_finish_with_identical_weights(tmp_path):
    data_dir = str(tmp_path / "tensorflow_datasets")
    datasets.prepare("mnist1d", data_dir=data_dir)  # build once, not in both workers at once
    run_dir = tmp_path / "run"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                       "TF_CONFIG": json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "zoo.cli", "train", "mnist1d_paper_cnn", "--dataset", "mnist1d",
             "--epochs", "2", "--batch-size", "50", "--strategy", "multi-worker", "--seed", "0",
             "--run-dir", str(run_dir), "--data-dir", data_dir],
            env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [worker.communicate(timeout=240) for worker in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-2000:]
        assert "test accuracy" in out

    from zoo.io import load_model

    chief = load_model(run_dir / "model.keras").get_weights()
    other = load_model(run_dir / "workers" / "1" / "model.keras").get_weights()
    assert len(chief) == len(other) > 0
    for a, b in zip(chief, other):
        np.testing.assert_array_equal(a, b)
    for directory in (run_dir, run_dir / "workers" / "1"):
        metrics = json.loads((directory / "metrics.json").read_text())
        assert metrics["replicas"] == 2 and metrics["epochs_run"] == 2
