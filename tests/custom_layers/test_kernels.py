"""The backend's kernels compute the derived quantities they are named for.

Each backward kernel of :mod:`custom_layers.backends` (dE/dx and dE/dw of a
convolution, max pooling's routing to the argmax, average pooling's equal
shares, the activations' upstream · g') is checked against the backend's own
autodiff of the forward kernel beside it, in float64, on awkward shapes:
strides that do not divide the input, "same" padding with an odd total,
dilation, overlapping windows. Runs on TensorFlow and, in a second process,
on JAX (tests/custom_layers/test_backends.py).
"""

import keras
import numpy as np
import pytest

from custom_layers.backends import kernels

backend = kernels("test")
RNG = np.random.default_rng(0)


def _tensor(shape, distinct=False):
    if distinct:  # pairwise distinct values: no ties for max pooling
        values = RNG.permutation(int(np.prod(shape))).reshape(shape) / 7.0
    else:
        values = RNG.standard_normal(shape)
    return keras.ops.convert_to_tensor(values, "float64")


def _autodiff(forward, inputs, upstream):
    """dE/d(inputs) of E = Σ upstream ⊙ forward(*inputs), by the backend's autodiff."""
    return backend.autodiff_gradients(
        lambda *xs: keras.ops.sum(forward(*xs) * upstream), inputs)


