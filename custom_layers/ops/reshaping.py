"""Reshaping, written out: a reshape only renumbers the values, so its
backward renumbers the gradient back — dE/dx = reshape(dE/dy, shape(x)) —
a transpose's backward is the inverse transpose, inserting a size-1 axis is
undone by removing it, and splitting along an axis is undone by
concatenating (and the other way round)."""

from __future__ import annotations

import math
from typing import Sequence

from keras import ops

from custom_layers.ops._gradient import custom_gradient


def reshape(x, shape):
    """y = x with ``shape``; dE/dx = dE/dy with the shape of x."""

    @custom_gradient
    def op(x):
        def grad(upstream):
            return ops.reshape(upstream, ops.shape(x))

        return ops.reshape(x, shape), grad

    return op(x)


def transpose(x, permutation: Sequence[int]):
    """y = x with its axes permuted; dE/dx = dE/dy with the inverse permutation."""
    permutation = list(permutation)
    inverse = [permutation.index(axis) for axis in range(len(permutation))]

    @custom_gradient
    def op(x):
        def grad(upstream):
            return ops.transpose(upstream, inverse)

        return ops.transpose(x, permutation), grad

    return op(x)


def flatten(x, channels_first: bool = False):
    """(batch, d1, …, dk) → (batch, d1·…·dk); channels first are moved last
    first, as Keras does, so weights keep their order across data formats."""
    rank = len(x.shape)
    if channels_first and rank > 2:
        x = transpose(x, [0, *range(2, rank), 1])
    rest = tuple(x.shape[1:])
    size = math.prod(rest) if all(isinstance(d, int) for d in rest) else -1
    return reshape(x, (ops.shape(x)[0], 1 if rank == 1 else size))


def expand_dims(x, axis: int):
    """y = x with a size-1 axis inserted at ``axis``; dE/dx = dE/dy without it."""

    @custom_gradient
    def op(x):
        def grad(upstream):
            return ops.squeeze(upstream, axis)

        return ops.expand_dims(x, axis), grad

    return op(x)


def squeeze(x, axis: int):
    """y = x without its size-1 axis ``axis``; dE/dx = dE/dy with it put back."""

    @custom_gradient
    def op(x):
        def grad(upstream):
            return ops.expand_dims(upstream, axis)

        return ops.squeeze(x, axis), grad

    return op(x)


def split(x, parts: int, axis: int = -1) -> list:
    """``parts`` equal slices of x along ``axis``; dE/dx = the slices'
    gradients concatenated back in order."""

    @custom_gradient
    def op(x):
        def grad(upstream):
            return ops.concatenate(list(upstream), axis)

        return ops.split(x, parts, axis), grad

    return op(x)


def concat(inputs, axis: int = -1):
    """The inputs joined along ``axis``; dE/dx_k = dE/dy's slice where x_k lies
    (the sizes along ``axis`` must be static)."""
    boundaries = list(_cumulative([x.shape[axis] for x in inputs]))[:-1]

    @custom_gradient
    def op(*inputs):
        def grad(upstream):
            return ops.split(upstream, boundaries, axis)

        return ops.concatenate(list(inputs), axis), grad

    return op(*inputs)


def _cumulative(sizes):
    total = 0
    for size in sizes:
        total += size
        yield total
