"""Serialization: config round-trip of every layer of the harness, a model of
all layers through .keras (safe_mode=True) and through model.export()."""

import json

import keras
import numpy as np
import pytest

import custom_layers
from tests.custom_layers.harness import all_layers_model, distinct_values, layer_cases, random_weights


@layer_cases()
def test_config_round_trip(case):
    layer = case.custom(name="original")
    layer.build(case.input_shape)
    layer.set_weights(random_weights(layer))
    config = layer.get_config()
    json.dumps(config)  # plain JSON, as the .keras format stores it
    clone = type(layer).from_config(config)
    assert type(clone) is type(layer)
    assert clone.get_config() == config
    # Through JSON (tuples become lists) and the registered name as well.
    revived = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    )
    assert type(revived) is type(layer)
    assert revived.get_config() == config
    assert revived.built  # serialize_keras_object stores the build config
    clone.build(case.input_shape)
    x = distinct_values(case.input_shape)
    for other in (clone, revived):
        other.set_weights(layer.get_weights())
        np.testing.assert_array_equal(other(x, training=False), layer(x, training=False))
    # Same seed, same state: training-mode outputs (incl. dropout masks) agree too.
    np.testing.assert_array_equal(clone(x, training=True), layer(x, training=True))


@layer_cases()
def test_config_has_the_keras_layer_arguments(case):
    """Drop-in: every argument of the built-in layer's config that the issue
    lists as core is present in ours with the same value."""
    ours = case.custom().get_config()
    theirs = case.builtin().get_config()
    shared = set(theirs) & set(ours) - {"name", "dtype"}
    assert set(case.kwargs) <= shared
    for key in shared:
        mine, keras_value = ours[key], theirs[key]
        if isinstance(keras_value, list):
            keras_value = tuple(keras_value)
        assert mine == keras_value, key


@pytest.fixture(scope="module")
def trained_model():
    """A model of every custom layer with non-trivial weights and moving
    statistics, and inputs to compare outputs on."""
    keras.utils.set_random_seed(1)
    model = all_layers_model()
    x = np.random.default_rng(0).standard_normal((6, 8, 8, 2)).astype("float32")
    for _ in range(3):
        model(x, training=True)  # moves the batch-norm statistics
    return model, x


def test_keras_file_round_trip_in_safe_mode(trained_model, tmp_path):
    model, x = trained_model
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert any(isinstance(layer, custom_layers.BatchNormalization) for layer in loaded.layers)
    for actual, expected in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="a SavedModel is served by TensorFlow")
def test_export_serves_what_predict_returns(trained_model, tmp_path):
    import tensorflow as tf

    model, x = trained_model
    path = str(tmp_path / "saved_model")
    model.export(path)
    reloaded = tf.saved_model.load(path)  # keep a reference: it owns the variables
    served = reloaded.serve(tf.constant(x))
    np.testing.assert_allclose(served, model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


#: (class name, constructor arguments): configs that both implementations run.
CROSSOVER = [
    ("Dense", dict(units=4, activation="relu", use_bias=False)),
    ("Dense", dict(units=4, lora_rank=2, lora_alpha=4)),
    ("Conv1D", dict(filters=3, kernel_size=5, strides=2, padding="causal", dilation_rate=1)),
    ("Conv2D", dict(filters=3, kernel_size=(3, 1), padding="same", dilation_rate=2)),
    ("Conv2D", dict(filters=4, kernel_size=2, groups=2, data_format="channels_first")),
    ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same")),
    ("MaxPooling2D", dict(pool_size=(2, 3), data_format="channels_first")),
    # synchronized=True is TensorFlow's (tf.distribute); both classes refuse it elsewhere
    ("BatchNormalization", dict(axis=1, momentum=0.9, center=False,
                                synchronized=keras.backend.backend() == "tensorflow")),
    ("BatchNormalization", dict(renorm=True, renorm_clipping={"rmax": 2.0}, renorm_momentum=0.9)),
    ("Dropout", dict(rate=0.3, noise_shape=(None, 1, 4), seed=3)),
]


@pytest.mark.parametrize("name, arguments", CROSSOVER, ids=[row[0] for row in CROSSOVER])
def test_configs_cross_over_between_keras_and_custom_layers_both_ways(name, arguments):
    builtin_class, custom_class = getattr(keras.layers, name), getattr(custom_layers, name)
    builtin_config = builtin_class(**arguments).get_config()
    custom = custom_class.from_config(builtin_config)
    assert type(custom) is custom_class
    custom_config = custom.get_config()
    assert set(custom_config) == set(builtin_config)  # the same keys, Keras-only ones included
    back = builtin_class.from_config(json.loads(json.dumps(custom_config)))
    assert type(back) is builtin_class
    assert json.loads(json.dumps(back.get_config())) == json.loads(json.dumps(builtin_config))


@pytest.mark.parametrize("name, arguments, feature", [
    ("Dense", dict(units=2, quantization_config={"mode": "int8"}), "quantization"),
])
def test_keras_arguments_without_a_custom_computation_are_refused_by_name(name, arguments, feature):
    with pytest.raises(NotImplementedError, match=f"custom_layers.{name} does not implement {feature}"):
        getattr(custom_layers, name)(**arguments)


def test_an_unknown_data_format_gets_keras_message():
    with pytest.raises(ValueError, match=r"The `data_format` argument must be one of "
                                         r"\{'channels_first', 'channels_last'\}\. "
                                         r"Received: data_format=nchw"):
        custom_layers.MaxPooling1D(data_format="NCHW")
