"""The private pieces of Keras and TensorFlow custom_layers relies on, in one place.

Keras locks a built layer's state, so that no weight is added after
``build``; its own ``enable_lora`` unlocks the layer's tracker to add the
LoRA weights. :func:`unlocked_state` does the same for ours and fails loudly,
naming what changed, if a Keras release moves that tracker.

``GradientStatistics`` (``custom_layers.inspect``) records chosen steps of a
running ``fit``: Keras has no public hook between a step's gradients and
their application, nor a way to run one step differently. Its ``fit`` calls
``model.train_function`` afresh at every step and ``apply_gradients`` of the
model's optimizer, so :func:`traced_train_function` and
:func:`use_train_function` swap a second, tapped step in for the recorded
steps, and :func:`observe_gradients` reads the gradients on their way to
the optimizer.

Keras' softmax leaves its logits on a TensorFlow graph tensor
(``_keras_logits``) and its cross-entropy reads them back, to compute the
loss from the logits; :func:`attach_logits` and :func:`attached_logits` do
the same for ours, so that a softmax head followed by the cross-entropy is
fused as Keras' is.

TensorFlow keeps its autodiff's gradient functions in a registry by op type
(``tensorflow.python.framework.ops._gradient_registry``), JAX its JVP rules
in a dict by primitive (``jax.interpreters.ad.primitive_jvps``);
:func:`recording_autodiff_gradients` wraps them to record which ones run.
"""

from __future__ import annotations

import contextlib

import keras


KERAS_LOGITS = "_keras_logits"  # the attribute Keras' softmax and cross-entropy share


def attach_logits(probabilities, logits):
    """Leaves ``logits`` on the softmax output ``probabilities`` as Keras'
    softmax does, where the tensor can carry them (TensorFlow's graph
    tensors; not eager tensors nor JAX arrays); returns ``probabilities``."""
    try:
        setattr(probabilities, KERAS_LOGITS, logits)
    except AttributeError:
        pass
    return probabilities


def attached_logits(probabilities):
    """The logits a softmax output carries (:func:`attach_logits`), or None."""
    return getattr(probabilities, KERAS_LOGITS, None)


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


def traced_train_function(model):
    """A second compiled training step of ``model``, traced afresh without
    XLA (``make_train_function(force=True)``), leaving ``fit``'s own step in
    place: what it traces while taps are attached, it records."""
    if not callable(getattr(model, "make_train_function", None)) \
            or not hasattr(model, "train_function") or not hasattr(model, "jit_compile"):
        raise UpstreamChanged(
            "keras.Model no longer has make_train_function(force=True), train_function and "
            "jit_compile, through which fit() runs its step; custom_layers.inspect needs updating "
            "for this Keras release.")
    plain, jit_compile = model.train_function, model.jit_compile
    model.jit_compile = False
    try:
        model.make_train_function(force=True)
        return model.train_function
    finally:
        model.jit_compile = jit_compile
        model.train_function = plain


def use_train_function(model, step) -> None:
    """Makes ``fit`` run ``step`` (a function from :func:`traced_train_function`,
    or its own) from its next step on."""
    model.train_function = step


def observe_gradients(optimizer, observe):
    """Makes ``optimizer.apply_gradients`` call ``observe(pairs)`` with the
    (gradient, variable) pairs before applying them; returns the function
    that undoes it."""
    original = optimizer.apply_gradients
    had_own = "apply_gradients" in vars(optimizer)

    def apply_gradients(grads_and_vars, *args, **kwargs):
        pairs = list(grads_and_vars)
        observe(pairs)
        return original(pairs, *args, **kwargs)

    optimizer.apply_gradients = apply_gradients

    def restore():
        if had_own:
            optimizer.apply_gradients = original
        else:
            vars(optimizer).pop("apply_gradients", None)

    return restore


@contextlib.contextmanager
def recording_autodiff_gradients(record):
    """Inside the block, every call of a derivative rule of the backend's
    autodiff appends the name of what it differentiates to the list
    ``record``: TensorFlow's gradient functions (by op type), JAX's JVP rules
    (by primitive). Rules written with a custom gradient are not looked up
    there, so they are not recorded; the registry is restored on exit."""
    if keras.backend.backend() == "jax":
        registry, key, names = _jax_jvp_rules()
    else:
        registry, key, names = _tensorflow_gradient_functions()
    originals = {}
    for entry_key, entry in list(registry.items()):
        function = entry.get(key) if key is not None else entry
        if callable(function):
            originals[entry_key] = function
            wrapped = _recorded(function, names(entry_key), record)
            if key is None:
                registry[entry_key] = wrapped
            else:
                entry[key] = wrapped
    try:
        yield record
    finally:
        for entry_key, function in originals.items():
            if key is None:
                registry[entry_key] = function
            else:
                registry[entry_key][key] = function


def _tensorflow_gradient_functions():
    """TensorFlow's gradient registry: {op type: {"type": gradient function}}."""
    from tensorflow.python.framework import ops as tf_ops

    registry = getattr(getattr(tf_ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):
        raise UpstreamChanged(
            "tensorflow.python.framework.ops._gradient_registry no longer holds its "
            "gradient functions in a `_registry` dict; custom_layers needs updating "
            "for this TensorFlow release.")
    return registry, "type", str


def _jax_jvp_rules():
    """JAX's JVP rules: {primitive: rule} (``jax.interpreters.ad.primitive_jvps``)."""
    import jax
    from jax.interpreters import ad

    # Traces are cached (jax.numpy's jitted functions among them): start from
    # none, so that every rule of the traced step runs inside the block.
    jax.clear_caches()
    registry = getattr(ad, "primitive_jvps", None)
    if not isinstance(registry, dict) or not registry:
        raise UpstreamChanged(
            "jax.interpreters.ad.primitive_jvps is no longer the dict of JVP rules by "
            "primitive; custom_layers needs updating for this JAX release.")
    return registry, None, lambda primitive: getattr(primitive, "name", str(primitive))


def _recorded(function, op_type, record):
    def gradient(*args, **kwargs):
        record.append(op_type)
        return function(*args, **kwargs)

    return gradient
