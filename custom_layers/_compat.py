"""The private pieces of Keras and TensorFlow custom_layers relies on, in one place.

Keras locks a built layer's state, so that no weight is added after
``build``; its own ``enable_lora`` unlocks the layer's tracker to add the
LoRA weights. :func:`unlocked_state` does the same for ours and fails loudly,
naming what changed, if a Keras release moves that tracker.

TensorFlow keeps its autodiff's gradient functions in a registry by op type
(``tensorflow.python.framework.ops._gradient_registry``);
:func:`recording_autodiff_gradients` wraps them to record which ones run.
"""

from __future__ import annotations

import contextlib


class UpstreamChanged(RuntimeError):
    """A Keras internal this package relies on is not where it was."""


@contextlib.contextmanager
def unlocked_state(layer):
    """Lets a built ``layer`` add weights inside the block, as Keras' own
    ``enable_lora`` does (``layer._tracker.unlock()`` … ``lock()``)."""
    tracker = getattr(layer, "_tracker", None)
    if tracker is None or not callable(getattr(tracker, "unlock", None)) \
            or not callable(getattr(tracker, "lock", None)):
        raise UpstreamChanged(
            "keras.layers.Layer no longer has the `_tracker` with unlock()/lock() that "
            "enable_lora() uses to add weights to a built layer; custom_layers needs updating "
            "for this Keras release.")
    tracker.unlock()
    try:
        yield
    finally:
        tracker.lock()


@contextlib.contextmanager
def recording_autodiff_gradients(record):
    """Inside the block, every call of a gradient function from TensorFlow's
    registry (its autodiff of a built-in op, by op type) appends that op type
    to the list ``record``. Gradients written with ``tf.custom_gradient`` are
    not looked up there, so they are not recorded; the registry is restored
    on exit."""
    from tensorflow.python.framework import ops as tf_ops

    registry = getattr(getattr(tf_ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):
        raise UpstreamChanged(
            "tensorflow.python.framework.ops._gradient_registry no longer holds its "
            "gradient functions in a `_registry` dict; custom_layers needs updating "
            "for this TensorFlow release.")
    originals = {}
    for op_type, entry in list(registry.items()):
        function = entry.get("type")
        if callable(function):
            originals[op_type] = function
            entry["type"] = _recorded(function, op_type, record)
    try:
        yield record
    finally:
        for op_type, function in originals.items():
            registry[op_type]["type"] = function


def _recorded(function, op_type, record):
    def gradient(*args, **kwargs):
        record.append(op_type)
        return function(*args, **kwargs)

    return gradient
