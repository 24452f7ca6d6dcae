"""The layers inside real training: model.fit eagerly-traced and under XLA,
the mixed_float16 policy (model and every layer of the harness), and
MirroredStrategy over the two logical CPU devices that tests/conftest.py makes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.custom_layers.harness import (
    all_layers_model,
    distinct_values,
    layer_cases_and_modes,
    random_weights,
    trainable_gradients,
)


def _compiled_model(jit_compile):
    keras.utils.set_random_seed(0)
    model = all_layers_model()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def _assert_trained(model, before, history):
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0]
    for weight, old in zip(model.weights, before):
        if "seed_generator" not in weight.path:
            assert not np.array_equal(weight.numpy(), old), f"{weight.path} did not change"


@pytest.mark.parametrize(
    "jit_compile, policy",
    [(False, "float32"), (True, "float32"), (False, "mixed_float16")],
    ids=["graph", "xla", "mixed_float16"],
)
def test_fit_trains_a_model_of_every_layer(classification_data, jit_compile, policy):
    keras.mixed_precision.set_global_policy(policy)
    x, y = classification_data
    model = _compiled_model(jit_compile)
    before = [w.numpy().copy() for w in model.weights]
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    _assert_trained(model, before, history)
    assert all(w.dtype == "float32" for w in model.weights)
    assert model(x[:4]).dtype == ("float16" if policy == "mixed_float16" else "float32")


@layer_cases_and_modes()
def test_mixed_float16_matches_the_float32_builtin(case, training):
    keras.mixed_precision.set_global_policy("mixed_float16")
    custom = case.custom()
    # The stochastic layers draw their mask in the compute dtype, so compare
    # them with the built-in under the same policy; the rest with float32.
    reference_dtype = "mixed_float16" if case.stochastic and training else "float32"
    builtin = case.builtin(dtype=reference_dtype)
    custom.build(case.input_shape)
    builtin.build(case.input_shape)
    builtin.set_weights(random_weights(builtin))
    custom.set_weights(builtin.get_weights())
    assert all(w.dtype == "float32" for w in custom.weights)

    x = distinct_values(case.input_shape, seed=5)
    y, dx, dw = trainable_gradients(custom, x, training)
    y_ref, dx_ref, dw_ref = trainable_gradients(builtin, x, training)
    assert y.dtype == tf.float16
    np.testing.assert_allclose(tf.cast(y, tf.float32), tf.cast(y_ref, tf.float32),
                               rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(dx, dx_ref, rtol=2e-2, atol=2e-2)
    for actual, expected, variable in zip(dw, dw_ref, custom.trainable_weights):
        assert actual.dtype == variable.dtype == "float32"
        np.testing.assert_allclose(actual, expected, rtol=2e-2, atol=2e-2)


def test_fit_under_mirrored_strategy_keeps_two_replicas_in_sync(classification_data):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    x, y = classification_data
    with strategy.scope():
        model = _compiled_model(jit_compile=False)
    before = [w.numpy().copy() for w in model.weights]
    # Full batches only: a partial final batch breaks batch norm under a
    # strategy (tensorflow#52986).
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8, drop_remainder=True)
    history = model.fit(data, epochs=2, shuffle=False, verbose=0)
    _assert_trained(model, before, history)
    for weight in model.weights:
        replicas = weight.value.values  # a MirroredVariable: one copy per device
        assert len(replicas) == 2
        assert {r.device for r in replicas} == {
            "/job:localhost/replica:0/task:0/device:CPU:0",
            "/job:localhost/replica:0/task:0/device:CPU:1",
        }
        if weight.trainable:  # all-reduced gradients: identical updates
            np.testing.assert_array_equal(replicas[0].numpy(), replicas[1].numpy())
        else:
            # Moving statistics (and seeds) are per replica, as with
            # keras.layers.BatchNormalization: each replica saw its own half.
            assert all(np.isfinite(r.numpy()).all() for r in replicas)
