"""Training state inside a compiled step, on every backend.

JAX traces a training step once and replays it, so two things that work
eagerly can silently break there: a random draw made inside the traced code
repeats the same dropout mask at every step (keras-team/keras#18426), and a
state update inside a custom-gradient function breaks (keras-team/keras#21639).
Dropout draws its mask from its ``SeedGenerator`` outside the op, and batch
norm assigns its moving statistics outside it; these tests pin both through
``fit(jit_compile=True)``. They run on TensorFlow and, in a second process,
on JAX (tests/custom_layers/test_backends.py).
"""

import keras
import numpy as np

import custom_layers


class _BatchLosses(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def test_a_compiled_step_draws_a_new_dropout_mask_every_step():
    model = keras.Sequential([keras.Input((64,)), custom_layers.Dropout(0.5, seed=1),
                              custom_layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    # Learning rate 0: the weights never move, so only the mask changes the loss.
    model.compile(keras.optimizers.SGD(0.0), "mse", jit_compile=True)
    record = _BatchLosses()
    x = np.ones((4, 64), "float32")
    model.fit(np.tile(x, (5, 1)), np.zeros((20, 1), "float32"), batch_size=4, epochs=1,
              shuffle=False, verbose=0, callbacks=[record])
    assert len(record.losses) == 5
    assert len(set(np.round(record.losses, 4))) > 1, record.losses


def _bn_model(layers):
    model = keras.Sequential([keras.Input((5, 5, 3)), layers.Conv2D(4, 3, padding="same"),
                              layers.BatchNormalization(momentum=0.5), layers.Flatten(),
                              layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.MeanSquaredError(), jit_compile=True)
    return model


def test_compiled_training_updates_the_moving_statistics_as_keras_does():
    custom, builtin = _bn_model(custom_layers), _bn_model(keras.layers)
    custom.set_weights(builtin.get_weights())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 5, 5, 3)).astype("float32") * 2 + 1
    y = rng.standard_normal((16, 2)).astype("float32")
    for model in (custom, builtin):
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    moving = [layer for layer in custom.layers if "batch" in layer.name][0]
    assert not np.allclose(keras.ops.convert_to_numpy(moving.moving_mean), 0.0)
    for mine, theirs in zip(custom.get_weights(), builtin.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)
