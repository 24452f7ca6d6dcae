"""Gradient checks for hand-written backward passes, usable by anyone writing a layer.

``check_gradients`` compares three answers to "what is dE/d(input)?" for
E = Σ u ⊙ f(inputs) with a random cotangent u:

1. the hand-written backward pass of ``op`` (through the backend's autodiff,
   which calls it: ``tf.GradientTape`` on TensorFlow, ``jax.vjp`` on JAX),
2. the backend's autodiff of a plain ``reference`` forward, and
3. optionally, central finite differences of ``op`` itself (step 1/1024,
   as ``tf.test.compute_gradient``), which are independent of any backward pass.

``autodiff_gradients`` answers the other question — "which gradients in
this training step are *not* written out?" — by recording every derivative
rule the backend's autodiff calls inside a block.
"""

from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import keras
import numpy as np

from custom_layers._compat import recording_autodiff_gradients
from custom_layers.backends import kernels

Forward = Callable[..., object]
FINITE_DIFFERENCE_STEP = 1.0 / 1024  # exactly representable, as tf.test.compute_gradient's


class GradientMismatchError(AssertionError):
    """A hand-written gradient disagrees with autodiff or finite differences."""


@dataclass
class GradientReport:
    """Worst relative errors found by :func:`check_gradients`, per input."""

    autodiff_error: list[float] = field(default_factory=list)
    numeric_error: list[float] = field(default_factory=list)


def relative_error(actual, expected) -> float:
    """‖actual − expected‖ / max(‖expected‖, tiny): the size of the mismatch
    relative to the size of the gradient itself."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(np.linalg.norm(expected), np.finfo(np.float64).tiny)
    return float(np.linalg.norm(actual - expected) / scale)


def _as_outputs(value) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _projected(fn: Forward, cotangents) -> Callable:
    """E(inputs) = Σ u ⊙ fn(inputs) over the outputs that carry a cotangent u."""

    def objective(*inputs):
        outputs = _as_outputs(fn(*inputs))
        return sum(keras.ops.sum(out * u) for out, u in zip(outputs, cotangents)
                   if u is not None)

    return objective


def _finite_differences(objective: Callable, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """dE/d(input) by central differences, one element at a time."""
    objective = kernels("check_gradients").repeatable(objective)
    step = FINITE_DIFFERENCE_STEP
    values = [np.array(x) for x in inputs]

    def evaluate():
        return float(keras.ops.convert_to_numpy(objective(*[
            keras.ops.convert_to_tensor(value, value.dtype) for value in values])))

    gradients = []
    for x in values:
        gradient = np.zeros(x.shape, np.float64)
        flat, flat_gradient = x.reshape(-1), gradient.reshape(-1)
        for index in range(flat.size):
            original = flat[index]
            flat[index] = original + step
            above = evaluate()
            flat[index] = original - step
            below = evaluate()
            flat[index] = original
            flat_gradient[index] = (above - below) / (2 * step)
        gradients.append(gradient)
    return gradients


def check_gradients(
    op: Forward,
    reference: Forward | None,
    inputs: Sequence,
    *,
    differentiable_outputs: Sequence[int] | None = None,
    rtol: float = 1e-6,
    numeric: bool = True,
    numeric_rtol: float = 1e-5,
    seed: int = 0,
) -> GradientReport:
    """Checks the backward pass of ``op`` at ``inputs``; raises on a mismatch.

    Args:
        op: the function under test, ``op(*inputs) -> tensor or tuple``.
        reference: the same forward written with ordinary ops (the backend's
            autodiff supplies its gradient), or None to skip that comparison.
        inputs: float tensors/arrays; use float64 for tight tolerances.
        differentiable_outputs: indices of the outputs that carry gradient
            (default: all); e.g. batch statistics returned beside y do not.
        rtol: allowed relative error against the reference's autodiff.
        numeric: also compare against central finite differences.
        numeric_rtol: allowed relative error against finite differences.
        seed: seed of the random cotangent u in E = Σ u ⊙ f(inputs).

    Returns:
        A :class:`GradientReport` with the relative error of every input.
    """
    backend = kernels("check_gradients")
    inputs = [keras.ops.convert_to_tensor(x) for x in inputs]
    outputs = _as_outputs(op(*inputs))
    chosen = range(len(outputs)) if differentiable_outputs is None else differentiable_outputs
    generator = np.random.default_rng(seed)
    cotangents = [
        keras.ops.convert_to_tensor(generator.standard_normal(tuple(out.shape)), out.dtype)
        if i in chosen else None
        for i, out in enumerate(outputs)
    ]
    report = GradientReport()
    hand = backend.autodiff_gradients(_projected(op, cotangents), inputs)

    if reference is not None:
        auto = backend.autodiff_gradients(_projected(reference, cotangents), inputs)
        report.autodiff_error = _compared(hand, auto, rtol, "autodiff of the reference")
    if numeric:
        numerical = _finite_differences(_projected(op, cotangents),
                                        [keras.ops.convert_to_numpy(x) for x in inputs])
        report.numeric_error = _compared(hand, numerical, numeric_rtol, "finite differences")
    return report


def _compared(hand, other, rtol: float, other_name: str) -> list[float]:
    """The relative error of each hand-written gradient against ``other``'s;
    raises GradientMismatchError at the first one above ``rtol``."""
    errors = []
    for index, (h, o) in enumerate(zip(hand, other)):
        errors.append(relative_error(h, o))
        if errors[-1] > rtol:
            raise GradientMismatchError(
                f"input {index}: hand-written gradient differs from {other_name} "
                f"by {errors[-1]:.3g} (relative), allowed {rtol:g}."
            )
    return errors


@contextlib.contextmanager
def autodiff_gradients() -> Iterator[collections.Counter]:
    """Counts the derivative rules of the backend's autodiff called inside
    the block, by the operation they differentiate — TensorFlow's gradient
    functions by op type (e.g. ``{"MatMul": 2, "Relu": 1}``), JAX's JVP rules
    by primitive (``{"dot_general": 2, ...}``); the backward passes written
    with ``keras.ops.custom_gradient`` — every op of :mod:`custom_layers.ops` —
    are not among them. Derivatives are built when a step is traced, so trace
    the step (a first ``fit``) inside the block::

        with autodiff_gradients() as counts:
            model.fit(x, y, epochs=1, verbose=0)
        print(counts)   # only bookkeeping (Cast, Sum, …) for a custom model
    """
    record: list[str] = []
    counts: collections.Counter = collections.Counter()
    with recording_autodiff_gradients(record):
        try:
            yield counts
        finally:
            counts.update(record)
