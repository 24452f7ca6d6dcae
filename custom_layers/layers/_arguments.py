"""Argument normalisation and validation shared by the layers (Keras-style errors)."""

from __future__ import annotations

from typing import Iterable


def positive_int(value, name: str) -> int:
    """An integer > 0, or a ValueError that quotes the received value."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a strictly positive integer. "
            f"Received {name}={value!r}."
        )
    return value


def positive_tuple(value, rank: int, name: str) -> tuple[int, ...]:
    """An int or a length-``rank`` sequence of ints > 0, as a tuple of length ``rank``."""
    if isinstance(value, int) and not isinstance(value, bool):
        values = (value,) * rank
    else:
        try:
            values = tuple(value)
        except TypeError:
            values = ()
        if len(values) != rank:
            raise ValueError(
                f"Invalid value for argument `{name}`. Expected an int or a tuple of {rank} "
                f"ints. Received {name}={value!r}."
            )
    for item in values:
        if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
            raise ValueError(
                f"Invalid value for argument `{name}`. Expected strictly positive integers. "
                f"Received {name}={value!r}."
            )
    return values


def choice(value, allowed: Iterable[str], name: str) -> str:
    """A case-insensitive choice among ``allowed``, returned lower-case."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected one of {allowed}. "
            f"Received {name}={value!r}."
        )
    return value.lower()


def dropout_rate(value, name: str = "rate") -> float:
    """A probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a float in [0, 1). "
            f"Received {name}={value!r}."
        )
    return float(value)
