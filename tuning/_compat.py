"""Workarounds for upstream behaviour that the tuning needs, in one place.

The only module of ``tuning`` that touches private upstream modules
(``keras_tuner.src``, ``tensorflow.python``). Each workaround names the
upstream problem, is switched on by the code that needs it (never at import),
and checks the internals it relies on, raising :class:`UpstreamChanged` when
they have moved instead of quietly doing nothing; ``tests/tuning/test_compat.py``
pins them to the installed versions.
"""

from __future__ import annotations

import contextlib
import json
from typing import Iterator

from custom_layers._compat import UpstreamChanged  # noqa: F401  (one class for every package)
from zoo.files import atomic_write_text


# ----------------------------------------------------------------------------
# Keras Tuner writes its state files in place.
#
# keras_tuner.src.utils.save_json (Keras Tuner 1.4.8) opens oracle.json,
# trial.json and tuner0.json with mode "w" — truncating them — and then
# writes: a search killed in between leaves a file it cannot reload (no
# upstream issue filed; keras-team/keras-tuner#987 is the same symptom after
# a kill). Every Keras Tuner module calls it as ``utils.save_json``, so
# replacing the module attribute for the duration of a search reaches them all.


def _keras_tuner_utils():
    from keras_tuner.src import utils

    for name in ("save_json", "load_json"):
        if not callable(getattr(utils, name, None)):
            raise UpstreamChanged(f"keras_tuner.src.utils.{name} is gone: the atomic writes of "
                                  "Keras Tuner's state need a new hook.")
    return utils


@contextlib.contextmanager
def atomic_keras_tuner_state() -> Iterator[None]:
    """While active, Keras Tuner's JSON state files are written to a
    temporary file and renamed over (a file is old or new, never half
    written), and a corrupt one is named when it is read. Restores Keras
    Tuner's own functions on exit."""
    utils = _keras_tuner_utils()
    save_in_place, load = utils.save_json, utils.load_json

    def save_json(path, obj):
        if "://" in str(path):  # a remote file system: Keras Tuner's own writer
            return save_in_place(path, obj)
        text = json.dumps(obj)
        atomic_write_text(text, path)
        return text

    def load_json(path):
        try:
            return load(path)
        except ValueError as error:  # json.JSONDecodeError, UnicodeDecodeError
            raise ValueError(f"Keras Tuner file {path} is corrupt ({error}); the search cannot be "
                             "resumed: pass overwrite=True (--overwrite) to start it afresh.") from None

    utils.save_json, utils.load_json = save_json, load_json
    try:
        yield
    finally:
        utils.save_json, utils.load_json = save_in_place, load


# ----------------------------------------------------------------------------
# TensorFlow never unregisters a @tf.custom_gradient.
#
# Each trace of a ``tf.custom_gradient`` function registers its gradient as
# "CustomGradient-<uid>" in the global gradient registry, holding the traced
# graph; nothing removes it (tensorflow/tensorflow#27492, #97697). A search
# leaked ~4 MB per trial of a small cnn1d. The registry is
# ``tensorflow.python.framework.ops._gradient_registry._registry``, a dict.

_CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def _gradient_registry() -> dict:
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict) or not callable(getattr(ops, "uid", None)):
        raise UpstreamChanged("TensorFlow's gradient registry (ops._gradient_registry._registry) or "
                              "ops.uid has changed: finished trials' custom gradients can no longer "
                              "be released (tensorflow/tensorflow#27492).")
    return registry


def custom_gradient_mark() -> int:
    """TensorFlow's op uid counter now; what ``@tf.custom_gradient`` registers
    later has a larger uid."""
    from tensorflow.python.framework import ops

    _gradient_registry()
    return ops.uid()


def forget_custom_gradients(since: int) -> int:
    """Removes the gradient functions that ``@tf.custom_gradient`` registered
    after :func:`custom_gradient_mark` returned ``since``; returns how many.
    Only for graphs that are no longer used (a finished trial's models)."""
    registry = _gradient_registry()
    prefix = _CUSTOM_GRADIENT_PREFIX
    names = [name for name in registry if name.startswith(prefix)
             and name[len(prefix):].isdigit() and int(name[len(prefix):]) > since]
    for name in names:
        del registry[name]
    return len(names)


def custom_gradient_count() -> int:
    """How many ``@tf.custom_gradient`` registrations TensorFlow holds now."""
    return sum(name.startswith(_CUSTOM_GRADIENT_PREFIX) for name in _gradient_registry())


def own_oracle(tuner):
    """The tuner's own Oracle: on a distributed worker Keras Tuner wraps it in
    an ``OracleClient`` (its ``_oracle``), elsewhere ``tuner.oracle`` is it."""
    return getattr(tuner.oracle, "_oracle", tuner.oracle)
