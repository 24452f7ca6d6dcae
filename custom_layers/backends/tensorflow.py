"""TensorFlow's kernels for the derived quantities (see :mod:`custom_layers.backends`).

Each function runs the kernel that computes exactly the named equation, so the
ops' backward passes cost what TensorFlow's own do; the ops' docstrings derive
the equations. Imported only when Keras runs on TensorFlow.
"""

from __future__ import annotations

import keras
import tensorflow as tf

FUSED_BATCH_NORM = True  # FusedBatchNormV3 / FusedBatchNormGradV3 below
NATIVE_CONV1D = False  # a 1-D convolution runs as the 2-D one on a height-1 image
SYNCHRONIZED_BATCH_NORM = True  # sums over the replicas of a tf.distribute strategy
CHANNELS_FIRST_POOLING = False  # the CPU pooling kernels take NHWC only


def _tf_padding(padding):
    """(padding, explicit_paddings) for a raw TF conv op: "valid"/"same" by
    name (oneDNN's fast backward kernels refuse explicit amounts), else the
    ((top, bottom), (left, right)) amounts."""
    if isinstance(padding, str):
        return padding.upper(), []
    return "EXPLICIT", [0, 0, *padding[0], *padding[1], 0, 0]


# --- dense --------------------------------------------------------------------------------

def transposed_matmul(a, b):
    """aᵀ·b without forming aᵀ (``MatMul`` with ``transpose_a``): a dense
    kernel's dE/dW = xᵀ·dE/dy."""
    return tf.matmul(a, b, transpose_a=True)


# --- convolution: y[p,q] = Σ_mn x[p·s + m·d, q·s + n·d]·w[m,n] ----------------------------

def conv2d(x, kernel, strides, dilation_rate, padding):
    """The forward correlation of NHWC ``x`` with an HWIO ``kernel`` (``Conv2D``)."""
    if tuple(dilation_rate) != (1, 1):
        return tf.nn.conv2d(_pad(x, padding), kernel, 1, "VALID", dilations=[1, *dilation_rate, 1])
    name, explicit = _tf_padding(padding)
    return tf.raw_ops.Conv2D(input=x, filter=kernel, strides=[1, *strides, 1], padding=name,
                             explicit_paddings=explicit)


def conv2d_backprop_input(x, kernel, upstream, strides, dilation_rate, padding):
    """dE/dx: the full correlation of dE/dy with the flipped kernel
    (``Conv2DBackpropInput``)."""
    if tuple(dilation_rate) != (1, 1):
        # TensorFlow's CPU kernels refuse d > 1 (then s = 1): pad dE/dy by the
        # kernel's reach, correlate with the flipped, transposed kernel, drop
        # the rows and columns that were padding.
        reach = [(k - 1) * d for k, d in zip(kernel.shape[:2], dilation_rate)]
        full = tf.pad(upstream, [[0, 0], [reach[0]] * 2, [reach[1]] * 2, [0, 0]])
        flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
        grad = tf.nn.conv2d(full, flipped, 1, "VALID", dilations=[1, *dilation_rate, 1])
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        return grad[:, padding[0][0]:padding[0][0] + height, padding[1][0]:padding[1][0] + width]
    name, explicit = _tf_padding(padding)
    return tf.raw_ops.Conv2DBackpropInput(
        input_sizes=tf.shape(x), filter=kernel, out_backprop=upstream, strides=[1, *strides, 1],
        padding=name, explicit_paddings=explicit)


def conv2d_backprop_filter(x, kernel, upstream, strides, dilation_rate, padding):
    """dE/dw[m,n] = Σ_b,pq x[b, p·s + m·d, q·s + n·d]·dE/dy[b,p,q]
    (``Conv2DBackpropFilter``)."""
    if tuple(dilation_rate) != (1, 1):
        # d > 1 (s = 1): a stride-d correlation of x with dE/dy as the kernel,
        # in which the batch axis plays the channel axis.
        grad = tf.nn.conv2d(tf.transpose(_pad(x, padding), [3, 1, 2, 0]),
                            tf.transpose(upstream, [1, 2, 0, 3]),
                            strides=[1, *dilation_rate, 1], padding="VALID")
        return tf.transpose(grad, [1, 2, 0, 3])
    name, explicit = _tf_padding(padding)
    return tf.raw_ops.Conv2DBackpropFilter(
        input=x, filter_sizes=tf.shape(kernel), out_backprop=upstream, strides=[1, *strides, 1],
        padding=name, explicit_paddings=explicit)


