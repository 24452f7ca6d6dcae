"""The upstream workarounds of ``tuning._compat``, pinned to the installed
Keras Tuner and TensorFlow: each test fails when the internals a workaround
relies on have moved, instead of the workaround quietly doing nothing."""

import json

import keras_tuner
import pytest
import tensorflow as tf

import tuning._compat as compat


def test_keras_tuner_state_files_are_written_through_the_atomic_writer(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(compat, "atomic_write_text",
                        lambda text, path: written.append(str(path)) or open(path, "w").write(text))
    trial = keras_tuner.engine.trial.Trial(keras_tuner.HyperParameters(), trial_id="7")
    path = tmp_path / "trial.json"
    with compat.atomic_keras_tuner_state():
        trial.save(str(path))  # Keras Tuner's own save: through utils.save_json
    assert written == [str(path)]
    assert json.loads(path.read_text())["trial_id"] == "7"


def test_keras_tuner_writes_in_place_again_outside_the_context(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(compat, "atomic_write_text", lambda text, path: written.append(path))
    with compat.atomic_keras_tuner_state():
        pass
    keras_tuner.engine.trial.Trial(keras_tuner.HyperParameters(), trial_id="1").save(
        str(tmp_path / "trial.json"))
    assert written == [] and (tmp_path / "trial.json").exists()


def test_a_corrupt_keras_tuner_file_is_named(tmp_path):
    path = tmp_path / "oracle.json"
    path.write_text('{"ongoing_tri')
    with compat.atomic_keras_tuner_state():
        with pytest.raises(ValueError, match="oracle.json is corrupt"):
            keras_tuner.engine.trial.Trial.load(str(path))


def _trace_a_custom_gradient():
    @tf.custom_gradient
    def double(x):
        return 2.0 * x, lambda upstream: 2.0 * upstream

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = double(x)
        return tape.gradient(y, x)

    return float(gradient(tf.constant(1.0)))


def test_custom_gradients_traced_after_a_mark_are_forgotten():
    mark = compat.custom_gradient_mark()
    before = compat.custom_gradient_count()
    assert _trace_a_custom_gradient() == 2.0
    assert compat.custom_gradient_count() == before + 1  # TensorFlow keeps it otherwise
    assert compat.forget_custom_gradients(mark) == 1
    assert compat.custom_gradient_count() == before


def test_a_changed_gradient_registry_fails_loudly(monkeypatch):
    from tensorflow.python.framework import ops

    monkeypatch.setattr(ops, "_gradient_registry", object())
    with pytest.raises(compat.UpstreamChanged, match="gradient registry"):
        compat.forget_custom_gradients(0)


def test_a_changed_keras_tuner_fails_loudly(monkeypatch):
    from keras_tuner.src import utils

    monkeypatch.delattr(utils, "save_json")
    with pytest.raises(compat.UpstreamChanged, match="save_json"):
        with compat.atomic_keras_tuner_state():
            pass
