"""Reshaping, written out: a reshape only renumbers the values, so its
backward renumbers the gradient back — dE/dx = reshape(dE/dy, shape(x)) —
and a transpose's backward is the inverse transpose."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def reshape(x: tf.Tensor, shape) -> tf.Tensor:
    """y = x with ``shape``; dE/dx = dE/dy with the shape of x."""

    @tf.custom_gradient
    def op(x):
        def grad(upstream):
            return tf.reshape(upstream, tf.shape(x))

        return tf.reshape(x, shape), grad

    return op(x)


def transpose(x: tf.Tensor, permutation: Sequence[int]) -> tf.Tensor:
    """y = x with its axes permuted; dE/dx = dE/dy with the inverse permutation."""
    permutation = list(permutation)
    inverse = [permutation.index(axis) for axis in range(len(permutation))]

    @tf.custom_gradient
    def op(x):
        def grad(upstream):
            return tf.transpose(upstream, inverse)

        return tf.transpose(x, permutation), grad

    return op(x)


def flatten(x: tf.Tensor, channels_first: bool = False) -> tf.Tensor:
    """(batch, d1, …, dk) → (batch, d1·…·dk); channels first are moved last
    first, as Keras does, so weights keep their order across data formats."""
    rank = x.shape.rank
    if channels_first and rank > 2:
        x = transpose(x, [0, *range(2, rank), 1])
    size = x.shape[1:].num_elements() if x.shape[1:].is_fully_defined() else -1
    return reshape(x, [tf.shape(x)[0], 1 if rank == 1 else size])
