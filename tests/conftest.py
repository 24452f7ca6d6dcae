"""Shared test configuration: quiet TensorFlow, two logical CPU devices for
tf.distribute tests, float32 defaults restored after each test."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Split the CPU into two logical devices before TensorFlow initialises it, so
# MirroredStrategy has two replicas to mirror across.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


@pytest.fixture(autouse=True)
def _restore_keras_globals():
    """Each test starts with the float32 policy and a fresh Keras session."""
    yield
    keras.mixed_precision.set_global_policy("float32")
    keras.backend.set_floatx("float32")
    keras.backend.clear_session()
