"""A search killed with SIGKILL again and again — in the middle of trials and
while the best model is retrained — continues each time the same command is
run again: finished trials are neither lost nor repeated, and the final
retraining resumes after its last completed epoch."""

import json
import os
import random
import signal
import subprocess
import time

from tests.tuning.helpers import TINY_CNN_ARGS, read_json, subprocess_environment, tune_command
from tests.zoo.test_interruption import first_epoch_run, read_history

TRIALS = 3
EPOCHS = 3


def final_epochs_committed(project):
    """Epochs the final retraining (a zoo.train run in PROJECT/final) has committed."""
    return (read_json(project / "final" / "backup" / "state.json") or {}).get("epoch", 0)


def finished_trials(project):
    state = read_json(project / "oracle.json") or {}
    return list(state.get("end_order", []))


def wait_for(process, condition, log, what, timeout=240):
    """Polls the project's files until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the search ended before {what}:\n{log.read_text()[-3000:]}"
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def trial_records(project, trial_ids):
    """Keras Tuner's trial.json and the zoo's record (with its start time) of each trial."""
    return {trial_id: tuple((project / f"trial_{trial_id}" / name).read_text()
                            for name in ("trial.json", "zoo_trial.json")) for trial_id in trial_ids}


def test_search_killed_repeatedly_resumes_without_losing_or_repeating_trials(data_dir, tmp_path):
    project = tmp_path / "search"
    command = tune_command(
        "cnn1d", *TINY_CNN_ARGS, "--dataset", "mnist1d", "--tuner", "bayesian",
        "--max-trials", str(TRIALS), "--epochs", str(EPOCHS), "--run-dir", str(tmp_path / "search"),
        "--data-dir", data_dir, "--seed", "5", "--verbose", "1")
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    # Kill while trial k runs (k = 1, 2: after k trials have finished, a
    # random moment of up to a second later), then once the final retraining
    # has committed its first epoch.
    plan = [*range(1, TRIALS), TRIALS]
    kept = {}
    for attempt, finished in enumerate(plan):
        log = tmp_path / f"attempt{attempt}.log"
        with log.open("w") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                       env=subprocess_environment())
            try:
                wait_for(process, lambda: len(finished_trials(project)) >= finished, log,
                         f"{finished} trials had finished")
                if finished < TRIALS:
                    # Not a synchronisation: a random kill moment inside the next trial.
                    time.sleep(rng.uniform(0, 1.0))
                else:
                    wait_for(process, lambda: final_epochs_committed(project) >= 1, log,
                             "the final retraining had committed an epoch")
                kept = trial_records(project, finished_trials(project))
                os.kill(process.pid, signal.SIGKILL)
            finally:
                process.kill()
                process.wait()
        context = f"(random seed {seed}, attempt {attempt})\n{log.read_text()[-3000:]}"
        assert process.returncode == -signal.SIGKILL, context
        assert not (project / "results.json").exists(), context
        if attempt > 0:
            assert "Reloading Tuner" in log.read_text(), context
        done = finished_trials(project)
        assert len(done) == len(set(done)), context  # no trial ended twice
        # Every trial that had finished before the kill is kept as it was.
        assert trial_records(project, kept) == kept, context

    committed = final_epochs_committed(project)
    final = subprocess.run(command, capture_output=True, text=True, timeout=300,
                           env=subprocess_environment())
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert "Reloading Tuner" in final.stdout
    # The final retraining went on after its last committed epoch, repeating none.
    assert 1 <= committed < EPOCHS
    assert first_epoch_run(final.stdout) == committed + 1, final.stdout[-3000:]
    history = read_history(project / "final")
    assert [int(row["epoch"]) for row in history] == list(range(1, len(history) + 1))
    assert len(history) > committed and not (project / "final" / "backup").exists()

    results = json.loads((project / "results.json").read_text())
    assert [row["trial_id"] for row in results["trials"]] == [str(i) for i in range(TRIALS)]
    assert {row["status"] for row in results["trials"]} == {"COMPLETED"}
    assert trial_records(project, kept) == kept  # the finished trials were not run again
    oracle = json.loads((project / "oracle.json").read_text())
    assert sorted(oracle["end_order"]) == [str(i) for i in range(TRIALS)]
    assert oracle["ongoing_trials"] == {}
    assert results["best_trial_id"] in oracle["end_order"] and 0 <= results["test_accuracy"] <= 1