def _pad(x, padding):
    return tf.pad(x, [[0, 0], list(padding[0]), list(padding[1]), [0, 0]])


def bias_add(y, bias):
    """y + b along the last axis (``BiasAdd``)."""
    return tf.nn.bias_add(y, bias)


def bias_add_backprop(upstream):
    """dE/db = Σ of dE/dy over every axis but the last (``BiasAddGrad``; oneDNN
    fuses it into the filter gradient)."""
    return tf.raw_ops.BiasAddGrad(out_backprop=upstream)


# --- pooling ------------------------------------------------------------------------------

def max_pool2d(x, window, strides, padding):
    """y[p,q] = max over the window of NHWC ``x`` (``MaxPool``); ``window`` and
    ``strides`` name all four axes, as the kernel takes them."""
    return tf.nn.max_pool2d(x, window, strides, padding.upper())


def max_pool2d_backprop(x, y, upstream, window, strides, padding):
    """dE/dx[m,n] = Σ dE/dy[p,q] over the windows whose argmax (m,n) is, ties
    to the first maximum (``MaxPoolGrad``, which compiles under XLA)."""
    return tf.raw_ops.MaxPoolGrad(orig_input=x, orig_output=y, grad=upstream, ksize=window,
                                  strides=strides, padding=padding.upper())


def avg_pool2d(x, window, strides, padding):
    """y[p] = the mean of the window's inputs inside the tensor (``AvgPool``)."""
    return tf.nn.avg_pool2d(x, window, strides, padding.upper())


def avg_pool2d_backprop(x, upstream, window, strides, padding):
    """dE/dx[m] = Σ_{p: m ∈ W_p} dE/dy[p]/|W_p| (``AvgPoolGrad``)."""
    return tf.raw_ops.AvgPoolGrad(orig_input_shape=tf.shape(x), grad=upstream, ksize=window,
                                  strides=strides, padding=padding.upper())


# --- activations: dE/dz = dE/dy · g'(z) in one sweep --------------------------------------

def relu_backprop(upstream, y):
    """dE/dy · 1[y > 0] (``ReluGrad`` on the output)."""
    return tf.raw_ops.ReluGrad(gradients=upstream, features=y)


def leaky_relu_backprop(upstream, z, negative_slope):
    """dE/dy · (1 if z > 0 else a) (``LeakyReluGrad``)."""
    return tf.raw_ops.LeakyReluGrad(gradients=upstream, features=z, alpha=negative_slope)


def elu_backprop(upstream, y):
    """dE/dy · (1 if y > 0 else y + 1), ELU with a = 1 (``EluGrad``)."""
    return tf.raw_ops.EluGrad(gradients=upstream, outputs=y)


def sigmoid_backprop(upstream, y):
    """dE/dy · σ(1 − σ) from the output (``SigmoidGrad``)."""
    return tf.raw_ops.SigmoidGrad(y=y, dy=upstream)


def tanh(z):
    """tanh z (``Tanh``)."""
    return tf.math.tanh(z)


def tanh_backprop(upstream, y):
    """dE/dy · (1 − tanh²) from the output (``TanhGrad``)."""
    return tf.raw_ops.TanhGrad(y=y, dy=upstream)


def softplus_backprop(upstream, z):
    """dE/dy · σ(z) (``SoftplusGrad``)."""
    return tf.raw_ops.SoftplusGrad(gradients=upstream, features=z)


# --- broadcasting -------------------------------------------------------------------------

def sum_to_shape(upstream, x):
    """dE/dy summed over the axes along which ``x`` was broadcast to dE/dy's
    shape, in x's shape (``BroadcastGradientArgs`` names the axes)."""
    _, axes = tf.raw_ops.BroadcastGradientArgs(s0=tf.shape(upstream), s1=tf.shape(x))
    return tf.reshape(tf.reduce_sum(upstream, axes), tf.shape(x))


# --- batch normalization ------------------------------------------------------------------