def _close(actual, expected):
    np.testing.assert_allclose(keras.ops.convert_to_numpy(actual),
                               keras.ops.convert_to_numpy(expected), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("x_shape, kernel_shape, strides, dilation, padding", [
    ((2, 7, 7, 3), (3, 3, 3, 4), (1, 1), (1, 1), "valid"),
    ((2, 8, 7, 2), (3, 2, 2, 4), (2, 2), (1, 1), "same"),
    ((2, 10, 9, 2), (3, 3, 2, 2), (3, 2), (1, 1), "valid"),
    ((1, 9, 8, 2), (2, 3, 2, 3), (1, 1), (3, 1), [[2, 1], [1, 1]]),
    ((2, 1, 9, 2), (1, 3, 2, 2), (1, 1), (1, 2), [[0, 0], [4, 0]]),  # causal, dilated
    ((2, 1, 9, 2), (1, 3, 2, 2), (1, 1), (1, 1), [[0, 0], [2, 0]]),  # causal
    ((2, 11, 3), (3, 3, 4), (2,), (1,), "same"),  # one spatial axis
    ((2, 9, 2), (3, 2, 2), (1,), (2,), [[4, 0]]),  # one spatial axis, causal, dilated
])
def test_convolution_kernels_give_the_derived_sums(x_shape, kernel_shape, strides, dilation,
                                                   padding):
    if len(x_shape) == 3 and not backend.NATIVE_CONV1D:
        pytest.skip("this backend runs a 1-D convolution as the 2-D one on a height-1 image")
    if max(dilation) > 1 and keras.backend.backend() == "tensorflow":
        pytest.skip("TensorFlow's CPU autodiff of a dilated convolution runs the kernels that "
                    "refuse d > 1; the layer table checks these against finite differences")
    x, kernel = _tensor(x_shape), _tensor(kernel_shape)
    y = backend.conv2d(x, kernel, strides, dilation, padding)
    upstream = _tensor(tuple(y.shape))
    grad_x, grad_kernel = _autodiff(
        lambda x, k: backend.conv2d(x, k, strides, dilation, padding), [x, kernel], upstream)
    _close(backend.conv2d_backprop_input(x, kernel, upstream, strides, dilation, padding), grad_x)
    _close(backend.conv2d_backprop_filter(x, kernel, upstream, strides, dilation, padding),
           grad_kernel)


@pytest.mark.parametrize("x_shape, window, strides, padding", [
    ((2, 6, 6, 2), (1, 2, 2, 1), (1, 2, 2, 1), "valid"),
    ((1, 7, 7, 1), (1, 3, 3, 1), (1, 2, 2, 1), "same"),
    ((2, 5, 6, 2), (1, 2, 3, 1), (1, 1, 1, 1), "valid"),  # overlapping windows
    ((2, 1, 10, 2), (1, 1, 3, 1), (1, 1, 2, 1), "same"),
    ((2, 3, 7, 6), (1, 1, 3, 2), (1, 1, 2, 2), "same"),  # channels first
])
def test_pooling_kernels_route_and_share_the_gradient(x_shape, window, strides, padding):
    if window[1] == 1 and window[-1] > 1 and not backend.CHANNELS_FIRST_POOLING:
        pytest.skip("this backend's pooling kernels take channels last only")
    x = _tensor(x_shape, distinct=True)
    y = backend.max_pool2d(x, window, strides, padding)
    upstream = _tensor(tuple(y.shape))
    (expected,) = _autodiff(lambda x: backend.max_pool2d(x, window, strides, padding),
                            [x], upstream)
    _close(backend.max_pool2d_backprop(x, y, upstream, window, strides, padding), expected)
    (expected,) = _autodiff(lambda x: backend.avg_pool2d(x, window, strides, padding),
                            [x], upstream)
    _close(backend.avg_pool2d_backprop(x, upstream, window, strides, padding), expected)


@pytest.mark.parametrize("name, forward, backward", [
    ("relu", keras.ops.relu, lambda g, z, y: backend.relu_backprop(g, y)),
    ("leaky_relu", lambda z: keras.ops.leaky_relu(z, 0.3),
     lambda g, z, y: backend.leaky_relu_backprop(g, z, 0.3)),
    ("elu", keras.ops.elu, lambda g, z, y: backend.elu_backprop(g, y)),
    ("sigmoid", keras.ops.sigmoid, lambda g, z, y: backend.sigmoid_backprop(g, y)),
    ("tanh", lambda z: backend.tanh(z), lambda g, z, y: backend.tanh_backprop(g, y)),
    ("softplus", keras.ops.softplus, lambda g, z, y: backend.softplus_backprop(g, z)),
])
def test_activation_kernels_give_upstream_times_the_derivative(name, forward, backward):
    z = _tensor((4, 9)) * 2.0 + 0.05  # no value at a kink
    upstream = _tensor((4, 9))
    (expected,) = _autodiff(forward, [z], upstream)
    _close(backward(upstream, z, forward(z)), expected)


def test_bias_and_broadcast_kernels_sum_over_the_shared_axes():
    upstream = _tensor((2, 3, 4))
    _close(backend.bias_add_backprop(upstream), keras.ops.sum(upstream, axis=(0, 1)))
    _close(backend.sum_to_shape(upstream, _tensor((3, 1))),
           keras.ops.sum(upstream, axis=(0, 2))[:, None])


def _sparse(values, n_batch=0):
    """``values`` as the backend's sparse tensor (tf.SparseTensor, BCOO; Keras'
    own BCOO tensors batch the first axis, ``n_batch=1``)."""
    if keras.backend.backend() == "jax":
        from jax.experimental import sparse

        return sparse.BCOO.fromdense(values, n_batch=n_batch)
    import tensorflow as tf

    return tf.sparse.from_dense(values)


@pytest.mark.parametrize("n_batch", [0, 1])
def test_a_sparse_input_to_dense_gives_the_dense_outputs_and_gradients(n_batch):
    import custom_layers

    values = RNG.random((6, 5)).astype("float32")
    values *= values >= 0.6
    layer = custom_layers.Dense(3)
    layer.build((6, 5))
    weights = [keras.ops.convert_to_tensor(w) for w in layer.trainable_variables]

    def objective(x):
        return lambda kernel, bias: keras.ops.sum(
            layer.stateless_call([kernel, bias], [], x)[0] ** 2)

    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(_sparse(values, n_batch))),
        values @ keras.ops.convert_to_numpy(layer.kernel) + keras.ops.convert_to_numpy(layer.bias),
        rtol=1e-5, atol=1e-6)
    for sparse_gradient, dense_gradient in zip(
            backend.autodiff_gradients(objective(_sparse(values, n_batch)), weights),
            backend.autodiff_gradients(objective(keras.ops.convert_to_tensor(values)), weights)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(sparse_gradient),
                                   keras.ops.convert_to_numpy(dense_gradient), rtol=1e-5, atol=1e-6)
