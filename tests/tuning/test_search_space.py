"""The search space: its hyperparameter names, ranges and the λ = 0 option,
and the models ZooHyperModel builds from it, with the step size of their fit."""

import math

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from tuning import SearchSpace, ZooHyperModel
from tuning.search_space import trial_values
from tests.tuning.helpers import TINY_CNN


def declared(space):
    hp = keras_tuner.HyperParameters()
    values = space.declare(hp)
    return hp, {p.name: p for p in hp.space}, values


def test_default_space_tunes_weight_decay_with_a_zero_option_and_dropout():
    hp, params, values = declared(SearchSpace())
    assert list(params) == ["use_weight_decay", "weight_decay", "dropout_rate"]
    hyperparameters = keras_tuner.engine.hyperparameters
    assert isinstance(params["use_weight_decay"], hyperparameters.Boolean)
    assert isinstance(params["weight_decay"], hyperparameters.Float)
    weight_decay = params["weight_decay"]
    assert (weight_decay.min_value, weight_decay.max_value, weight_decay.sampling) == (1e-6, 1e-2, "log")
    assert [c.name for c in weight_decay.conditions] == ["use_weight_decay"]
    assert weight_decay.conditions[0].values == [True]
    dropout = params["dropout_rate"]
    assert (dropout.min_value, dropout.max_value, dropout.sampling) == (0.0, 0.7, "linear")
    assert set(values) == {"weight_decay", "dropout_rate"}  # no learning rate by default


def test_weight_decay_is_zero_when_the_zero_option_is_drawn():
    hp = keras_tuner.HyperParameters()
    SearchSpace().declare(hp)  # registers the space
    hp.values["use_weight_decay"] = False
    assert SearchSpace().declare(hp)["weight_decay"] == 0.0
    hp.values["use_weight_decay"] = True
    hp.values["weight_decay"] = 3e-4
    assert SearchSpace().declare(hp)["weight_decay"] == pytest.approx(3e-4)


def test_space_without_zero_option_and_with_learning_rate():
    space = SearchSpace(weight_decay=(1e-5, 1e-3), include_zero_weight_decay=False,
                        dropout_rate=(0.1, 0.5), learning_rate=(1e-4, 1e-2))
    _, params, values = declared(space)
    assert list(params) == ["weight_decay", "dropout_rate", "learning_rate"]
    assert params["weight_decay"].conditions == []
    assert (params["learning_rate"].min_value, params["learning_rate"].max_value,
            params["learning_rate"].sampling) == (1e-4, 1e-2, "log")
    assert (params["dropout_rate"].min_value, params["dropout_rate"].max_value) == (0.1, 0.5)
    assert set(values) == {"weight_decay", "dropout_rate", "learning_rate"}


def test_space_round_trips_through_a_dict():
    space = SearchSpace(weight_decay=(1e-5, 1e-3), dropout_rate=(0.0, 0.5), learning_rate=(1e-4, 1e-2))
    assert SearchSpace.from_dict(space.to_dict()) == space


def test_trial_values_reads_recorded_values():
    assert trial_values({"use_weight_decay": False, "dropout_rate": 0.25}) == {
        "weight_decay": 0.0, "dropout_rate": 0.25, "learning_rate": None, "width": None}
    assert trial_values({"use_weight_decay": True, "weight_decay": 1e-4, "dropout_rate": 0.1,
                         "learning_rate": 3e-3, "width": 0.5}) == {
        "weight_decay": 1e-4, "dropout_rate": 0.1, "learning_rate": 3e-3, "width": 0.5}


def find_layers(model, class_name):
    return [layer for layer in model.layers if layer.__class__.__name__ == class_name]


def test_hypermodel_builds_the_registry_model_with_the_trial_values():
    hypermodel = ZooHyperModel("cnn1d", SearchSpace(learning_rate=(1e-4, 1e-2)),
                               input_shape=(40, 1), num_classes=10, **TINY_CNN)
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)  # registers the space
    hp.values.update(use_weight_decay=True, weight_decay=2e-4, dropout_rate=0.4, learning_rate=5e-3)
    model = hypermodel.build(hp)
    conv, = find_layers(model, "Conv1D")
    assert conv.filters == 8 and conv.kernel_regularizer.l2 == pytest.approx(2e-4)
    dropout, = find_layers(model, "Dropout")
    assert dropout.rate == pytest.approx(0.4)
    assert float(model.optimizer.learning_rate) == pytest.approx(5e-3)
    assert model.compiled  # ready for Keras Tuner's fit

    hp.values["use_weight_decay"] = False
    model = hypermodel.build(hp)
    assert find_layers(model, "Conv1D")[0].kernel_regularizer is None  # λ = 0: no penalty


def test_hypermodel_decays_the_step_size_along_a_cosine_over_the_schedule_steps():
    hypermodel = ZooHyperModel("cnn1d", input_shape=(40, 1), num_classes=10, learning_rate=3e-3,
                               learning_rate_schedule="cosine", schedule_steps=100, **TINY_CNN)
    optimizer = hypermodel.build(keras_tuner.HyperParameters()).optimizer
    step_sizes = []
    for step in (0, 50, 100):
        optimizer.iterations.assign(step)
        step_sizes.append(float(optimizer.learning_rate))
    assert step_sizes == pytest.approx([3e-3, 1.5e-3, 0.0], abs=1e-9)


def test_each_fit_anneals_its_own_epochs_and_a_continued_round_restarts_the_cosine():
    hypermodel = ZooHyperModel("cnn1d", input_shape=(40, 1), num_classes=10, learning_rate=3e-3,
                               learning_rate_schedule="cosine", **TINY_CNN)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    inputs = np.random.default_rng(0).random((64, 40, 1), dtype=np.float32)
    labels = np.arange(64) % 10
    data = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(16)  # 4 steps per epoch
    step_sizes = []

    class RecordStepSize(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            step_sizes.append(float(self.model.optimizer.learning_rate))

    expected = [3e-3 * 0.5 * (1 + math.cos(math.pi * step / 8)) for step in range(8)]
    hypermodel.fit(hp, model, data, epochs=2, verbose=0, callbacks=[RecordStepSize()])
    assert step_sizes == pytest.approx(expected, rel=1e-5)
    step_sizes.clear()  # Hyperband's next round: epochs 3-4 from the restored state
    hypermodel.fit(hp, model, data, epochs=4, initial_epoch=2, verbose=0, callbacks=[RecordStepSize()])
    assert step_sizes == pytest.approx(expected, rel=1e-5)
    assert int(model.optimizer.iterations) == 16


@pytest.mark.parametrize("policy, compute_dtype", [("mixed_float16", "float16"),
                                                   ("mixed_bfloat16", "bfloat16")])
def test_hypermodel_builds_under_its_precision(policy, compute_dtype):
    hypermodel = ZooHyperModel("cnn1d", input_shape=(40, 1), num_classes=10,
                               precision=policy, **TINY_CNN)
    keras.backend.clear_session()  # as Keras Tuner does before each build: resets the policy
    model = hypermodel.build(keras_tuner.HyperParameters())
    assert find_layers(model, "Conv1D")[0].compute_dtype == compute_dtype
    assert model.output.dtype == "float32"  # the softmax stays float32
