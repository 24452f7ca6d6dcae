"""zoo.train: a short fit learns, the run directory holds what it promises,
an interrupted fit resumes, a finished run is kept, MirroredStrategy works."""

import csv
import json

import keras
import numpy as np
import pytest

from zoo.training import RunFinishedError, RunSettingsChangedError, train


@pytest.fixture(scope="module")
def short_run(data_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "small_cnn"
    return train("small_cnn", dataset="mnist_5k", epochs=3, batch_size=64, seed=1,
                 run_dir=run_dir, data_dir=data_dir, verbose=0, weight_decay=1e-4,
                 gradient_stats_every=25)


def read_history(run_dir):
    with (run_dir / "history.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_short_fit_learns_well_above_chance(short_run):
    history = short_run.history
    assert history[-1]["loss"] < history[0]["loss"]
    assert short_run.metrics["test_accuracy"] > 0.8  # chance is 0.1


def test_run_dir_holds_model_metrics_history_curves_and_logs(short_run):
    run_dir = short_run.run_dir
    for name in ["model.keras", "metrics.json", "history.csv", "training_curves.png"]:
        assert (run_dir / name).stat().st_size > 0
    assert (run_dir / "logs").is_dir()
    assert not (run_dir / "backup").exists()  # removed once the run finished
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3 and metrics["params"] == short_run.model.count_params()
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["wall_time_s"] > 0
    # Training speed: mnist_5k's 3,600 training examples over the median epoch's time,
    # close to the mean epoch (the first one also traces the step, so it is slower).
    mean_epoch = metrics["wall_time_s"] / metrics["epochs_run"]
    assert 0.5 * 3600 <= metrics["train_examples_per_second"] * mean_epoch <= 5 * 3600


def test_run_dir_holds_the_gradient_statistics(short_run):
    run_dir = short_run.run_dir
    with (run_dir / "gradients.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    steps_per_epoch = -(-3600 // 64)
    assert sorted({int(row["step"]) for row in rows}) == list(range(0, 3 * steps_per_epoch, 25))
    conv = [row for row in rows if row["layer"] == "conv_1_1"]
    assert all(float(row["weight_gradient_norm"]) > 0 and float(row["update_ratio"]) > 0
               for row in conv)
    assert {row["layer"] for row in rows} >= {"conv_1_1", "batch_norm_1_1", "relu_1_1", "classifier"}
    assert (run_dir / "gradients.png").stat().st_size > 0
    assert list((run_dir / "logs" / "gradients").glob("events.out.tfevents.*"))


def test_logs_report_data_loss_and_weight_penalty_separately(short_run):
    for row in read_history(short_run.run_dir):
        data_loss, penalty, total = (float(row[key]) for key in
                                     ("data_loss", "weight_penalty", "loss"))
        assert penalty > 0
        # E = E_D + λE_W (E_D is averaged over the epoch's batches, the
        # penalty read at the epoch's end, so they agree to the drift of w).
        assert total == pytest.approx(data_loss + penalty, rel=0.05, abs=0.01)


def test_saved_model_reproduces_the_trained_model(short_run, data_dir):
    from zoo import datasets
    from zoo.io import load_model

    loaded = load_model(short_run.run_dir / "model.keras")
    x, _ = next(iter(datasets.load("mnist_5k", "test", batch_size=16, data_dir=data_dir)))
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               short_run.model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_finished_run_is_kept_unless_overwrite(short_run, data_dir):
    same = dict(dataset="mnist_5k", epochs=3, batch_size=64, seed=1, run_dir=short_run.run_dir,
                data_dir=data_dir, verbose=0, weight_decay=1e-4, gradient_stats_every=25)
    with pytest.raises(RunFinishedError, match="overwrite"):
        train("small_cnn", **same)
    with pytest.raises(RunSettingsChangedError, match=r"holds a finished run with other settings "
                                                      r"\(epochs 3 -> 1\); .*overwrite=True"):
        train("small_cnn", **{**same, "epochs": 1})


class StopAfterEpoch(keras.callbacks.Callback):
    """Simulates a crash once ``epoch`` has finished (and been backed up)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_interrupted_fit_resumes_from_the_last_completed_epoch(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    arguments = dict(dataset="mnist1d", epochs=3, batch_size=128, seed=0, run_dir=run_dir,
                     data_dir=data_dir, verbose=0, filters=(8,), dense_units=(16,),
                     early_stopping_patience=10)
    with pytest.raises(KeyboardInterrupt):
        train("cnn1d", callbacks=[StopAfterEpoch(1)], **arguments)
    assert (run_dir / "backup").exists() and not (run_dir / "metrics.json").exists()
    assert [row["epoch"] for row in read_history(run_dir)] == ["1", "2"]

    result = train("cnn1d", **arguments)
    assert [row["epoch"] for row in read_history(run_dir)] == ["1", "2", "3"]
    assert result.metrics["epochs_run"] == 3


def test_mirrored_strategy_trains_on_two_logical_cpus(tmp_path, data_dir):
    result = train("cnn1d", dataset="mnist1d", epochs=1, batch_size=32, strategy="mirrored",
                   run_dir=tmp_path / "mirrored", data_dir=data_dir, verbose=0,
                   filters=(8,), dense_units=(16,))
    assert result.metrics["replicas"] == 2
    assert np.isfinite(result.metrics["test_loss"])
