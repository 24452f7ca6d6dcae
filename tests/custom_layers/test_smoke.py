import numpy as np
import keras

import custom_layers as cl


def test_dense_matches_keras_with_shared_weights():
    x = np.random.default_rng(0).standard_normal((4, 7)).astype("float32")
    builtin, custom = keras.layers.Dense(5), cl.Dense(5)
    builtin(x), custom(x)
    custom.set_weights(builtin.get_weights())
    np.testing.assert_allclose(custom(x), builtin(x), rtol=1e-5, atol=1e-6)
