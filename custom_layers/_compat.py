"""The one private piece of Keras the layers rely on, in one place.

Keras locks a built layer's state, so that no weight is added after
``build``; its own ``enable_lora`` unlocks the layer's tracker to add the
LoRA weights. :func:`unlocked_state` does the same for ours and fails loudly,
naming what changed, if a Keras release moves that tracker.
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
