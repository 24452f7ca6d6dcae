"""Reshaping, written out: a reshape only renumbers the values, so its
backward renumbers the gradient back — dE/dx = reshape(dE/dy, shape(x)) —
a transpose's backward is the inverse transpose, inserting a size-1 axis is
undone by removing it, and splitting along an axis is undone by
concatenating (and the other way round)."""

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


def expand_dims(x: tf.Tensor, axis: int) -> tf.Tensor:
    """y = x with a size-1 axis inserted at ``axis``; dE/dx = dE/dy without it."""

    @tf.custom_gradient
    def op(x):
        def grad(upstream):
            return tf.squeeze(upstream, axis)

        return tf.expand_dims(x, axis), grad

    return op(x)


def squeeze(x: tf.Tensor, axis: int) -> tf.Tensor:
    """y = x without its size-1 axis ``axis``; dE/dx = dE/dy with it put back."""

    @tf.custom_gradient
    def op(x):
        def grad(upstream):
            return tf.expand_dims(upstream, axis)

        return tf.squeeze(x, axis), grad

    return op(x)


def split(x: tf.Tensor, parts: int, axis: int = -1) -> list[tf.Tensor]:
    """``parts`` equal slices of x along ``axis``; dE/dx = the slices'
    gradients concatenated back in order."""

    @tf.custom_gradient
    def op(x):
        def grad(*upstream):
            return tf.concat(upstream, axis)

        return tf.split(x, parts, axis), grad

    return op(x)


def concat(inputs: Sequence[tf.Tensor], axis: int = -1) -> tf.Tensor:
    """The inputs joined along ``axis``; dE/dx_k = dE/dy's slice where x_k lies."""

    @tf.custom_gradient
    def op(*inputs):
        sizes = [tf.shape(x)[axis] for x in inputs]

        def grad(upstream):
            return tf.split(upstream, sizes, axis)

        return tf.concat(inputs, axis), grad

    return op(*inputs)
