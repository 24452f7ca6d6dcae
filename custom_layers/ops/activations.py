"""Activation functions, each with its derivative written out.

A unit's output is h = g(z). The backward pass of an element-wise g
multiplies the upstream gradient by g'(z), so each function below is the
pair (g, g'):

    linear      g = z                          g' = 1
    relu        g = max(z, 0)                  g' = 1[z > 0]
    leaky_relu  g = z if z > 0 else a·z        g' = 1 if z > 0 else a        (a = 0.2, Keras')
    elu         g = z if z > 0 else a(eᶻ − 1)  g' = 1 if z > 0 else g + a    (a = 1)
    sigmoid     g = σ(z) = 1/(1 + e⁻ᶻ)         g' = σ(1 − σ)                 (the lecture's saturation)
    tanh        g = tanh z                     g' = 1 − tanh² z
    softplus    g = log(1 + eᶻ)                g' = σ(z)
    silu        g = z·σ(z)                     g' = σ(z)(1 + z(1 − σ(z)))
    gelu        g = z·Φ(z)                     g' = Φ(z) + z·φ(z)            (Φ, φ: the normal cdf, pdf)

Where the backend has a kernel that computes exactly the product
upstream · g' in one sweep (TensorFlow's ``ReluGrad``, ``SigmoidGrad``,
``TanhGrad``, ``EluGrad``, ``LeakyReluGrad``, ``SoftplusGrad``; on JAX the
formula, which XLA fuses into one sweep), the backward runs it through
:mod:`custom_layers.backends` — as the convolutions run their derived sums
through ``Conv2DBackpropFilter`` — instead of the two or three element-wise
ops the formula would take eagerly.

softmax is not element-wise: y = softmax(z) along the last axis has the
Jacobian ∂y_i/∂z_j = y_i(δ_ij − y_j), whose product with the upstream
gradient g is

    dE/dz = y ⊙ (g − Σ_j g_j y_j)

computed without ever forming the Jacobian. Its output keeps the logits z
(``custom_layers._compat.attach_logits``, where a graph tensor can carry them, as Keras'
softmax does), so a cross-entropy on top takes the fused gradient
dE/dz = p − t from z instead of going through this Jacobian — exact where
the probabilities saturate.

A layer's ``activation=`` argument (:func:`layer_activation`) takes these
by name or as Keras' function objects; any other activation Keras knows is
applied as Keras' function, its gradient then the backend's autodiff.
"""

from __future__ import annotations

import math
from typing import Callable

import keras
from keras import ops

from custom_layers.backends import kernels
from custom_layers._compat import attach_logits
from custom_layers.ops._gradient import custom_gradient

LEAKY_RELU_SLOPE = 0.2  # keras.activations.leaky_relu's default
ELU_ALPHA = 1.0


def _elementwise(forward: Callable, derivative: Callable) -> Callable:
    """An op y = g(z) whose backward is upstream · g'(z, y)."""

    @custom_gradient
    def op(z):
        y = forward(z)

        def grad(upstream):
            return upstream * derivative(z, y)

        return y, grad

    return op


def linear(z):
    """g = z, g' = 1: the identity (no op is recorded)."""
    return z


def _fused(name: str, forward: Callable, backward: Callable) -> Callable:
    """An op y = g(z) whose backward is ``backward(kernels, upstream, z, y)``,
    a kernel of the backend computing upstream · g'(z) in one sweep."""

    @custom_gradient
    def op(z):
        y = forward(z)
        backend = kernels(name)

        def grad(upstream):
            return backward(backend, upstream, z, y)

        return y, grad

    return op


def relu(z):
    """g = max(z, 0); dE/dz = dE/dy · 1[z > 0] = dE/dy · 1[y > 0] (``ReluGrad``
    on the output, so the input need not be kept)."""
    return _fused("relu", ops.relu, lambda k, g, z, y: k.relu_backprop(g, y))(z)


def leaky_relu(z, negative_slope: float = LEAKY_RELU_SLOPE):
    """g = z (z > 0) or a·z; g' = 1 or a (``LeakyReluGrad``)."""
    return _fused("leaky_relu", lambda z: ops.leaky_relu(z, negative_slope),
                  lambda k, g, z, y: k.leaky_relu_backprop(g, z, negative_slope))(z)


