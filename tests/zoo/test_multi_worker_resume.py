"""A `zoo train --strategy multi-worker` run (one worker from TF_CONFIG: the
multi-worker loop, not Keras' fit) killed at random epochs resumes with one
history row per epoch and its early-stopping patience, and stops where Keras'
EarlyStopping would have stopped on the whole history."""

import json
import os
import random
import signal
import subprocess
import sys

from tests.zoo.test_interruption import (
    committed_epochs,
    environment,
    first_epoch_run,
    read_history,
    wait_until,
)
from tests.zoo.test_multi_worker import free_ports

PATIENCE = 3
EPOCHS = 40
KILLS = 2


def keras_stopping_epoch(val_losses, patience):
    """The epoch at which keras.callbacks.EarlyStopping stops on this history, or None."""
    best, wait = None, 0
    for epoch, value in enumerate(val_losses):
        wait += 1
        if best is None or value < best:
            best, wait = value, 0
            continue
        if wait >= patience and epoch > 0:
            return epoch
    return None


def test_keras_stopping_epoch_follows_keras_rule():
    assert keras_stopping_epoch([3, 2, 2.5, 2.4, 2.6], patience=3) == 4
    assert keras_stopping_epoch([3, 2, 1], patience=1) is None


def test_a_killed_multi_worker_run_resumes_history_and_patience(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    cluster = {"worker": [f"127.0.0.1:{free_ports(1)[0]}"]}
    env = {**environment(), "TF_CONFIG": json.dumps({"cluster": cluster,
                                                     "task": {"type": "worker", "index": 0}})}
    # A large step size: validation loss soon stops improving and early stopping ends the run.
    command = [sys.executable, "-m", "zoo.cli", "train", "mlp", "--dataset", "mnist1d",
               "--epochs", str(EPOCHS), "--batch-size", "200", "--learning-rate", "0.05",
               "--early-stopping-patience", str(PATIENCE), "--seed", "1", "--strategy", "multi-worker",
               "--run-dir", str(run_dir), "--data-dir", data_dir]
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    done = []
    for attempt in range(KILLS):
        log = tmp_path / f"attempt{attempt}.log"
        done_before = committed_epochs(run_dir)
        target = done_before + rng.randint(1, 2)
        with log.open("w") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
            try:
                wait_until(process, lambda: committed_epochs(run_dir) >= target, log,
                           f"{target} epochs were done")
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=60)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        context = f"(random seed {seed}, attempt {attempt})\n{log.read_text()[-3000:]}"
        assert process.returncode == -signal.SIGKILL, context
        assert first_epoch_run(log.read_text()) == done_before + 1, context
        history = read_history(run_dir)
        assert [int(row["epoch"]) for row in history] == list(range(1, len(history) + 1)), context
        done.append(committed_epochs(run_dir))

    final = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    context = f"(random seed {seed}, epochs done at the kills {done})\n{final.stdout[-3000:]}"
    assert final.returncode == 0, context + final.stderr[-3000:]
    assert first_epoch_run(final.stdout) == done[-1] + 1, context
    history = read_history(run_dir)
    assert [int(row["epoch"]) for row in history] == list(range(1, len(history) + 1)), context
    stop = keras_stopping_epoch([float(row["val_loss"]) for row in history], PATIENCE)
    # Patience carried across the kills: the run ended where one uninterrupted
    # EarlyStopping would have ended it on this history, not later.
    assert len(history) == (EPOCHS if stop is None else stop + 1), context
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == len(history) and not (run_dir / "backup").exists()
