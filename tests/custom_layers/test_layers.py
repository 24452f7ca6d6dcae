"""The layer harness: every row of ``LAYER_CASES`` runs through the same checks.

- same weights (names, shapes, order) and output shape as the keras.layers twin;
- float64 gradient check of the whole layer (w.r.t. input and every trainable
  weight): hand-written backward == autodiff of the built-in Keras layer and
  == central finite differences;
- float32 parity with the built-in layer (outputs and gradients) in training
  and inference mode, after ``custom.set_weights(builtin.get_weights())``;
- the layer's forward and backward compile under XLA and agree with eager.
"""

import keras
import numpy as np
import pytest

from custom_layers.backends import kernels
from custom_layers.testing import check_gradients
from tests.custom_layers.harness import (
    accepts_training,
    build_pair,
    compiled,
    distinct_values,
    layer_cases,
    layer_cases_and_modes,
    trainable_gradients,
)


def _call_kwargs(layer, training):
    """``training=`` only for layers whose ``call`` takes it (stateless_call
    hands its kwargs straight to ``call``)."""
    return {"training": training} if accepts_training(layer) else {}


def _as_function_of_weights(layer, training):
    """layer(x) as a pure function f(x, *trainable_weights), the non-trainable
    state (moving statistics, dropout seed) frozen at its current value."""
    frozen = [keras.ops.convert_to_tensor(v) for v in layer.non_trainable_variables]
    kwargs = _call_kwargs(layer, training)

    def forward(x, *weights):
        outputs, _ = layer.stateless_call(list(weights), frozen, x, **kwargs)
        return outputs

    return forward


@layer_cases()
def test_weights_and_output_shape_match_keras(case):
    custom, builtin = build_pair(case)
    assert [(w.name, tuple(w.shape)) for w in custom.weights] == [
        (w.name, tuple(w.shape)) for w in builtin.weights
    ]
    assert [w.name for w in custom.trainable_weights] == [
        w.name for w in builtin.trainable_weights
    ]
    x = distinct_values(case.input_shape)
    expected_shape = tuple(builtin(x).shape)
    assert tuple(custom(x).shape) == expected_shape
    assert tuple(custom.compute_output_shape(case.input_shape)) == expected_shape


@layer_cases_and_modes()
def test_gradients_float64_match_autodiff_and_finite_differences(case, training):
    custom, builtin = build_pair(case, dtype="float64")
    x = distinct_values(case.input_shape, seed=2, dtype="float64")
    weights = [keras.ops.convert_to_numpy(w) for w in builtin.trainable_variables]
    report = check_gradients(
        _as_function_of_weights(custom, training),
        _as_function_of_weights(builtin, training),
        [x, *weights],
        rtol=1e-6,
        numeric=True,
        numeric_rtol=1e-5,
    )
    assert len(report.autodiff_error) == len(report.numeric_error) == 1 + len(weights)


@layer_cases()
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_outputs_and_gradients_match_keras_float32(case, training):
    custom, builtin = build_pair(case)
    x = distinct_values(case.input_shape, seed=3)
    y_custom, dx_custom, dw_custom = trainable_gradients(custom, x, training)
    y_builtin, dx_builtin, dw_builtin = trainable_gradients(builtin, x, training)
    assert keras.ops.dtype(y_custom) == keras.ops.dtype(y_builtin) == "float32"
    np.testing.assert_allclose(y_custom, y_builtin, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx_custom, dx_builtin, rtol=1e-5, atol=1e-5)
    assert len(dw_custom) == len(dw_builtin)
    for actual, expected in zip(dw_custom, dw_builtin):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    # Inference is deterministic and training-time state (moving statistics,
    # seed) advanced the same way in both layers.
    for actual, expected in zip(custom.get_weights(), builtin.get_weights()):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


@layer_cases()
def test_forward_and_backward_compile_under_xla(case):
    custom, _ = build_pair(case)
    x = keras.ops.convert_to_tensor(distinct_values(case.input_shape, seed=4))
    # The same pure step (forward and backward from one state) eagerly and
    # compiled; training mode draws the stochastic layers' masks from the state.
    training = not case.stochastic
    kwargs = {"training": training} if accepts_training(custom) else {}
    state = [keras.ops.convert_to_tensor(v) for v in custom.non_trainable_variables]
    weights = [keras.ops.convert_to_tensor(v) for v in custom.trainable_variables]
    y = custom.stateless_call(weights, state, x, **kwargs)[0]
    u = keras.ops.convert_to_tensor(np.random.default_rng(1).standard_normal(tuple(y.shape)),
                                    "float32")

    def objective(x, *weights):
        outputs, _ = custom.stateless_call(list(weights), state, x, **kwargs)
        return keras.ops.sum(outputs * u)

    def step(x, *weights):
        return [objective(x, *weights),
                *kernels("dense").autodiff_gradients(objective, [x, *weights])]

    eager = step(x, *weights)
    xla = compiled(step)(x, *weights)
    for actual, expected in zip(xla, eager):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
