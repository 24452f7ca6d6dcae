"""Keras Tuner's chief/worker mode on 127.0.0.1: a chief and two workers run
the same `zoo tune` command; the workers share the trials, all finish, and
the chief writes the results from the best trial's checkpoint."""

import json
import socket
import subprocess
import time

from tests.tuning.helpers import TINY_CNN_ARGS, subprocess_environment, tune_command

READY = "asking the oracle"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command, tuner_id, port, log):
    environment = subprocess_environment(KERASTUNER_TUNER_ID=tuner_id,
                                         KERASTUNER_ORACLE_IP="127.0.0.1",
                                         KERASTUNER_ORACLE_PORT=str(port))
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=environment)


def test_chief_and_two_workers_share_and_finish_the_trials(data_dir, tmp_path):
    project = tmp_path / "search"
    command = tune_command(
        "cnn1d", *TINY_CNN_ARGS, "--dataset", "mnist1d", "--tuner", "random", "--max-trials", "4",
        "--epochs", "1", "--run-dir", str(tmp_path / "search"),
        "--data-dir", data_dir, "--seed", "11", "--verbose", "1",
        "--no-retrain")  # the chief evaluates the best trial's checkpoint, written by a worker
    port = free_port()
    logs = {name: tmp_path / f"{name}.log" for name in ("tuner0", "tuner1", "chief")}
    processes = {}
    try:
        # Workers first: once both wait for the oracle, the chief starts, so
        # that neither worker can take every trial while the other starts up.
        for name in ("tuner0", "tuner1"):
            processes[name] = start(command, name, port, logs[name])
        deadline = time.monotonic() + 240
        while not all(READY in logs[name].read_text() for name in ("tuner0", "tuner1")):
            for name, process in processes.items():
                assert process.poll() is None, f"{name} exited early:\n{logs[name].read_text()}"
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        processes["chief"] = start(command, "chief", port, logs["chief"])
        for name, process in processes.items():
            process.wait(timeout=300)
    finally:
        for process in processes.values():
            process.kill()
            process.wait()
    for name, process in processes.items():
        assert process.returncode == 0, f"{name} failed:\n{logs[name].read_text()[-3000:]}"

    results = json.loads((project / "results.json").read_text())
    trials = results["trials"]
    assert [row["trial_id"] for row in trials] == ["0", "1", "2", "3"]
    assert {row["status"] for row in trials} == {"COMPLETED"}
    ran_by = {name: {row["trial_id"] for row in trials if row["tuner_id"] == name}
              for name in ("tuner0", "tuner1")}
    assert ran_by["tuner0"] and ran_by["tuner1"]  # both workers ran trials ...
    assert ran_by["tuner0"] | ran_by["tuner1"] == {"0", "1", "2", "3"}  # ... and only they
    for name in ("tuner0", "tuner1"):  # each worker reports the trials it ran
        reported = logs[name].read_text().split("ran trials: ")[1].split(".")[0]
        assert set(reported.split(", ")) == ran_by[name]
    chief = logs["chief"].read_text()
    assert "test accuracy" in chief and "<- best" in chief  # the chief holds the results
