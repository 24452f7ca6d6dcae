"""The vendor kernels the ops use where one computes a derived quantity exactly.

Every op of :mod:`custom_layers.ops` is written once against ``keras.ops``
with ``keras.ops.custom_gradient``. Where a backend has a kernel that computes
exactly what a derivation asks for — TensorFlow's ``Conv2DBackpropFilter``
for dE/dw[m,n] = Σ_pq x[m+p, n+q]·dE/dy[p,q], XLA's select-and-scatter for
"send dE/dy to the argmax" — the op calls it through :func:`kernels`, which
returns the module of the backend Keras runs on: :mod:`.tensorflow` or
:mod:`.jax`. Each function there is a few lines that name the kernel and the
equation it computes; the written-out formulas in the ops stay the reference
the kernels are tested against.

A backend without a module (``numpy``, ``openvino``, ``torch``) is refused at
an op's first call, not at import: :class:`UnsupportedBackendError` names the
op and the backends it runs on.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import keras

#: The Keras backends custom_layers' ops run on.
SUPPORTED = ("tensorflow", "jax")


class UnsupportedBackendError(ValueError):
    """An op or option of custom_layers was used on a backend it cannot run on."""


def backend() -> str:
    """The name of the Keras backend in use (``keras.backend.backend()``)."""
    return keras.backend.backend()


def kernels(op: str) -> ModuleType:
    """The kernel module of the current backend, for the op called ``op``
    (named in the error when the backend is not supported)."""
    name = backend()
    if name not in SUPPORTED:
        raise UnsupportedBackendError(
            f"custom_layers.ops.{op} runs on the Keras backends {', '.join(SUPPORTED)}; "
            f"the backend in use is {name!r} (KERAS_BACKEND). Set KERAS_BACKEND to one of "
            f"{', '.join(SUPPORTED)}.")
    return importlib.import_module(f"custom_layers.backends.{name}")


def require(feature: str, *backends: str) -> None:
    """Refuses ``feature`` (an option that exists on ``backends`` only) on
    any other backend, naming both."""
    name = backend()
    if name not in backends:
        raise UnsupportedBackendError(
            f"{feature} needs the {' or '.join(backends)} backend; the backend in use is "
            f"{name!r} (KERAS_BACKEND).")
