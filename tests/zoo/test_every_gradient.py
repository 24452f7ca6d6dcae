"""Every gradient of a zoo model built from custom layers is written out.

During one training step (``fit`` through ``compile_model``, as ``zoo train``
and ``zoo tune`` compile) the backend's autodiff (TensorFlow's gradient
functions, JAX's JVP rules) may only differentiate linear bookkeeping; the
layers, activations, loss and weight penalty must all come with their own
backward passes. With Keras' layers the same count sees Keras' non-linear
ops, so the check can fail. The module runs on TensorFlow and, in a second
process, on JAX (tests/custom_layers/test_backends.py).
"""

import numpy as np
import keras
import pytest

import zoo
from custom_layers.testing import autodiff_gradients
from zoo.training import compile_model

# Linear bookkeeping: identity, cast, reshape-type shape ops, stacking and
# adding (the loss and the penalties), sums and means, and the division of a
# sum by the batch size (JAX: divide_no_nan's select between the quotient
# and 0 on whether the count is 0, and stop_gradient, whose derivative is 0).
ALLOWED_AUTODIFF = {
    "tensorflow": {
        "Identity", "IdentityN", "Cast", "Reshape", "ExpandDims", "Squeeze", "Pack",
        "AddN", "AddV2", "Sum", "Mean", "DivNoNan", "RealDiv",
    },
    "jax": {
        "copy", "convert_element_type", "reshape", "broadcast_in_dim", "expand_dims",
        "squeeze", "concatenate", "add", "add_any", "reduce_sum", "div", "select_n",
        "stop_gradient",
    },
}[keras.backend.backend()]
# What autodiff differentiates in a network of Keras' layers: its matrix
# products, and its ReLU (TensorFlow) or batch norm's 1/√(σ² + ε) (JAX, whose
# relu has a rule of its own outside the registry).
KERAS_NONLINEAR = {"tensorflow": {"MatMul", "Relu"},
                   "jax": {"dot_general", "rsqrt"}}[keras.backend.backend()]

FAMILIES = {
    "deep_mlp": dict(input_shape=(6, 6, 1), hidden_units=(8, 8), batch_norm=True,
                     dropout_rate=0.2, weight_decay=1e-4),
    "deep_cnn": dict(input_shape=(8, 8, 1), filters=(4, 8), dense_units=(8,)),
    "cnn1d": dict(input_shape=(16, 1), filters=(4, 8), dense_units=(8,)),
    "lenet5": dict(input_shape=(12, 12, 1), batch_norm=True, dropout_rate=0.2),
    "resnet": dict(input_shape=(8, 8, 1), depth=8, filters=(4, 4, 8)),  # Add, global pooling
}


def _autodiff_in_a_training_step(family: str, layers: str, policy: str):
    keras.mixed_precision.set_global_policy(policy)
    kwargs = FAMILIES[family]
    model = zoo.create_model(family, **kwargs, layers=layers)
    compile_model(model, jit_compile=keras.backend.backend() == "jax")
    rng = np.random.default_rng(0)
    x = rng.random((8, *kwargs["input_shape"]), dtype=np.float32)
    y = rng.integers(0, 10, 8)
    with autodiff_gradients() as counts:
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    return counts


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_custom_zoo_models_train_on_written_out_gradients_only(family, policy):
    counts = _autodiff_in_a_training_step(family, "custom", policy)
    assert counts, "the step was not traced inside the block: nothing was recorded"
    assert set(counts) <= ALLOWED_AUTODIFF, (
        f"autodiff differentiated {sorted(set(counts) - ALLOWED_AUTODIFF)} in {family}")


def test_the_count_sees_keras_layers_autodiff():
    # One family shows that the check above can fail: the smallest, whose
    # batch norm brings JAX's rsqrt and whose Dense layers the matrix products.
    counts = _autodiff_in_a_training_step("deep_mlp", "keras", "float32")
    assert KERAS_NONLINEAR <= set(counts)
    assert not set(counts) <= ALLOWED_AUTODIFF
