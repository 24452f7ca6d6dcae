"""Fixtures shared by the custom_layers tests (the case table and helpers
live in harness.py)."""

import keras
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _restore_keras_globals():
    """Overrides tests/conftest.py's fixture of the same name with the same
    resets — float32 policy and floatx, a fresh Keras session — minus the full
    garbage collection that ``clear_session()`` runs by default, which costs
    ~0.3 s per test once TensorFlow is loaded (a third of this suite's time)."""
    yield
    keras.mixed_precision.set_global_policy("float32")
    keras.backend.set_floatx("float32")
    keras.backend.clear_session(free_memory=False)


@pytest.fixture(scope="module")
def classification_data():
    """32 random 8×8×2 images with 3 labels (learnable: the label depends on the
    image's mean)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8, 8, 2)).astype("float32")
    y = np.digitize(x.mean(axis=(1, 2, 3)), [-0.05, 0.05]).astype("int32")
    return x, y
