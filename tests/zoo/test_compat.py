"""The Keras internals ``zoo._compat`` relies on, pinned to the installed
Keras: a resumed fit must start at the epoch the run state names."""

import keras
import numpy as np
import pytest

from zoo import _compat


def tiny_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


class StartAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_train_begin(self, logs=None):
        _compat.start_fit_at_epoch(self.model, self.epoch)


def test_a_callback_makes_fit_start_at_a_later_epoch():
    model = tiny_model()
    history = model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=5, verbose=0,
                        callbacks=[StartAt(3)])
    assert history.epoch == [3, 4]
    assert _compat.fit_start_epoch(model) == 3


def test_a_changed_trainer_fails_loudly():
    model = tiny_model()
    del model._initial_epoch
    with pytest.raises(_compat.UpstreamChanged, match="_initial_epoch"):
        _compat.start_fit_at_epoch(model, 1)


def test_a_builder_of_an_unprepared_dataset_leaves_no_temporary_folder(tmp_path, monkeypatch):
    import tempfile

    from zoo.datasets.loader import get_builder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    (tmp_path / "temp").mkdir()
    for name in ("cifar10", "mnist"):
        assert not get_builder(name, data_dir=tmp_path / "data").is_prepared()
    assert list((tmp_path / "temp").iterdir()) == []
