"""Faults a run must survive: NaN inputs, a loss turning NaN, reruns with a seed,
batch norm on degenerate batches."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import datasets
from zoo.training import NonFiniteLossError, train

SMALL = dict(dataset="mnist1d", batch_size=200, verbose=0, filters=(4,), dense_units=(8,),
             early_stopping_patience=10)


def test_two_seeded_runs_give_bit_identical_weights(tmp_path, data_dir):
    runs = [train("cnn1d", epochs=2, seed=7, run_dir=tmp_path / f"run{i}", data_dir=data_dir,
                  **SMALL) for i in range(2)]
    first, second = (run.model.get_weights() for run in runs)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_nan_in_the_inputs_is_refused_before_training(tmp_path, data_dir, monkeypatch):
    original_load = datasets.load

    def load_with_a_nan(name, split, **options):
        data = original_load(name, split, **options)
        if split != "train":
            return data
        return data.map(lambda x, y: (tf.tensor_scatter_nd_update(
            x, [[0, 3, 0]], [float("nan")]), y))

    monkeypatch.setattr(datasets, "load", load_with_a_nan)
    with pytest.raises(ValueError, match="NaN or infinite"):
        train("cnn1d", epochs=1, run_dir=tmp_path / "run", data_dir=data_dir, **SMALL)
    assert not (tmp_path / "run" / "history.csv").exists()


class PoisonWeightsAtEpoch(keras.callbacks.Callback):
    """Sets one kernel entry to NaN when ``epoch`` begins: its first batch's loss is NaN."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            kernel = self.model.get_layer("classifier").kernel
            kernel.assign(tf.tensor_scatter_nd_update(kernel, [[0, 0]], [float("nan")]))


def test_nan_loss_stops_naming_epoch_and_batch_and_keeps_the_last_good_epoch(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    arguments = dict(epochs=3, seed=0, run_dir=run_dir, data_dir=data_dir, **SMALL)
    with pytest.raises(NonFiniteLossError, match="epoch 2, batch 1"):
        train("cnn1d", callbacks=[PoisonWeightsAtEpoch(1)], **arguments)
    assert (run_dir / "backup").exists()
    result = train("cnn1d", **arguments)  # resumes from the good epoch 1
    assert result.metrics["epochs_run"] == 3
    assert all(np.all(np.isfinite(w)) for w in result.model.get_weights())
