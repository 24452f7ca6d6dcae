"""What a run directory (and a tuning project) promises: one process at a
time, nothing written by a run that cannot start, each model on its own
dataset by default, a line when a run resumes, and the command line around
it (--version, usage, did-you-mean, one line per epoch in a log)."""

import json
import signal
import subprocess
import sys
import time

import pytest

from zoo.cli import main
from zoo.runs import DirectoryInUseError
from zoo.models import default_dataset
from zoo.training import train

HOLD_LOCK = """
import sys, time
from zoo.runs import directory_lock
with directory_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(300)
"""


def hold_lock(path):
    """A process that holds ``path``'s lock until killed."""
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def mlp_arguments(run_dir, data_dir, *extra):
    return ["train", "mlp", "--dataset", "mnist1d", "--epochs", "1", "--batch-size", "400",
            "--run-dir", str(run_dir), "--data-dir", data_dir, *extra]


def test_a_run_directory_in_use_is_refused_and_a_killed_holder_does_not_block(
        tmp_path, data_dir, capsys):
    run_dir = tmp_path / "run"
    holder = hold_lock(run_dir)
    try:
        assert main(mlp_arguments(run_dir, data_dir)) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert error == [f"zoo: error: Run directory {run_dir} is in use by another process "
                         f"(pid {holder.pid}); wait for it to end, or stop it, and run the "
                         "command again."]
        assert not run_dir.exists()  # the holder's run is untouched
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert main(mlp_arguments(run_dir, data_dir, "--verbose", "2")) == 0  # the lock died with it
    output = capsys.readouterr().out
    assert "val_accuracy" in output and "━" not in output  # one line per epoch, no progress bar
    assert (run_dir / "metrics.json").exists()


def test_a_tuning_project_in_use_is_refused(tmp_path, data_dir):
    from tuning import tune

    holder = hold_lock(tmp_path / "search")
    try:
        with pytest.raises(DirectoryInUseError, match=f"Tuning project .*search is in use by "
                                                      f"another process \\(pid {holder.pid}\\)"):
            tune("cnn1d", "mnist1d", run_dir=tmp_path / "search", max_trials=1,
                 epochs=1, data_dir=data_dir, verbose=0)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert not (tmp_path / "search").exists()


def test_an_experiment_directory_in_use_is_refused(tmp_path, data_dir):
    from zoo import experiments

    holder = hold_lock(tmp_path / "params")
    try:
        with pytest.raises(DirectoryInUseError, match=f"Experiment directory .*params is in use by "
                                                      f"another process \\(pid {holder.pid}\\)"):
            experiments.run("params", run_dir=tmp_path / "params", data_dir=data_dir, epochs=1,
                            mlp_widths=(8,), cnn_channels=(2,), verbose=0)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert not (tmp_path / "params").exists()


def test_a_model_trains_on_its_own_dataset_and_a_misfit_writes_nothing(tmp_path, data_dir):
    assert default_dataset("cnn1d") == default_dataset("mnist1d_paper_cnn") == "mnist1d"
    assert default_dataset("deep_cnn") == default_dataset("mlp") == "mnist_5k"
    result = train("cnn1d", epochs=1, batch_size=400, verbose=0, data_dir=data_dir,
                   run_dir=tmp_path / "own", filters=(4,))
    assert result.metrics["dataset"] == "mnist1d"

    with pytest.raises(ValueError, match=r"Model 'deep_cnn' cannot be built for dataset 'mnist1d' "
                                         r"\(inputs of shape \(40, 1\)\): .* Its own dataset is "
                                         r"'mnist_5k': pass dataset='mnist_5k'\."):
        train("deep_cnn", dataset="mnist1d", epochs=1, verbose=0, data_dir=data_dir,
              run_dir=tmp_path / "runs" / "misfit")
    assert not (tmp_path / "runs").exists()  # neither the run, its lock file nor their folder
    existing = tmp_path / "existing"
    (existing / "notes").mkdir(parents=True)  # a directory of the user's: only our file goes
    with pytest.raises(ValueError, match="cannot be built"):
        train("deep_cnn", dataset="mnist1d", epochs=1, verbose=0, data_dir=data_dir,
              run_dir=existing)
    assert sorted(path.name for path in existing.iterdir()) == ["notes"]
    assert (tmp_path / ".existing.lock").exists()  # it guards a directory that stays


