"""custom_layers.inspect.GradientStatistics: per-layer gradient statistics while training."""

import csv
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import custom_layers as cl
from custom_layers.inspect import GradientStatistics, UnobservedLayersWarning

BATCH = 6


def _image_model():
    inputs = keras.Input((6, 6, 2))
    x = cl.Conv2D(3, 3, strides=2, padding="same", name="conv_same_s2")(inputs)
    x = cl.Activation("relu", name="relu")(x)
    x = cl.Conv2D(4, 2, padding="valid", name="conv_valid")(x)
    x = cl.Flatten()(x)
    x = cl.Dense(5, name="dense", kernel_regularizer=cl.regularizers.L2(1e-2))(x)
    outputs = cl.Activation("softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs)


def _sequence_model():
    inputs = keras.Input((8, 2))
    x = cl.Conv1D(3, 3, padding="causal", dilation_rate=2, name="conv_causal")(inputs)
    x = cl.Conv1D(4, 3, strides=2, padding="same", name="conv_same_s2")(x)
    x = cl.Dense(3, name="dense_per_step")(x)  # a Dense over a sequence: no factorisation
    x = cl.Flatten()(x)
    x = cl.Dense(5, name="dense")(x)
    outputs = cl.Activation("softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs)


def _data(model, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, *model.input_shape[1:])).astype("float32")
    return x, rng.integers(0, 5, BATCH)


def _one_recorded_step(model, x, y, **callback_kwargs):
    model.compile(keras.optimizers.SGD(0.1), cl.losses.SparseCategoricalCrossentropy())
    callback = GradientStatistics(every=1, **callback_kwargs)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False, callbacks=[callback])
    return callback


@pytest.mark.parametrize("build", [_image_model, _sequence_model])
def test_per_example_norms_match_a_per_example_tape(build):
    model = build()
    x, y = _data(model)
    before = [w.numpy() for w in model.weights]
    callback = _one_recorded_step(model, x, y, per_example=True)

    model.set_weights(before)  # the recorded step saw the weights before its update
    loss = keras.losses.SparseCategoricalCrossentropy(reduction="none")
    kernels = {layer.name: layer.kernel for layer in model.layers if hasattr(layer, "kernel")}
    assert set(callback.per_example_norms) == set(kernels)
    for n in range(BATCH):
        with tf.GradientTape() as tape:
            share = loss(y[n:n + 1], model(x[n:n + 1], training=True))[0] / BATCH  # E_n / N
        gradients = tape.gradient(share, list(kernels.values()))
        for name, gradient in zip(kernels, gradients):
            np.testing.assert_allclose(callback.per_example_norms[name][n],
                                       np.linalg.norm(gradient), rtol=2e-4, err_msg=name)


def test_norms_are_the_training_steps_gradients():
    model = _image_model()
    x, y = _data(model, seed=1)
    before = [w.numpy() for w in model.weights]
    callback = _one_recorded_step(model, x, y)
    rows = {row["layer"]: row for row in callback.rows}

    model.set_weights(before)
    watched = [model.get_layer(name) for name in ("conv_same_s2", "relu", "dense")]
    probe = keras.Model(model.inputs[0], [layer.output for layer in watched] + [model.output])
    with tf.GradientTape() as tape:
        *outputs, probabilities = probe(x, training=True)
        loss = keras.losses.SparseCategoricalCrossentropy()(y, probabilities) + tf.add_n(model.losses)
    output_gradients = tape.gradient(loss, outputs)
    for layer, gradient in zip(watched, output_gradients):
        assert rows[layer.name]["output_gradient_norm"] == pytest.approx(
            float(np.linalg.norm(gradient)), rel=1e-4)
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy()(y, model(x, training=True)) \
            + tf.add_n(model.losses)
    dense = model.get_layer("dense")
    weight_gradients = tape.gradient(loss, dense.trainable_weights)
    assert rows["dense"]["weight_gradient_norm"] == pytest.approx(
        math.sqrt(sum(float(np.sum(g.numpy() ** 2)) for g in weight_gradients)), rel=1e-4)
    # one SGD step: ΔW = −η dE/dW, so ‖ΔW‖/‖W‖ = η‖dE/dW‖/‖W‖
    size = math.sqrt(sum(float(np.sum(w ** 2)) for w in (before[-2], before[-1])))
    assert rows["dense"]["update_ratio"] == pytest.approx(
        0.1 * rows["dense"]["weight_gradient_norm"] / size, rel=1e-3)
    # the softmax hands p − t to its logits: nothing reaches its output
    assert math.isnan(rows["probabilities"]["output_gradient_norm"])


def test_dead_relu_units_are_counted():
    inputs = keras.Input((4,))
    x = cl.Dense(4, bias_initializer=keras.initializers.Constant([0.0, 0.0, -1e3, -1e3]),
                 kernel_initializer="ones", name="hidden")(inputs)
    x = cl.Activation("relu", name="relu")(x)
    outputs = cl.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    x_data = np.abs(np.random.default_rng(0).normal(size=(BATCH, 4))).astype("float32")
    callback = _one_recorded_step(model, x_data, np.zeros(BATCH, int))
    rows = {row["layer"]: row for row in callback.rows}
    assert rows["relu"]["dead_fraction"] == 0.5
    assert rows["hidden"]["dead_fraction"] == ""  # not a ReLU layer


