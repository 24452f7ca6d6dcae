"""Gradient checks of every op in custom_layers.ops, for every option combination.

Each op is compared, in float64 on small random shapes, with a reference forward
written with plain TensorFlow ops: the forward values must agree, the
hand-written backward must equal autodiff of the reference (1e-6 relative) and
central finite differences of the op itself (``check_gradients(numeric=True)``).
The last tests make sure the checker itself fails on a wrong backward pass.
"""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from custom_layers import ops
from custom_layers.testing import GradientMismatchError, check_gradients
from tests.custom_layers.harness import distinct_values


def _normal(rng, shape):
    return rng.standard_normal(shape)


def assert_op_matches_reference(op, reference, inputs, differentiable_outputs=None):
    """Forward values equal, then hand backward == autodiff == finite differences."""
    inputs = [tf.constant(x, tf.float64) for x in inputs]
    actual, expected = op(*inputs), reference(*inputs)
    for a, e in zip(tf.nest.flatten(actual), tf.nest.flatten(expected)):
        assert a.dtype == e.dtype == tf.float64
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)
    report = check_gradients(
        op, reference, inputs, differentiable_outputs=differentiable_outputs,
        rtol=1e-6, numeric=True, numeric_rtol=1e-5,
    )
    assert len(report.autodiff_error) == len(report.numeric_error) == len(inputs)
    return report


# --------------------------------------------------------------------------- conv

def _conv_cases(rank, strides, paddings, dilations):
    """Every (stride, padding, dilation) combination the op supports, each on
    its own random shape; batch 1 and single/many channels alternate."""
    cases = []
    combos = [
        (s, p, d) for s, p, d in itertools.product(strides, paddings, dilations)
        if not (max(s) > 1 and max(d) > 1)
    ]
    for index, (s, p, d) in enumerate(combos):
        rng = np.random.default_rng(index)
        kernel = tuple(int(k) for k in rng.integers(1, 4, size=rank))
        if p != "valid":
            # An even kernel along one axis: an odd amount of padding, whose
            # extra pixel must land where TensorFlow puts it.
            axis, even = index % rank, 2 if rank == 2 or index % 2 else 4
            kernel = kernel[:axis] + (even,) + kernel[axis + 1:]
        # Odd and even sizes, always long enough for one "valid" output.
        spatial = tuple(max(int(n), (k - 1) * r + 2)
                        for n, k, r in zip(rng.integers(4, 8, size=rank), kernel, d))
        batch = 1 if index % 2 == 0 else 2
        in_channels, filters = [(1, 3), (3, 1), (2, 2)][index % 3]
        shape = (batch, *spatial, in_channels)
        cases.append(pytest.param(shape, kernel + (in_channels, filters), s, p, d,
                                  id=f"s{s}-{p}-d{d}-x{shape}-k{kernel}"))
    return cases


@pytest.mark.parametrize(
    "x_shape, kernel_shape, strides, padding, dilation",
    _conv_cases(2, [(1, 1), (2, 2), (2, 1)], ["valid", "same"], [(1, 1), (2, 2), (1, 2)]),
)
def test_conv2d(x_shape, kernel_shape, strides, padding, dilation):
    rng = np.random.default_rng(sum(x_shape))

    def reference(x, kernel):
        return tf.nn.convolution(x, kernel, strides=strides, padding=padding.upper(),
                                 dilations=dilation)

    assert_op_matches_reference(
        lambda x, kernel: ops.conv2d(x, kernel, strides, padding, dilation),
        reference,
        [_normal(rng, x_shape), _normal(rng, kernel_shape)],
    )


@pytest.mark.parametrize(
    "x_shape, kernel_shape, strides, padding, dilation",
    _conv_cases(1, [(1,), (2,), (3,)], ["valid", "same", "causal"], [(1,), (2,), (3,)]),
)
def test_conv1d(x_shape, kernel_shape, strides, padding, dilation):
    rng = np.random.default_rng(sum(x_shape))
    (stride,), (rate,) = strides, dilation

    def reference(x, kernel):
        if padding == "causal":  # all of the padding on the left, then "valid"
            x = tf.pad(x, [[0, 0], [(kernel.shape[0] - 1) * rate, 0], [0, 0]])
        return tf.nn.convolution(x, kernel, strides=stride,
                                 padding="VALID" if padding == "causal" else padding.upper(),
                                 dilations=rate)

    assert_op_matches_reference(
        lambda x, kernel: ops.conv1d(x, kernel, stride, padding, rate),
        reference,
        [_normal(rng, x_shape), _normal(rng, kernel_shape)],
    )