def test_a_resumed_run_says_after_which_epoch(tmp_path, data_dir, capsys):
    class StopAfterFirstEpoch(Exception):
        pass

    import keras

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise StopAfterFirstEpoch

    arguments = dict(dataset="mnist1d", epochs=2, batch_size=400, data_dir=data_dir,
                     run_dir=tmp_path / "run")
    with pytest.raises(StopAfterFirstEpoch):
        train("mlp", verbose=0, callbacks=[Stop()], **arguments)
    capsys.readouterr()
    train("mlp", verbose=2, **arguments)
    assert f"resuming {tmp_path / 'run'} after epoch 1 of 2" in capsys.readouterr().out


def test_the_command_line_a_person_expects(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("zoo (deepzoo) ")
    assert main([]) == 2
    usage = capsys.readouterr().err
    assert usage.startswith("usage: zoo") and "train" in usage and "tune" in usage
    assert main(["info", "deep_cn"]) == 2
    assert "Did you mean 'deep_cnn'?" in capsys.readouterr().err
    started = time.perf_counter()
    assert main(["train", "mlp", "--dataset", "mnist_5"]) == 2
    assert "did you mean 'mnist_5k'?" in capsys.readouterr().err
    assert time.perf_counter() - started < 60  # refused before any data is read


def test_a_full_disk_stops_the_run_in_one_line_and_the_same_command_resumes(
        tmp_path, data_dir, monkeypatch, capsys):
    """Out of space in the middle of an HDF5 weights file, h5py crashed the
    process (a segmentation fault); the epoch is refused before it is written."""
    import shutil

    from zoo.training import run_state

    real_usage = shutil.disk_usage
    monkeypatch.setattr(run_state.shutil, "disk_usage",
                        lambda path: real_usage(path)._replace(free=3 * 2**20 // 100))
    arguments = mlp_arguments(tmp_path / "run", data_dir)
    assert main(arguments) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "Could not commit epoch 1 to" in error[0]
    assert "No space left on device" in error[0] and "run the same command again" in error[0]
    assert not list((tmp_path / "run" / "backup").glob("*.h5"))  # nothing half written
    monkeypatch.undo()
    assert main(arguments) == 0
    assert (tmp_path / "run" / "metrics.json").exists()


def test_rerunning_a_finished_train_reports_it_and_exits_0_as_tune_does(
        tmp_path, data_dir, capsys):
    arguments = mlp_arguments(tmp_path / "run", data_dir, "--verbose", "0",
                              "--model-arg", "hidden_units=(8,)")  # as zoo tune takes it
    assert main(arguments) == 0
    recorded = (tmp_path / "run" / "metrics.json").read_text()
    assert json.loads(recorded)["model_arguments"] == {"hidden_units": [8]}
    capsys.readouterr()
    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert "already holds a finished run: test accuracy" in out and "--overwrite" in out
    assert (tmp_path / "run" / "metrics.json").read_text() == recorded  # untouched


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_cpu_run_that_builds_its_offline_dataset_prints_nothing_on_stderr(tmp_path, backend):
    """No CUDA "failed call to cuInit", no tfds "Downloading and preparing dataset
    Unknown size", progress bars or absl warnings for an offline build; on JAX
    neither TensorFlow's start-up notices (Keras imports an installed TensorFlow
    on any backend)."""
    import os

    result = subprocess.run(
        [sys.executable, "-m", "zoo.cli", *mlp_arguments(tmp_path / "run",
                                                         str(tmp_path / "fresh_data"))],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "KERAS_BACKEND": backend})
    assert result.returncode == 0 and result.stderr == "", result.stderr[-2000:]
    assert "Downloading" not in result.stdout and "test accuracy" in result.stdout


def test_a_finished_run_asked_for_other_settings_is_refused_naming_them(
        tmp_path, data_dir, capsys):
    run_dir = tmp_path / "run"
    assert main(mlp_arguments(run_dir, data_dir, "--verbose", "0")) == 0
    recorded = (run_dir / "metrics.json").read_text()
    capsys.readouterr()
    assert main(mlp_arguments(run_dir, data_dir, "--verbose", "0", "--learning-rate", "0.01")) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"zoo: error: {run_dir} holds a finished run with other settings (")
    assert "learning_rate 0.003 -> 0.01" in error
    assert error.endswith("or pass --overwrite to train afresh.")
    assert (run_dir / "metrics.json").read_text() == recorded  # untouched


def test_the_run_directory_lifecycle_leaves_a_resumable_run_or_nothing(tmp_path):
    from zoo.runs import RunDirectory, RunFinishedError, RunSettingsChangedError

    settings = {"model": "m", "epochs": 2}
    directory = RunDirectory(tmp_path / "runs" / "a")
    with pytest.raises(KeyError):  # fails before it started: nothing of it stays
        with directory.open(settings):
            assert json.loads(directory.settings_path.read_text()) == settings
            raise KeyError("no data")
    assert not (tmp_path / "runs").exists()

    with pytest.raises(KeyboardInterrupt):  # fails after it started: kept to resume
        with directory.open(settings):
            directory.started()
            directory.backup_dir.mkdir()
            raise KeyboardInterrupt
    assert directory.settings_path.exists() and directory.backup_dir.exists()
    with pytest.raises(RunSettingsChangedError, match=r"unfinished run with other settings "
                                                      r"\(epochs 2 -> 3\)"):
        with directory.open({**settings, "epochs": 3}):
            pass
    with directory.open(settings):  # resumed with its settings, then finished
        directory.finish({"test_accuracy": 0.5})
    assert directory.is_finished() and not directory.backup_dir.exists()
    assert directory.finished_metrics() == {"test_accuracy": 0.5}
    with pytest.raises(RunFinishedError):
        with directory.open(settings):
            pass
    with pytest.raises(RunSettingsChangedError, match=r"finished run with other settings"):
        with directory.open({**settings, "epochs": 3}):
            pass
    with directory.open({**settings, "epochs": 3}, overwrite=True):  # afresh
        assert not directory.is_finished()
        assert json.loads(directory.settings_path.read_text())["epochs"] == 3


def test_an_experiment_directory_records_what_ran_beside_its_results(tmp_path):
    from zoo.experiments import registry
    from zoo.runs import RunDirectory

    def measured(context, size):
        if size < 0:
            raise ValueError("a failing experiment")
        return {"table": [{"size": size}]}

    registry._REGISTRY["tiny-record"] = registry.Experiment(
        "tiny-record", "a claim", measured, "mnist1d", {"size": 1}, {"size": 2})
    try:
        with pytest.raises(ValueError):  # a new directory: nothing left of a failed experiment
            registry.run("tiny-record", run_dir=tmp_path / "new", size=-1, verbose=0)
        assert not (tmp_path / "new").exists() and not (tmp_path / ".new.lock").exists()

        run_dir = tmp_path / "exp"
        registry.run("tiny-record", run_dir=run_dir, quick=True, seed=3, verbose=0)
        record = json.loads((run_dir / "settings.json").read_text())
        assert record["experiment"] == "tiny-record" and record["seed"] == 3
        assert record["settings"] == {"size": 1} and record["quick"] is True
        # run again with other settings: computed again, record and results replaced together
        registry.run("tiny-record", run_dir=run_dir, seed=3, verbose=0)
        assert json.loads((run_dir / "settings.json").read_text())["settings"] == {"size": 2}
        assert json.loads((run_dir / "results.json").read_text())["table"] == [{"size": 2}]
        # a failing rerun keeps the last results and their record
        with pytest.raises(ValueError):
            registry.run("tiny-record", run_dir=run_dir, size=-1, verbose=0)
        assert json.loads((run_dir / "settings.json").read_text())["settings"] == {"size": 2}
        assert RunDirectory(run_dir, finished_file="results.json").is_finished()
    finally:
        del registry._REGISTRY["tiny-record"]


def test_train_in_a_script_whose_output_is_a_file_writes_one_line_per_epoch(
        tmp_path, data_dir, capsys):
    train("mlp", dataset="mnist1d", epochs=2, batch_size=400, run_dir=tmp_path / "run",
          data_dir=data_dir)  # verbose "auto", stdout captured: not a terminal
    output = capsys.readouterr().out
    epoch_lines = [line for line in output.splitlines() if "val_accuracy" in line]
    assert len(epoch_lines) == 2 and "━" not in output and "\x1b" not in output and "\r" not in output
