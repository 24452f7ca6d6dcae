"""The one training engine: Keras' fit and the multi-worker loop follow the
same early-stopping rule and resume from the same run state."""

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import deep_mlp
from zoo.training import compile_model, fit, training_callbacks
from zoo.training.custom_loop import fit_custom_loop
from tests.zoo.test_training import StopAfterEpoch

#: val_loss per epoch: best at epoch 2, then three epochs without improvement.
SCRIPTED_VAL_LOSS = [0.9, 0.8, 0.5, 0.6, 0.55, 0.7, 0.4, 0.3, 0.2, 0.1]
PATIENCE = 3
BATCH = 16


class ScriptedValidationLoss(keras.callbacks.Callback):
    """Replaces each epoch's ``val_loss`` with a scripted value (placed before
    early stopping), so both loops see the same validation history."""

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = SCRIPTED_VAL_LOSS[epoch]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)


def small_model():
    keras.utils.set_random_seed(0)
    return compile_model(deep_mlp(input_shape=(8,), num_classes=2, hidden_units=(8,)))


def train_with(loop, data, callbacks, epochs=len(SCRIPTED_VAL_LOSS)):
    model = small_model()
    if loop == "fit":
        history = fit(model, data, data, epochs=epochs, callbacks=callbacks)
    else:
        history = fit_custom_loop(model, tf.distribute.get_strategy(), data, data, epochs=epochs,
                                  global_batch_size=BATCH, callbacks=callbacks)
    return model, history


@pytest.mark.parametrize("loop", ["fit", "custom loop"])
def test_both_loops_stop_where_keras_early_stopping_stops(loop, data):
    stopping = keras.callbacks.EarlyStopping(patience=PATIENCE, restore_best_weights=True)
    model, history = train_with(loop, data, [ScriptedValidationLoss(), stopping])
    # Keras: wait counts the epochs since the best (epoch 2) and stops once it reaches patience.
    assert history.epoch == list(range(2 + PATIENCE + 1))
    assert stopping.stopped_epoch == 2 + PATIENCE and stopping.best_epoch == 2
    for restored, best in zip(model.get_weights(), stopping.best_weights):
        np.testing.assert_array_equal(restored, best)


def test_the_custom_loop_logs_what_fit_logs(data):
    _, fitted = train_with("fit", data, training_callbacks(), epochs=1)
    _, looped = train_with("custom loop", data, training_callbacks(), epochs=1)
    assert set(looped.history) == set(fitted.history)
    for key in ("loss", "data_loss", "accuracy", "val_loss", "val_accuracy"):
        assert looped.history[key][0] == pytest.approx(fitted.history[key][0], rel=1e-4), key


@pytest.mark.parametrize("loop", ["fit", "custom loop"])
def test_a_crashed_run_resumes_its_history_and_its_patience(loop, data, tmp_path):
    def callbacks(*extra):
        return [ScriptedValidationLoss(),
                *training_callbacks(early_stopping_patience=PATIENCE, run_dir=tmp_path,
                                    tensorboard=False, callbacks=extra)]

    with pytest.raises(KeyboardInterrupt):  # after epoch 4 is committed: wait is 2
        train_with(loop, data, callbacks(StopAfterEpoch(4)))
    epochs_seen = []
    probe = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs_seen.append(epoch))
    train_with(loop, data, callbacks(probe))
    # It went on at epoch 5 and stopped there: patience counted across the crash.
    assert epochs_seen == [5]
    with (tmp_path / "history.csv").open() as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == list(range(1, 7))