def fused_batch_norm(x4, gamma, beta, epsilon):
    """(y, μ_B, m/(m − 1)·σ²_B, saved) for NHWC ``x4`` (``FusedBatchNormV3``
    in training mode; ``saved`` is what its gradient kernel needs)."""
    y, mean, corrected_variance, saved_mean, saved_variance, workspace = \
        tf.raw_ops.FusedBatchNormV3(
            x=tf.stop_gradient(x4), scale=tf.stop_gradient(gamma), offset=tf.stop_gradient(beta),
            mean=tf.zeros([0]), variance=tf.zeros([0]), epsilon=epsilon, is_training=True)
    return y, mean, corrected_variance, (saved_mean, saved_variance, workspace)


def fused_batch_norm_backprop(upstream, x4, gamma, saved, epsilon):
    """(dE/dx, dE/dγ = Σ dE/dy·x̂, dE/dβ = Σ dE/dy) of batch norm in training
    mode, from the three sums in two sweeps (``FusedBatchNormGradV3``)."""
    saved_mean, saved_variance, workspace = saved
    grad_x, grad_gamma, grad_beta, _, _ = tf.raw_ops.FusedBatchNormGradV3(
        y_backprop=upstream, x=x4, scale=gamma, reserve_space_1=saved_mean,
        reserve_space_2=saved_variance, reserve_space_3=workspace,
        epsilon=epsilon, is_training=True)
    return grad_x, grad_gamma, grad_beta


def sum_over_replicas(value):
    """Σ over the replicas of the current ``tf.distribute`` replica context
    (the value itself outside one)."""
    context = tf.distribute.get_replica_context()
    return value if context is None else context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def read_variables(inputs) -> list:
    """The inputs with every variable read into a tensor."""
    return [tf.convert_to_tensor(x) if isinstance(x, (tf.Variable, keras.Variable)) else x
            for x in inputs]


# --- sparse inputs ------------------------------------------------------------------------

def is_sparse(x) -> bool:
    return isinstance(x, tf.SparseTensor)


def sparse_dense(x, kernel):
    """y = x·W for a rank-2 ``tf.SparseTensor`` x whose non-zeros v_k sit at
    (i_k, j_k): dE/dW = Σ_k v_k·dE/dy[i_k] into row j_k (``tf.IndexedSlices``,
    as Keras' Dense gives), dE/dv_k = dE/dy[i_k]·W[j_k]."""
    if x.shape.rank != 2:
        raise ValueError(f"Sparse inputs to dense must have rank 2; received shape {x.shape}.")
    rows, columns = x.indices[:, 0], x.indices[:, 1]

    @tf.custom_gradient
    def forward(values, kernel):
        y = tf.sparse.sparse_dense_matmul(tf.SparseTensor(x.indices, values, x.dense_shape), kernel)

        def grad(upstream):
            upstream_rows = tf.gather(upstream, rows)  # dE/dy[i_k]
            grad_values = tf.reduce_sum(upstream_rows * tf.gather(kernel, columns), axis=-1)
            grad_kernel = tf.IndexedSlices(values[:, None] * upstream_rows, columns,
                                           tf.shape(kernel, out_type=columns.dtype))
            return grad_values, grad_kernel

        return y, grad

    return forward(x.values, tf.convert_to_tensor(kernel))


# --- dropout ------------------------------------------------------------------------------

def dropout_keep_mask(shape, rate, dtype, seed):
    """m: a uniform draw in the input's dtype kept where ≥ r — the draw of
    Keras' dropout on TensorFlow (``stateless_dropout``)."""
    return keras.random.uniform(shape, dtype=dtype, seed=seed) >= rate


# --- autodiff (the reference a written backward is checked against) -----------------------

def autodiff_gradients(objective, inputs) -> list:
    """dE/d(input) of a scalar ``objective(*inputs)`` by ``tf.GradientTape``
    (zeros for an input E does not depend on)."""
    inputs = [tf.convert_to_tensor(x) for x in inputs]
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        value = objective(*inputs)
    gradients = tape.gradient(value, inputs)
    return [tf.zeros_like(x) if g is None else tf.convert_to_tensor(g)
            for g, x in zip(gradients, inputs)]


def repeatable(function):
    """``function`` as it is: evaluated eagerly, as ``tf.test.compute_gradient`` does."""
    return function
