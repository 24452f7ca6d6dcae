"""Gradient checks for hand-written backward passes, usable by anyone writing a layer.

``check_gradients`` compares three answers to "what is dE/d(input)?" for
E = Σ u ⊙ f(inputs) with a random cotangent u:

1. the hand-written backward pass of ``op`` (through ``tf.GradientTape``),
2. TensorFlow's autodiff of a plain ``reference`` forward, and
3. optionally, a central finite-difference Jacobian (``tf.test.compute_gradient``)
   of ``op`` itself, which is independent of any backward pass.

``autodiff_gradients`` answers the other question — "which gradients in
this training step are *not* written out?" — by recording every gradient
function TensorFlow's autodiff calls inside a block.
"""

from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from custom_layers._compat import recording_autodiff_gradients

Forward = Callable[..., "tf.Tensor | Sequence[tf.Tensor]"]


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


def _as_outputs(value) -> list[tf.Tensor]:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _tape_gradients(fn: Forward, inputs: list[tf.Tensor], cotangents) -> list[tf.Tensor]:
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = _as_outputs(fn(*inputs))
        objective = tf.add_n(
            [tf.reduce_sum(out * u) for out, u in zip(outputs, cotangents) if u is not None]
        )
    grads = tape.gradient(objective, inputs)
    return [tf.zeros_like(x) if g is None else tf.convert_to_tensor(g) for g, x in zip(grads, inputs)]


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
        reference: the same forward written with ordinary TF ops (autodiff
            supplies its gradient), or None to skip that comparison.
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
    inputs = [tf.convert_to_tensor(x) for x in inputs]
    outputs = _as_outputs(op(*inputs))
    chosen = range(len(outputs)) if differentiable_outputs is None else differentiable_outputs
    generator = np.random.default_rng(seed)
    cotangents = [
        tf.constant(generator.standard_normal(out.shape), out.dtype) if i in chosen else None
        for i, out in enumerate(outputs)
    ]
    report = GradientReport()
    hand = _tape_gradients(op, inputs, cotangents)

    if reference is not None:
        auto = _tape_gradients(reference, inputs, cotangents)
        for index, (h, a) in enumerate(zip(hand, auto)):
            error = relative_error(h, a)
            report.autodiff_error.append(error)
            if error > rtol:
                raise GradientMismatchError(
                    f"input {index}: hand-written gradient differs from autodiff of the "
                    f"reference by {error:.3g} (relative), allowed {rtol:g}."
                )

    if numeric:
        def projected(*xs):
            outs = _as_outputs(op(*xs))
            return tf.add_n(
                [tf.reduce_sum(out * u) for out, u in zip(outs, cotangents) if u is not None]
            )

        theoretical, numerical = tf.test.compute_gradient(projected, inputs)
        for index, (t, n, h) in enumerate(zip(theoretical, numerical, hand)):
            error = relative_error(t, n)
            report.numeric_error.append(error)
            if error > numeric_rtol:
                raise GradientMismatchError(
                    f"input {index}: hand-written gradient differs from finite differences "
                    f"by {error:.3g} (relative), allowed {numeric_rtol:g}."
                )
    return report


@contextlib.contextmanager
def autodiff_gradients() -> Iterator[collections.Counter]:
    """Counts, by op type, the gradient functions of TensorFlow's autodiff
    called inside the block (e.g. ``{"MatMul": 2, "Relu": 1}``); the
    backward passes written with ``tf.custom_gradient`` — every op of
    :mod:`custom_layers.ops` — are not among them. Gradients are built when
    a step is traced, so trace the step (a first ``fit``) inside the block::

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
