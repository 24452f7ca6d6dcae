"""Bad arguments and bad inputs fail early with a ValueError that names the
argument (and quotes what was received)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import custom_layers
from custom_layers import ops

BAD_ARGUMENTS = [
    # (layer, constructor arguments, the argument the message must name)
    ("Dropout", dict(rate=-0.1), "rate"),
    ("Dropout", dict(rate=1.5), "rate"),
    ("Dropout", dict(rate="0.5"), "rate"),
    ("Dense", dict(units=-3), "units"),
    ("Dense", dict(units=2.5), "units"),
    ("Conv1D", dict(filters=0, kernel_size=3), "filters"),
    ("Conv1D", dict(filters=4, kernel_size=0), "kernel_size"),
    ("Conv1D", dict(filters=4, kernel_size=(3, 3)), "kernel_size"),
    ("Conv1D", dict(filters=4, kernel_size=3, strides=0), "strides"),
    ("Conv1D", dict(filters=4, kernel_size=3, dilation_rate=-1), "dilation_rate"),
    ("Conv1D", dict(filters=4, kernel_size=3, padding="full"), "padding"),
    ("Conv1D", dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), "strides"),
    ("Conv2D", dict(filters=-1, kernel_size=3), "filters"),
    ("Conv2D", dict(filters=4, kernel_size=(3, 0)), "kernel_size"),
    ("Conv2D", dict(filters=4, kernel_size=3, strides=(1, -1)), "strides"),
    ("Conv2D", dict(filters=4, kernel_size=3, padding="causal"), "padding"),
    ("Conv2D", dict(filters=4, kernel_size=3, padding="bogus"), "padding"),
    ("Conv2D", dict(filters=4, kernel_size=3, strides=(1, 2), dilation_rate=(2, 1)),
     "dilation_rate"),
    ("MaxPooling1D", dict(pool_size=0), "pool_size"),
    ("MaxPooling1D", dict(pool_size=2, strides=0), "strides"),
    ("MaxPooling1D", dict(pool_size=2, padding="causal"), "padding"),
    ("MaxPooling2D", dict(pool_size=(2, 0)), "pool_size"),
    ("MaxPooling2D", dict(pool_size=2, strides=-1), "strides"),
    ("MaxPooling2D", dict(pool_size=2, padding="full"), "padding"),
    ("BatchNormalization", dict(momentum=1.5), "momentum"),
    ("BatchNormalization", dict(epsilon=0.0), "epsilon"),
    ("BatchNormalization", dict(axis="channels"), "axis"),
]


@pytest.mark.parametrize(
    "name, kwargs, argument", BAD_ARGUMENTS,
    ids=[f"{name}-{'-'.join(f'{k}={v}' for k, v in kwargs.items())}"
         for name, kwargs, _ in BAD_ARGUMENTS],
)
def test_bad_constructor_argument_is_named(name, kwargs, argument):
    with pytest.raises(ValueError, match=rf"`{argument}\b") as error:
        getattr(custom_layers, name)(**kwargs)
    assert "Received" in str(error.value)


#: (id, call, exception type, the whole message's pattern)
MESSAGES = [
    ("Dropout rate above 1", lambda: custom_layers.Dropout(1.5), ValueError,
     r"Invalid value received for argument `rate`\. Expected a float value between 0 and 1\. "
     r"Received: rate=1\.5"),
    ("Dropout noise_shape a string", lambda: custom_layers.Dropout(0.5, noise_shape="Invalid"),
     ValueError, r"`noise_shape`\. Expected a tuple or list of integers\. Received: noise_shape=Invalid"),
    ("Dropout noise_shape of 0", lambda: custom_layers.Dropout(0.5, noise_shape=(None, 0)),
     ValueError, r"`noise_shape`\. Expected all dimensions to be positive integers or None\. "
                 r"Received negative or zero value at index 1: 0"),
    ("Conv2D of 0 filters", lambda: custom_layers.Conv2D(0, 3), ValueError,
     r"Invalid value for argument `filters`\. Expected a strictly positive value\. "
     r"Received filters=0\."),
    ("Conv2D filters not divisible by groups", lambda: custom_layers.Conv2D(5, 3, groups=2),
     ValueError, r"The number of filters must be evenly divisible by the number of groups\. "
                 r"Received: groups=2, filters=5\."),
    ("Conv2D input channels not divisible by groups",
     lambda: custom_layers.Conv2D(4, 3, groups=2)(keras.Input((5, 5, 3))), ValueError,
     r"The number of input channels must be evenly divisible by the number of groups\. "
     r"Received groups=2, but the input has 3 channels"),
    ("renorm clipping with an unknown key",
     lambda: custom_layers.BatchNormalization(renorm=True, renorm_clipping={"rmaxx": 2}), ValueError,
     r"Received invalid keys for `renorm_clipping` argument: \{'rmaxx': 2\}\. "
     r"Supported values: \['rmax', 'rmin', 'dmax'\]\."),
    ("renorm clipping rmax below rmin",
     lambda: custom_layers.BatchNormalization(renorm=True, renorm_clipping={"rmax": 1, "rmin": 2}),
     ValueError, r"rmax should be greater than rmin in the `renorm_clipping` argument"),
    ("Conv2D with a 0 stride", lambda: custom_layers.Conv2D(2, 3, strides=(1, 0)), ValueError,
     r"The `strides` argument must be a tuple of 2 integers\. Received strides=\(1, 0\), "
     r"including values \{0\} that do not satisfy `value > 0`"),
    ("Conv2D kernel larger than its input",
     lambda: custom_layers.Conv2D(1, 5)(keras.Input((3, 3, 1))), ValueError,
     r"Computed output size would be zero or negative\. Received `inputs shape=\(None, 3, 3, 1\)`, "
     r"`kernel shape=\(5, 5\)`"),
    ("MaxPooling1D window larger than its input",
     lambda: custom_layers.MaxPooling1D(4)(keras.Input((3, 2))), ValueError,
     r"Computed output size would be zero or negative\. Received: `inputs\.shape=\(None, 3, 2\)`, "
     r"`pool_size=\(4,\)`"),
    ("Dense of 0 units", lambda: custom_layers.Dense(0), ValueError,
     r"`units`\. Expected a positive integer\. Received: units=0"),
    ("Dense on strings", lambda: custom_layers.Dense(3)(tf.constant([["a", "b"]])), TypeError,
     r"expects numeric inputs \(float or int\), received dtype string"),
]


@pytest.mark.parametrize("call, error, pattern", [row[1:] for row in MESSAGES],
                         ids=[row[0] for row in MESSAGES])
def test_bad_arguments_and_inputs_get_the_message(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


WRONG_RANK = [
    # (layer, constructor arguments, input shape, what the message must say)
    ("Conv2D", dict(filters=2, kernel_size=3), (2, 5, 5), "expected ndim=4, found ndim=3"),
    ("Conv1D", dict(filters=2, kernel_size=3), (2, 5, 5, 1), "expected ndim=3, found ndim=4"),
    ("Dense", dict(units=2), (3,), "expected min_ndim=2, found ndim=1"),
    ("MaxPooling2D", dict(), (2, 6, 6), "expected ndim=4, found ndim=3"),
    ("MaxPooling1D", dict(), (2, 6), "expected ndim=3, found ndim=2"),
    ("BatchNormalization", dict(axis=3), (2, 3), "`axis`"),
]


@pytest.mark.parametrize("name, kwargs, shape, message", WRONG_RANK,
                         ids=[f"{name}-{len(shape)}d" for name, _, shape, _ in WRONG_RANK])
def test_input_of_the_wrong_rank_is_rejected(name, kwargs, shape, message):
    layer = getattr(custom_layers, name)(**kwargs)
    with pytest.raises(ValueError, match=message):
        layer(np.zeros(shape, "float32"))


def test_built_layer_rejects_a_different_channel_count():
    layer = custom_layers.Conv2D(2, 3)
    layer(np.zeros((1, 5, 5, 3), "float32"))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 3"):
        layer(np.zeros((1, 5, 5, 4), "float32"))


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: ops.dropout(tf.ones(3), tf.ones(3), 1.5), "rate"),
        (lambda: ops.dropout(tf.ones(3), tf.ones(3), -0.1), "rate"),
        (lambda: ops.conv2d(tf.ones((1, 6, 6, 1)), tf.ones((3, 3, 1, 1)), (2, 2), "valid",
                            (2, 2)), "dilation_rate"),
        (lambda: ops.conv2d(tf.ones((1, 6, 6, 1)), tf.ones((3, 3, 1, 1)), padding="full"),
         "padding"),
        (lambda: ops.max_pool2d(tf.ones((1, 4, 4, 1)), padding="causal"), "padding"),
        (lambda: ops.avg_pool2d(tf.ones((1, 4, 4, 1)), data_format="NCHW"), "data_format"),
    ],
    ids=["dropout-rate-above-1", "dropout-rate-negative", "conv-strides-and-dilation",
         "conv-padding", "pool-padding", "pool-data-format"],
)
def test_ops_reject_bad_arguments(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