@pytest.mark.parametrize("shape", [(1, 3), (2, 5, 4), (2, 3, 3, 1)], ids=str)
def test_bias_add(shape):
    rng = np.random.default_rng(0)
    assert_op_matches_reference(
        ops.bias_add, lambda y, b: y + b, [_normal(rng, shape), _normal(rng, shape[-1:])]
    )


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
@pytest.mark.parametrize("size, kernel, stride, rate", [(7, 3, 2, 1), (8, 2, 3, 1), (9, 3, 1, 2)])
def test_explicit_padding_gives_tensorflow_output_sizes(padding, size, kernel, stride, rate):
    (before, after), = ops.explicit_padding([size], [kernel], [stride], [rate], padding)
    out = (size + before + after - (kernel - 1) * rate - 1) // stride + 1
    expected = {"valid": (size - (kernel - 1) * rate - 1) // stride + 1}.get(padding, -(-size // stride))
    assert out == expected
    assert before >= 0 and after >= 0
    if padding == "causal":
        assert after == 0


# ------------------------------------------------------------------------ pooling

def _pool_cases(rank, pool_sizes, strides):
    cases = []
    for index, (k, s, p) in enumerate(itertools.product(pool_sizes, strides, ["valid", "same"])):
        rng = np.random.default_rng(100 + index)
        spatial = tuple(int(n) for n in rng.integers(4, 8, size=rank))
        batch, channels = 1 + index % 2, [1, 3][(index // 2) % 2]
        shape = (batch, *spatial, channels)
        cases.append(pytest.param(rank, shape, k, s, p, id=f"{rank}d-k{k}-s{s}-{p}-x{shape}"))
    return cases


@pytest.mark.parametrize(
    "rank, x_shape, pool_size, strides, padding",
    _pool_cases(2, [(2, 2), (3, 2)], [None, (1, 1), (2, 1)]) + _pool_cases(1, [2, 3], [None, 1, 2]),
)
def test_max_pool(rank, x_shape, pool_size, strides, padding):
    hand_written = {1: ops.max_pool1d, 2: ops.max_pool2d}[rank]
    tensorflow_pool = {1: tf.nn.max_pool1d, 2: tf.nn.max_pool2d}[rank]

    def reference(x):
        return tensorflow_pool(x, pool_size, strides or pool_size, padding.upper())

    assert_op_matches_reference(
        lambda x: hand_written(x, pool_size, strides, padding),
        reference,
        [distinct_values(x_shape, seed=sum(x_shape), dtype="float64")],
    )


def test_max_pool_gradient_goes_only_to_the_argmax():
    # One 2×2 window per output; the winner of each gets dE/dy, the rest 0.
    x = tf.constant([[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 7.0, 6.0]], tf.float64)[None, :, :, None]
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = ops.max_pool2d(x, (2, 2))
        objective = tf.reduce_sum(y * tf.constant([[[[10.0], [20.0]]]], tf.float64))
    np.testing.assert_array_equal(y[0, :, :, 0], [[5.0, 7.0]])
    np.testing.assert_array_equal(
        tape.gradient(objective, x)[0, :, :, 0], [[0, 10, 0, 0], [0, 0, 20, 0]]
    )


# --------------------------------------------------------------------- batch norm

BN_LAYOUTS = [((6, 4), -1), ((4, 3, 2), -1), ((3, 2, 3, 2), -1), ((4, 3, 2), 1), ((2, 3, 3, 2), 1)]
BN_CASES = [
    pytest.param(shape, axis, affine, id=f"x{shape}-axis{axis}-{'affine' if affine else 'plain'}")
    for (shape, axis), affine in itertools.product(BN_LAYOUTS, [True, False])
]
EPSILON = 1e-3


def _channel_view(shape, axis):
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return view


def _reduction_axes(shape, axis):
    return [i for i in range(len(shape)) if i != axis % len(shape)]


@pytest.mark.parametrize("x_shape, axis, affine", BN_CASES)
def test_batch_norm_training(x_shape, axis, affine):
    rng = np.random.default_rng(len(x_shape) + axis)
    channels, view = x_shape[axis], _channel_view(x_shape, axis)
    axes = _reduction_axes(x_shape, axis)

    def reference(x, gamma=None, beta=None):
        mean, variance = tf.nn.moments(x, axes)  # differentiated through, unlike the op
        y = (x - tf.reshape(mean, view)) * tf.math.rsqrt(tf.reshape(variance, view) + EPSILON)
        if gamma is not None:
            y = y * tf.reshape(gamma, view) + tf.reshape(beta, view)
        return y, mean, variance

    def op(x, gamma=None, beta=None):
        return ops.batch_norm_training(x, gamma, beta, axis=axis, epsilon=EPSILON)

    inputs = [_normal(rng, x_shape) * 2 + 1]
    if affine:
        inputs += [_normal(rng, channels), _normal(rng, channels)]
    assert_op_matches_reference(op, reference, inputs, differentiable_outputs=[0])


@pytest.mark.parametrize("x_shape, axis, affine", BN_CASES)
def test_batch_norm_inference(x_shape, axis, affine):
    rng = np.random.default_rng(len(x_shape) - axis)
    channels, view = x_shape[axis], _channel_view(x_shape, axis)

    def reference(x, mean, variance, gamma=None, beta=None):
        return tf.nn.batch_normalization(
            x, tf.reshape(mean, view), tf.reshape(variance, view),
            None if beta is None else tf.reshape(beta, view),
            None if gamma is None else tf.reshape(gamma, view), EPSILON,
        )

    def op(x, mean, variance, gamma=None, beta=None):
        return ops.batch_norm_inference(x, mean, variance, gamma, beta, axis=axis, epsilon=EPSILON)

    inputs = [_normal(rng, x_shape), _normal(rng, channels), np.abs(_normal(rng, channels)) + 0.5]
    if affine:
        inputs += [_normal(rng, channels), _normal(rng, channels)]
    assert_op_matches_reference(op, reference, inputs)


# ------------------------------------------------------------------------ dropout

@pytest.mark.parametrize("rate", [0.0, 0.3, 0.75])
@pytest.mark.parametrize("mask_shape", [(3, 4, 5), (3, 1, 5), (1, 1, 5)], ids=str)
@pytest.mark.parametrize("mask_dtype", ["bool", "float64"])
def test_dropout_with_fixed_mask(rate, mask_shape, mask_dtype):
    rng = np.random.default_rng(int(rate * 100))
    mask = tf.constant(rng.uniform(size=mask_shape) >= rate)
    mask = tf.cast(mask, mask_dtype)

    def reference(x):
        return x * tf.cast(mask, x.dtype) / (1.0 - rate)

    assert_op_matches_reference(
        lambda x: ops.dropout(x, mask, rate), reference, [_normal(rng, (3, 4, 5))]
    )


# -------------------------------------------------------------------------- dense

@pytest.mark.parametrize("x_shape", [(1, 5), (4, 3), (2, 3, 4), (1, 1, 2)], ids=str)
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no-bias"])
def test_dense(x_shape, use_bias):
    rng = np.random.default_rng(len(x_shape))
    units = 3

    def reference(x, kernel, bias=None):
        y = tf.einsum("...i,ij->...j", x, kernel)
        return y if bias is None else y + bias

    inputs = [_normal(rng, x_shape), _normal(rng, (x_shape[-1], units))]
    if use_bias:
        inputs.append(_normal(rng, (units,)))
    assert_op_matches_reference(ops.dense, reference, inputs)


# ----------------------------------------------------- the checker can fail at all

def _square_with_gradient(factor):
    """x² whose backward returns factor·2x·dE/dy (correct for factor 1)."""

    @tf.custom_gradient
    def square(x):
        return x * x, lambda upstream: factor * 2.0 * x * upstream

    return square


def _scale_with_wrong_second_gradient(x, w):
    """y = x·w with a correct dE/dx and a dE/dw that misses a sign."""

    @tf.custom_gradient
    def forward(x, w):
        return x * w, lambda upstream: (upstream * w, -tf.reduce_sum(upstream * x))

    return forward(x, w)


def test_check_gradients_passes_a_correct_backward():
    x = tf.constant(np.linspace(-1.0, 1.0, 6), tf.float64)
    report = check_gradients(_square_with_gradient(1.0), tf.square, [x])
    assert report.autodiff_error[0] < 1e-12
    assert report.numeric_error[0] < 1e-6


@pytest.mark.parametrize("factor", [1.001, 0.0, -1.0])
def test_check_gradients_catches_a_wrong_backward_against_autodiff(factor):
    x = tf.constant(np.linspace(-1.0, 1.0, 6), tf.float64)
    with pytest.raises(GradientMismatchError, match="autodiff"):
        check_gradients(_square_with_gradient(factor), tf.square, [x], numeric=False)


@pytest.mark.parametrize("factor", [1.001, 0.0, -1.0])
def test_check_gradients_catches_a_wrong_backward_against_finite_differences(factor):
    x = tf.constant(np.linspace(-1.0, 1.0, 6), tf.float64)
    with pytest.raises(GradientMismatchError, match="finite differences"):
        check_gradients(_square_with_gradient(factor), None, [x], numeric=True)


def test_check_gradients_names_the_input_whose_gradient_is_wrong():
    rng = np.random.default_rng(0)
    x, w = tf.constant(rng.standard_normal(4)), tf.constant(rng.standard_normal(()))
    with pytest.raises(GradientMismatchError, match="input 1"):
        check_gradients(_scale_with_wrong_second_gradient, lambda x, w: x * w, [x, w],
                        numeric=False)
    with pytest.raises(GradientMismatchError, match="input 1"):
        check_gradients(_scale_with_wrong_second_gradient, None, [x, w], numeric=True)


# The last case's mask broadcasts over an axis of x, as Keras allows.
MASKED_BN_CASES = [((6, 3), (6,)), ((4, 5, 3), (4, 5)), ((2, 3, 4, 2), (2, 3, 4)),
                   ((2, 3, 4, 2), (2, 3, 1))]


@pytest.mark.parametrize("x_shape, mask_shape", MASKED_BN_CASES, ids=str)
def test_masked_batch_norm_training(x_shape, mask_shape):
    rng = np.random.default_rng(sum(x_shape))
    mask = rng.uniform(size=mask_shape) > 0.4
    mask.flat[0] = True  # at least one position counts
    mask = tf.constant(mask)
    axes = list(range(len(x_shape) - 1))

    def reference(x, gamma, beta):
        # Keras' masked moments, differentiated by autodiff.
        weights = tf.broadcast_to(tf.cast(mask[..., None], x.dtype), tf.shape(x))
        total = tf.reduce_sum(weights, axes) + 1e-7
        mean = tf.reduce_sum(weights * x, axes) / total
        variance = tf.reduce_sum(weights * tf.square(x - mean), axes) / total
        y = (x - mean) * tf.math.rsqrt(variance + EPSILON) * gamma + beta
        return y, mean, variance

    def op(x, gamma, beta):
        return ops.batch_norm_training(x, gamma, beta, epsilon=EPSILON, mask=mask)

    channels = x_shape[-1]
    inputs = [_normal(rng, x_shape) * 2 + 1, _normal(rng, channels), _normal(rng, channels)]
    assert_op_matches_reference(op, reference, inputs, differentiable_outputs=[0])


@pytest.mark.parametrize("kernel_shape", [(5, 4), (3, 2, 3, 4)], ids=["dense", "conv2d"])
def test_lora_kernel(kernel_shape):
    rng = np.random.default_rng(len(kernel_shape))
    rank, scale = 2, 1.5

    def reference(kernel, lora_a, lora_b):
        return kernel + scale * tf.reshape(
            tf.reshape(lora_a, [-1, rank]) @ lora_b, tf.shape(kernel))

    def op(kernel, lora_a, lora_b):
        return ops.lora_kernel(kernel, lora_a, lora_b, scale)

    inputs = [_normal(rng, kernel_shape), _normal(rng, kernel_shape[:-1] + (rank,)),
              _normal(rng, (rank, kernel_shape[-1]))]
    assert_op_matches_reference(op, reference, inputs)


def test_dense_with_a_sparse_input():
    rng = np.random.default_rng(5)
    dense_x = rng.standard_normal((6, 5)) * (rng.uniform(size=(6, 5)) > 0.6)
    sparse = tf.sparse.from_dense(tf.constant(dense_x))
    kernel = tf.constant(rng.standard_normal((5, 3)))

    def op(values, kernel):
        return ops.dense(tf.SparseTensor(sparse.indices, values, sparse.dense_shape), kernel)

    def reference(values, kernel):
        return tf.scatter_nd(sparse.indices, values, [6, 5]) @ kernel

    assert_op_matches_reference(op, reference, [sparse.values, kernel])
    with tf.GradientTape() as tape:
        tape.watch(kernel)
        y = ops.dense(sparse, kernel)
    assert isinstance(tape.gradient(y, kernel), tf.IndexedSlices)  # only the rows x touches


ACTIVATION_REFERENCES = {
    "linear": lambda z: z * 1.0,
    "relu": tf.nn.relu,
    "leaky_relu": lambda z: tf.nn.leaky_relu(z, 0.2),  # Keras' op: its slope a float32 attribute
    "elu": tf.nn.elu,
    "sigmoid": tf.math.sigmoid,
    "tanh": tf.math.tanh,
    "softplus": tf.math.softplus,
    "silu": tf.nn.silu,
    "gelu": lambda z: 0.5 * z * (1 + tf.math.erf(z / np.sqrt(2.0))),
    "softmax": lambda z: tf.nn.softmax(z, axis=-1),
}


@pytest.mark.parametrize("name", sorted(ACTIVATION_REFERENCES))
def test_activation(name):
    from custom_layers.ops import activations

    assert set(ACTIVATION_REFERENCES) == set(activations.ACTIVATIONS)
    rng = np.random.default_rng(len(name))
    z = rng.standard_normal((3, 4, 5)) * 2
    z[np.abs(z) < 1e-2] += 0.1  # away from the kinks, where finite differences straddle them
    assert_op_matches_reference(activations.get(name), ACTIVATION_REFERENCES[name], [z])


def test_unknown_activation_lists_the_known_ones():
    from custom_layers.ops import activations

    with pytest.raises(ValueError, match="Unknown activation 'swishy': custom_layers derives the "
                                         "backward pass of elu, gelu, leaky_relu, linear, relu"):
        activations.get("swishy")


def test_l2_penalty():
    rng = np.random.default_rng(9)
    assert_op_matches_reference(lambda w: ops.l2_penalty(w, 3e-3),
                                lambda w: 3e-3 * tf.reduce_sum(tf.square(w)),
                                [rng.standard_normal((4, 3))])


@pytest.mark.parametrize("op, reference, shape", [
    (lambda x: ops.expand_dims(x, 1), lambda x: tf.expand_dims(x, 1), (2, 3)),
    (lambda x: ops.squeeze(x, 1), lambda x: tf.squeeze(x, 1), (2, 1, 3)),
    (lambda x: ops.split(x, 3, axis=1), lambda x: tf.split(x, 3, axis=1), (2, 6, 2)),
    (lambda x: ops.concat([x, 2 * x], axis=-1), lambda x: tf.concat([x, 2 * x], axis=-1), (2, 3)),
    (lambda x: ops.transpose(x, [2, 0, 1]), lambda x: tf.transpose(x, [2, 0, 1]), (2, 3, 4)),
], ids=["expand_dims", "squeeze", "split", "concat", "transpose"])
def test_shape_ops(op, reference, shape):
    rng = np.random.default_rng(sum(shape))
    assert_op_matches_reference(op, reference, [rng.standard_normal(shape)])


@pytest.mark.parametrize("argument", ["sigmoid", "keras_function"])
def test_a_layers_activation_argument_uses_the_derived_function(argument):
    import keras

    from custom_layers import Dense
    from custom_layers.ops import activations
    from custom_layers.testing import autodiff_gradients

    activation = "sigmoid" if argument == "sigmoid" else keras.activations.sigmoid
    layer = Dense(3, activation=activation)
    assert layer.activation is activations.sigmoid
    assert layer.get_config()["activation"] == "sigmoid"
    assert keras.layers.Dense.from_config(layer.get_config()).activation is keras.activations.sigmoid

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(layer(x))
        return tape.gradient(y, x)

    with autodiff_gradients() as counts:
        gradient(tf.ones((2, 4)))
    assert "Sigmoid" not in counts and "MatMul" not in counts


def test_a_layers_other_keras_activation_is_kept_and_an_unknown_one_refused():
    import keras

    from custom_layers import Conv1D, Dense

    assert Dense(2, activation="selu").activation is keras.activations.selu
    with pytest.raises(ValueError, match="Unknown activation 'swishy': custom_layers derives .* "
                                         "other names Keras knows"):
        Conv1D(2, 3, activation="swishy")


@pytest.mark.parametrize("name", ["Dense", "Conv1D"])
def test_an_activation_set_to_none_after_construction_means_linear(name):
    import custom_layers

    options = dict(activation="relu", kernel_initializer="ones")
    layer = custom_layers.Dense(2, **options) if name == "Dense" else \
        custom_layers.Conv1D(2, 1, **options)
    layer.activation = None  # as Keras' layers allow
    np.testing.assert_allclose(layer(-tf.ones((1, 3, 2))), np.full((1, 3, 2), -2.0))