def test_records_every_nth_step_to_files_and_resumes(tmp_path):
    model = _image_model()
    x, y = np.repeat(_data(model)[0], 4, 0), np.repeat(_data(model)[1], 4, 0)  # 4 steps an epoch
    model.compile("adam", cl.losses.SparseCategoricalCrossentropy())
    model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0,
              callbacks=[GradientStatistics(tmp_path, every=3)])
    with (tmp_path / "gradients.csv").open() as file:
        steps = sorted({int(row["step"]) for row in csv.DictReader(file)})
    assert steps == [0, 3, 6]
    assert (tmp_path / "gradients.png").stat().st_size > 0
    assert not list(tmp_path.glob(".*.tmp.png"))  # written atomically
    assert list((tmp_path / "logs" / "gradients").glob("events.out.tfevents.*"))
    assert "call" not in vars(model.get_layer("dense"))  # the taps are removed after training

    # resumed from step 4: the rows of steps 0 and 3 stay, step 6 is recorded again
    model.optimizer.iterations.assign(4)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0,
              callbacks=[GradientStatistics(tmp_path, every=3)])
    with (tmp_path / "gradients.csv").open() as file:
        steps = [int(row["step"]) for row in csv.DictReader(file)]
    layers = len({layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)})
    assert steps == [0] * layers + [3] * layers + [6] * layers


def test_first_steps_records_only_the_first_steps_and_fit_goes_on():
    model = _image_model()
    x, y = np.repeat(_data(model)[0], 4, 0), np.repeat(_data(model)[1], 4, 0)  # 4 steps an epoch
    model.compile("adam", cl.losses.SparseCategoricalCrossentropy())
    callback = GradientStatistics(every=1, first_steps=3)
    model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[callback])
    assert sorted({row["step"] for row in callback.rows}) == [0, 1, 2]
    assert int(model.optimizer.iterations) == 8


def test_says_which_layers_it_cannot_observe():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="keras_dense")(inputs)
    outputs = cl.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.warns(UnobservedLayersWarning, match=r"keras_dense \(Dense\)"):
        model.fit(np.ones((2, 4)), np.zeros(2), verbose=0, callbacks=[GradientStatistics()])

    keras_model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="only_keras")])
    keras_model.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"has none: only_keras \(Dense\).*custom_layers.convert"):
        keras_model.fit(np.ones((2, 4)), np.ones((2, 3)), verbose=0,
                        callbacks=[GradientStatistics()])


@pytest.mark.parametrize("every", [0, -3, 1.5, True])
def test_every_and_first_steps_must_be_positive_integers(every):
    with pytest.raises(ValueError, match="every"):
        GradientStatistics(every=every)
    with pytest.raises(ValueError, match="first_steps"):
        GradientStatistics(first_steps=every)


@pytest.fixture
def without_op_determinism():
    """Keras compiles nothing with XLA while TensorFlow's op determinism is on
    (a seeded zoo.train in the same process turns it on for good)."""
    from tensorflow.python.framework import config

    was_on = config.is_op_determinism_enabled()
    config.disable_op_determinism()
    yield
    if was_on:
        config.enable_op_determinism()


def test_an_xla_compiled_model_is_observed_too(without_op_determinism):
    model = _image_model()
    x, y = _data(model)
    model.compile(keras.optimizers.SGD(0.1), cl.losses.SparseCategoricalCrossentropy(),
                  jit_compile=True)
    callback = GradientStatistics(every=1, per_example=True)
    model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[callback])
    assert model.jit_compile
    assert {row["step"] for row in callback.rows} == {0, 1}
    assert callback.per_example_norms["dense"].shape == (BATCH,)


def test_the_gradient_picture_names_the_run_and_says_when_it_is_too_sparse(tmp_path, monkeypatch):
    import matplotlib.figure

    from custom_layers.inspect import plot_gradient_statistics

    headings = []
    monkeypatch.setattr(matplotlib.figure.Figure, "suptitle",
                        lambda figure, text, **kwargs: headings.append(text))
    rows = [{"layer": f"layer{i}", "step": step, "output_gradient_norm": 1.0 + step,
             "weight_gradient_norm": 0.5, "update_ratio": 0.01, "dead_fraction": ""}
            for i in range(3) for step in (0, 100)]
    plot_gradient_statistics(rows, tmp_path / "sparse.png", title="Gradient statistics of run")
    rows += [{**row, "step": step} for row in rows[::2] for step in range(200, 500, 100)]
    plot_gradient_statistics(rows, tmp_path / "dense.png", title="Gradient statistics of run")
    assert headings[0].startswith("Gradient statistics of run\nonly 2 recorded step(s) per layer")
    assert headings[1] == "Gradient statistics of run"  # 5 steps of each layer: no note
    assert (tmp_path / "sparse.png").exists() and (tmp_path / "dense.png").exists()