def elu(z, alpha: float = ELU_ALPHA):
    """g = z (z > 0) or a(eᶻ − 1); g' = 1 or g + a (``EluGrad`` for a = 1)."""
    if alpha == 1.0:
        return _fused("elu", ops.elu, lambda k, g, z, y: k.elu_backprop(g, y))(z)
    a = ops.convert_to_tensor(alpha, z.dtype)
    return _elementwise(lambda z: ops.where(z > 0, z, a * (ops.exp(ops.minimum(z, 0)) - 1)),
                        lambda z, y: ops.where(z > 0, ops.ones((), z.dtype), y + a))(z)


def sigmoid(z):
    """g = σ(z); g' = σ(1 − σ), from the output alone (``SigmoidGrad``)."""
    return _fused("sigmoid", ops.sigmoid, lambda k, g, z, y: k.sigmoid_backprop(g, y))(z)


def tanh(z):
    """g = tanh z; g' = 1 − tanh², from the output alone (``TanhGrad``)."""
    return _fused("tanh", lambda z: kernels("tanh").tanh(z),
                  lambda k, g, z, y: k.tanh_backprop(g, y))(z)


def softplus(z):
    """g = log(1 + eᶻ); g' = σ(z) (``SoftplusGrad``)."""
    return _fused("softplus", ops.softplus, lambda k, g, z, y: k.softplus_backprop(g, z))(z)


def silu(z):
    """g = z·σ(z); g' = σ(z)(1 + z(1 − σ(z)))."""

    def derivative(z, y):
        s = ops.sigmoid(z)
        return s * (1 + z * (1 - s))

    return _elementwise(lambda z: z * ops.sigmoid(z), derivative)(z)


def gelu(z):
    """g = z·Φ(z) (exact, as Keras' default); g' = Φ(z) + z·φ(z)."""
    inv_sqrt2 = ops.convert_to_tensor(1 / math.sqrt(2), z.dtype)
    inv_sqrt_2pi = ops.convert_to_tensor(1 / math.sqrt(2 * math.pi), z.dtype)

    def cdf(z):
        return 0.5 * (1 + ops.erf(z * inv_sqrt2))

    return _elementwise(lambda z: z * cdf(z),
                        lambda z, y: cdf(z) + z * inv_sqrt_2pi * ops.exp(-0.5 * ops.square(z)))(z)


def softmax(z):
    """y = softmax(z) over the last axis; dE/dz = y ⊙ (g − Σ g ⊙ y)."""

    @custom_gradient
    def op(z):
        y = ops.softmax(z, axis=-1)

        def grad(upstream):
            return y * (upstream - ops.sum(upstream * y, axis=-1, keepdims=True))

        return y, grad

    return attach_logits(op(z), z)


ACTIVATIONS: dict[str, Callable] = {
    "linear": linear, "relu": relu, "leaky_relu": leaky_relu, "elu": elu,
    "sigmoid": sigmoid, "tanh": tanh, "softplus": softplus, "silu": silu, "gelu": gelu,
    "softmax": softmax,
}


def get(name: str) -> Callable:
    """The activation called ``name`` (None: linear); a ValueError lists the known ones."""
    if name is None:
        return linear
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}: custom_layers derives the backward pass of "
                         f"{', '.join(sorted(ACTIVATIONS))}.")
    return ACTIVATIONS[name]


def layer_activation(activation) -> Callable:
    """What a layer's ``activation=`` argument applies: the function above
    for one of their names or for Keras' function of the same name (None:
    linear); any other activation Keras knows (a name, or a callable) is
    Keras' own. An unknown name lists the derived ones."""
    if activation is None:
        return linear
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    try:
        keras_function = keras.activations.get(activation)
    except (ValueError, TypeError):
        raise ValueError(
            f"Unknown activation {activation!r}: custom_layers derives the backward pass of "
            f"{', '.join(sorted(ACTIVATIONS))}; other names Keras knows (keras.activations) "
            "are applied with TensorFlow's autodiff.") from None
    name = getattr(keras_function, "__name__", None)
    if name in ACTIVATIONS and keras_function is getattr(keras.activations, name, None):
        return ACTIVATIONS[name]
    return keras_function


def activation_config(activation):
    """The ``activation`` entry of a layer's config: Keras' serialization of
    the argument, so configs cross over to Keras' layers."""
    return keras.activations.serialize(keras.activations.get(activation))
