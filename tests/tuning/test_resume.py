"""A search killed with SIGKILL in the middle of a trial continues when the
same command is run again: finished trials are neither lost nor repeated."""

import json
import os
import signal
import subprocess
import time

from tests.tuning.helpers import TINY_CNN_ARGS, read_json, subprocess_environment, tune_command


def wait_for_second_trial(process, project, log, timeout=240):
    """Polls Keras Tuner's oracle.json until trial 0 has ended and trial 1 is
    running (the oracle state of both is then on disk)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the search ended before it was killed:\n{log.read_text()}"
        state = read_json(project / "oracle.json")
        if state and "0" in state["end_order"] and "1" in state["ongoing_trials"].values():
            return
        time.sleep(0.05)
    raise AssertionError(f"trial 1 did not start within {timeout} s:\n{log.read_text()}")


def test_search_killed_mid_trial_resumes_without_losing_or_repeating_trials(data_dir, tmp_path):
    project = tmp_path / "search"
    command = tune_command(
        "cnn1d", *TINY_CNN_ARGS, "--dataset", "mnist1d", "--tuner", "bayesian", "--max-trials", "3",
        "--max-epochs", "2", "--directory", str(tmp_path), "--project-name", "search",
        "--data-dir", data_dir, "--seed", "5", "--verbose", "1")
    log = tmp_path / "first.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                   env=subprocess_environment())
        try:
            wait_for_second_trial(process, project, log)
            finished = {name: (project / "trial_0" / name).read_text()
                        for name in ("trial.json", "zoo_trial.json")}
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    interrupted = json.loads((project / "trial_1" / "trial.json").read_text())
    assert interrupted["status"] == "RUNNING" and not (project / "results.json").exists()

    second = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env=subprocess_environment())
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Reloading Tuner" in second.stdout

    results = json.loads((project / "results.json").read_text())
    assert [row["trial_id"] for row in results["trials"]] == ["0", "1", "2"]
    assert {row["status"] for row in results["trials"]} == {"COMPLETED"}
    for name, text in finished.items():  # trial 0 was not run again
        assert (project / "trial_0" / name).read_text() == text
    oracle = json.loads((project / "oracle.json").read_text())
    assert sorted(oracle["end_order"]) == ["0", "1", "2"] and oracle["ongoing_trials"] == {}
    assert results["best_trial_id"] in ("0", "1", "2") and 0 <= results["test_accuracy"] <= 1
