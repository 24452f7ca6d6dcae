"""custom_layers.regularizers.L2: the lecture's λ‖w‖², a drop-in for keras.regularizers.L2."""

import json

import keras
import numpy as np
import pytest

import custom_layers
from custom_layers.backends import kernels
from custom_layers.regularizers import L2


def test_value_and_gradient_are_lambda_norm_squared_and_two_lambda_w():
    value = np.random.default_rng(0).standard_normal((5, 3)).astype("float32")
    w = keras.ops.convert_to_tensor(value)
    penalty = L2(1e-2)(w)
    np.testing.assert_allclose(penalty, 1e-2 * np.sum(value ** 2), rtol=1e-6)
    np.testing.assert_allclose(penalty, keras.regularizers.L2(1e-2)(w), rtol=1e-6)
    (gradient,) = kernels("test").autodiff_gradients(L2(1e-2), [w])
    np.testing.assert_allclose(gradient, 2e-2 * value, rtol=1e-6)


def test_config_crosses_over_with_keras_and_a_model_saves_with_it(tmp_path):
    assert L2.from_config(keras.regularizers.L2(3e-4).get_config()).l2 == pytest.approx(3e-4)
    assert keras.regularizers.L2.from_config(L2(3e-4).get_config()).l2 == pytest.approx(3e-4)
    model = keras.Sequential([keras.Input((4,)), custom_layers.Dense(2, kernel_regularizer=L2(0.1))])
    model.save(tmp_path / "l2.keras")
    revived = keras.saving.load_model(tmp_path / "l2.keras")
    regularizer = revived.layers[0].kernel_regularizer
    assert type(regularizer) is L2 and regularizer.l2 == pytest.approx(0.1)
    np.testing.assert_allclose(revived.losses[0], model.losses[0], rtol=1e-6)
    json.dumps(keras.saving.serialize_keras_object(regularizer))


@pytest.mark.parametrize("l2", [-1.0, float("nan"), "0.1"])
def test_bad_lambda_is_refused(l2):
    with pytest.raises(ValueError, match="Invalid value for argument `l2`. Expected a finite "
                                         "number >= 0"):
        L2(l2)
