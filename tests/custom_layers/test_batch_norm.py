"""BatchNormalization beyond the harness: moving statistics track Keras' over
several training steps, a frozen layer runs in inference mode, and float16
inputs are normalised in float32."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import custom_layers
from custom_layers import ops
from tests.custom_layers.harness import LayerCase, build_pair

STEPS = 5


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((8, 4), dict()),
        ((4, 3, 5), dict(center=False)),
        ((4, 3, 5, 2), dict(axis=1, scale=False)),
        ((3, 4, 4, 3), dict(center=False, scale=False, momentum=0.5)),
    ],
    ids=["2d", "3d-no-center", "4d-axis1-no-scale", "4d-plain-momentum0.5"],
)
def test_moving_statistics_after_training_steps_equal_keras(shape, kwargs):
    kwargs = {"momentum": 0.8, **kwargs}
    custom, builtin = build_pair(LayerCase("bn", "BatchNormalization", kwargs, shape))
    initial = [w.numpy().copy() for w in builtin.non_trainable_weights]
    rng = np.random.default_rng(0)
    for step in range(STEPS):
        x = tf.constant(rng.standard_normal(shape) * (step + 1) + step, tf.float32)
        custom(x, training=True)
        builtin(x, training=True)
    for actual, expected, before in zip(custom.non_trainable_weights,
                                        builtin.non_trainable_weights, initial):
        assert actual.name == expected.name
        assert not np.allclose(expected.numpy(), before)  # the statistics did move
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(custom(x), builtin(x), rtol=1e-5, atol=1e-5)


def test_frozen_layer_uses_moving_statistics_even_when_training():
    custom, builtin = build_pair(LayerCase("bn", "BatchNormalization", {}, (6, 3)))
    custom.trainable = builtin.trainable = False
    before = custom.get_weights()
    x = tf.constant(np.random.default_rng(0).standard_normal((6, 3)) + 3.0, tf.float32)
    np.testing.assert_allclose(custom(x, training=True), custom(x, training=False))
    np.testing.assert_allclose(custom(x, training=True), builtin(x, training=True),
                               rtol=1e-5, atol=1e-5)
    for actual, expected in zip(custom.get_weights(), before):
        np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_float16_inputs_are_normalised_in_float32(training):
    # Values ~1000 ± 300: representable in float16 (max 65504), but their
    # squares are not, so a float16 variance would overflow to inf.
    x16 = tf.constant(np.random.default_rng(0).normal(1000.0, 300.0, (16, 4)), tf.float16)
    keras.mixed_precision.set_global_policy("mixed_float16")
    custom = custom_layers.BatchNormalization()
    builtin = keras.layers.BatchNormalization(dtype="float32")
    custom.build(x16.shape)
    builtin.build(x16.shape)
    # Moving statistics that fit the data, so inference output is ~N(0, 1) too.
    weights = [np.ones(4), np.zeros(4), np.full(4, 1000.0), np.full(4, 300.0**2)]
    custom.set_weights(weights)
    builtin.set_weights(weights)
    assert all(w.dtype == "float32" for w in custom.weights)
    y = custom(x16, training=training)
    assert y.dtype == tf.float16
    assert np.isfinite(y.numpy()).all()
    expected = builtin(tf.cast(x16, tf.float32), training=training)
    np.testing.assert_allclose(tf.cast(y, tf.float32), expected, rtol=1e-2, atol=5e-3)
    if training:
        np.testing.assert_allclose(custom.moving_variance.numpy(),
                                   builtin.moving_variance.numpy(), rtol=1e-5)


@pytest.mark.parametrize("inputs", [
    np.full((1, 6), 3.0, "float32"),                     # a batch of one
    np.full((8, 6), 2.5, "float32"),                     # constant inputs
    np.full((4, 3, 3, 2), 1e4, "float32"),               # constant, large
])
def test_batch_norm_stays_finite_on_degenerate_batches(inputs):
    layer = custom_layers.BatchNormalization()
    x = tf.constant(inputs)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        energy = tf.reduce_sum(y * y)
    gradients = tape.gradient(energy, [x, *layer.trainable_weights])
    assert all(g is not None for g in gradients)
    assert np.all(np.isfinite(y)) and all(np.all(np.isfinite(g)) for g in gradients)
    assert np.all(np.isfinite(layer(x, training=False)))


# ------------------------------------------------ the fused kernel against the reference

FUSED_LAYOUTS = [(5, 3, 4), (4, 3, 3, 2), (2, 3, 2, 2, 3), (1, 2, 2, 3)]


def _training_pass(x, gamma, beta, implementation, jit_compile=False):
    """(y, μ_B, σ²_B, dE/dx, dE/dγ, dE/dβ) of the training-mode op with a fixed
    upstream gradient, through one implementation."""
    upstream = tf.cast(tf.constant(np.random.default_rng(1).standard_normal(x.shape)), x.dtype)

    @tf.function(jit_compile=jit_compile)
    def run(x, gamma, beta):
        with tf.GradientTape() as tape:
            tape.watch([x, gamma, beta])
            y, mean, variance = ops.batch_norm_training(
                x, gamma, beta, epsilon=1e-3, implementation=implementation)
        return (y, mean, variance,
                *tape.gradient(y, [x, gamma, beta], output_gradients=upstream))

    return [tf.cast(t, tf.float64).numpy() for t in run(x, gamma, beta)]


def _relative_error(actual, expected):
    return np.linalg.norm(actual - expected) / max(np.linalg.norm(expected), 1e-30)


def _layout_inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.standard_normal(shape) * 3 + 2, tf.float32)
    gamma = tf.constant(rng.standard_normal(shape[-1]), tf.float32)
    beta = tf.constant(rng.standard_normal(shape[-1]), tf.float32)
    return x, gamma, beta


@pytest.mark.parametrize("shape", FUSED_LAYOUTS, ids=str)
@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_fused_kernel_equals_the_reference_in_float32(shape, jit_compile):
    x, gamma, beta = _layout_inputs(shape)
    fused = _training_pass(x, gamma, beta, "fused", jit_compile)
    reference = _training_pass(x, gamma, beta, "reference")
    names = ["y", "mean", "variance", "dE/dx", "dE/dgamma", "dE/dbeta"]
    for name, actual, expected in zip(names, fused, reference):
        assert _relative_error(actual, expected) <= 1e-5, name


@pytest.mark.parametrize("dtype, tolerance", [("bfloat16", 2e-2), ("float16", 3e-3)])
@pytest.mark.parametrize("implementation", ["fused", "reference"])
def test_half_precision_matches_float32_within_its_precision(dtype, tolerance, implementation):
    x, gamma, beta = _layout_inputs((8, 4, 4, 3), seed=2)
    # Inputs already rounded to the half type, so only the computation's error is measured.
    x = tf.cast(tf.cast(x, dtype), tf.float32)
    half = _training_pass(tf.cast(x, dtype), gamma, beta, implementation)
    exact = _training_pass(x, gamma, beta, "reference")
    for actual, expected in zip(half, exact):
        assert _relative_error(actual, expected) <= tolerance
    y, mean, variance = ops.batch_norm_training(tf.cast(x, dtype), gamma, beta,
                                                implementation=implementation)
    assert (y.dtype, mean.dtype, variance.dtype) == (tf.as_dtype(dtype), tf.float32, tf.float32)


@pytest.mark.parametrize("shape, axis, dtype, fused", [
    ((8, 5, 5, 3), -1, "float32", True),    # conv feature maps
    ((8, 5, 3), 2, "bfloat16", True),       # 1-D conv feature maps, axis given as positive
    ((8, 5, 5, 3), 1, "float32", False),    # channel axis not last
    ((8, 16), -1, "float32", False),        # dense features: the reference is faster
    ((8, 5, 5, 3), -1, "float64", False),   # no fused float64 kernel
])
def test_auto_takes_the_fused_kernel_for_feature_maps_with_channels_last(shape, axis, dtype, fused):
    assert ops.batch_norm.fused_kernel_applies(tf.zeros(shape, dtype), axis) is fused


def test_implementation_is_checked():
    x = tf.zeros((2, 3, 3, 2))
    with pytest.raises(ValueError, match="implementation.*'auto', 'fused', 'reference'"):
        ops.batch_norm_training(x, implementation="fast")
    with pytest.raises(ValueError, match="channel axis last"):
        ops.batch_norm_training(x, axis=1, implementation="fused")


# -------------------------------------------------------------------------- masks

def _masked_sequence_models(layer_set):
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(4, 3, mask_zero=True, name="embedding")(inputs)
    x = layer_set.BatchNormalization(momentum=0.5, name="bn")(x)
    return keras.Model(inputs, x)


def test_masked_positions_are_left_out_of_the_statistics_as_in_keras():
    custom, builtin = _masked_sequence_models(custom_layers), _masked_sequence_models(keras.layers)
    builtin.set_weights(custom.get_weights())
    tokens = tf.constant([[1, 2, 0, 0], [3, 1, 1, 0]])  # 0 is padding
    outputs, gradients = [], []
    for model in (custom, builtin):
        with tf.GradientTape() as tape:
            y = model(tokens, training=True)
            energy = tf.reduce_sum(y * tf.range(1.0, 4.0))
        outputs.append(y)
        gradients.append(tape.gradient(energy, model.trainable_weights))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    for actual, expected in zip(*gradients):
        np.testing.assert_allclose(tf.convert_to_tensor(actual), tf.convert_to_tensor(expected),
                                   rtol=1e-4, atol=1e-5)
    for actual, expected in zip(custom.get_layer("bn").non_trainable_weights,
                                builtin.get_layer("bn").non_trainable_weights):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    # The statistics are those of the five unmasked embeddings, not of all eight rows.
    embedded = custom.get_layer("embedding")(tokens).numpy()[tokens.numpy() != 0]
    np.testing.assert_allclose(custom.get_layer("bn").moving_mean.numpy(),
                               0.5 * 0.0 + 0.5 * embedded.mean(axis=0), rtol=1e-5, atol=1e-6)


def test_a_mask_of_the_wrong_rank_is_refused():
    layer = custom_layers.BatchNormalization()
    with pytest.raises(ValueError, match="one dimension less than the inputs"):
        layer(tf.zeros((2, 3, 4)), training=True, mask=tf.ones((2, 3, 4), tf.bool))


# ------------------------------------------------------------- synchronized statistics

def test_synchronized_statistics_and_gradients_equal_keras_across_two_replicas():
    cpus = [device.name for device in tf.config.list_logical_devices("CPU")][:2]
    strategy = tf.distribute.MirroredStrategy(
        cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    shape = (4, 3, 3, 2)
    with strategy.scope():
        layers = [keras.layers.BatchNormalization(synchronized=True, momentum=0.5),
                  custom_layers.BatchNormalization(synchronized=True, momentum=0.5)]
        for layer in layers:
            layer.build(shape)
    # Each replica sees a batch of its own mean, so local statistics would differ.
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((8, *shape[1:])) + np.arange(8)[:, None, None, None]).astype("float32")
    batches = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(x))

    @tf.function
    def step(batch):
        def replica(inputs):
            results = []
            for layer in layers:
                with tf.GradientTape() as tape:
                    tape.watch(inputs)
                    y = layer(inputs, training=True)
                    energy = tf.reduce_sum(y * y * inputs)
                results.append([y, *tape.gradient(energy, [inputs, *layer.trainable_weights])])
            return results
        return strategy.run(replica, args=(batch,))

    builtin, custom = step(next(iter(batches)))
    for expected, actual in zip(builtin, custom):  # y, dE/dx, dE/dγ, dE/dβ on each replica
        for e, a in zip(strategy.experimental_local_results(expected),
                        strategy.experimental_local_results(actual)):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-4)
    for expected, actual in zip(layers[0].non_trainable_weights, layers[1].non_trainable_weights):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(layers[1].moving_mean.numpy(), 0.5 * x[:4].mean(axis=(0, 1, 2)))


def test_synchronized_statistics_off_tensorflow_are_refused_naming_both_backends(monkeypatch):
    from custom_layers import backends

    monkeypatch.setattr(backends, "backend", lambda: "jax")
    with pytest.raises(ValueError, match="synchronized=True.*needs the tensorflow backend; "
                                         "the backend in use is 'jax'"):
        custom_layers.BatchNormalization(synchronized=True)
