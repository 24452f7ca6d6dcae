"""Argument checks in Keras' wording, for the layers and everything built on them.

Every check raises ``ValueError("Invalid value for argument `name`. Expected
... Received: name=...")`` — the sentence Keras' own layers use — and
returns the value normalised. ``zoo`` and ``tuning`` use the same checks, so
a bad argument reads the same wherever it is caught.
"""

from __future__ import annotations

import difflib
import math
import numbers
from typing import Any, Iterable


def positive_tuple(value, rank: int, name: str) -> tuple[int, ...]:
    """An int or a length-``rank`` sequence of ints > 0, as a tuple of length
    ``rank``; refused in the words of Keras' own layers (its ``standardize_tuple``)."""
    message = f"The `{name}` argument must be a tuple of {rank} integers. Received {name}={value}"
    if isinstance(value, int) and not isinstance(value, bool):
        values = (value,) * rank
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise ValueError(message) from None
        if len(values) != rank:
            raise ValueError(message)
        for item in values:
            if isinstance(item, bool) or not isinstance(item, int):
                raise ValueError(f"{message}including element {item} of type {type(item)}")
    bad = {item for item in values if item <= 0}
    if bad:
        raise ValueError(f"{message}, including values {bad} that do not satisfy `value > 0`")
    return values


DATA_FORMATS = ("channels_last", "channels_first")


def standardize_data_format(value) -> str:
    """Keras' ``data_format``: None (``keras.config.image_data_format()``),
    "channels_last" or "channels_first", in Keras' wording when it is neither."""
    if value is None:
        import keras

        return keras.config.image_data_format()
    value = str(value).lower()
    if value not in DATA_FORMATS:
        raise ValueError("The `data_format` argument must be one of "
                         f"{{'channels_first', 'channels_last'}}. Received: data_format={value}")
    return value


def not_implemented_unless_default(owner: str, feature: str, **arguments: tuple[Any, Any]) -> None:
    """Refuses Keras arguments given a value whose computation ``owner`` does
    not implement: ``arguments`` maps each name to (value, the one accepted
    value); accepted values pass, so Keras configs with them load."""
    for name, (value, accepted) in arguments.items():
        if value != accepted:
            raise NotImplementedError(
                f"{owner} does not implement {feature}: {name}={value!r} is not supported "
                f"(only {name}={accepted!r}).")


def build_at_init(layer) -> None:
    """Marks a layer without weights built at construction, as Keras' own
    stateless layers are — unless a subclass defines ``build``, which must run."""
    import keras

    if type(layer).build is keras.layers.Layer.build:
        layer.built = True


def invalid(name: str, expected: str, value: Any) -> ValueError:
    """The error for a bad argument: "Invalid value for argument `name`.
    Expected <expected>. Received: name=<value>."."""
    return ValueError(f"Invalid value for argument `{name}`. Expected {expected}. "
                      f"Received: {name}={value!r}.")


def check_int(value, name: str, minimum: int | None = None, allow_none: bool = False) -> int | None:
    """An integer (not a bool) ≥ ``minimum``; None passes when ``allow_none``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or (minimum is not None and value < minimum):
        # "a positive integer": Keras' own wording for units and filters, which its tests match.
        kind = ("a positive integer" if minimum == 1 else
                f"an integer{'' if minimum is None else f' >= {minimum}'}")
        raise invalid(name, f"{kind}{' or None' if allow_none else ''}", value)
    return int(value)


def check_number(value, name: str, minimum: float | None = None, maximum: float | None = None,
                 minimum_inclusive: bool = True, maximum_inclusive: bool = True,
                 allow_none: bool = False) -> float | None:
    """A finite real number (not a bool) within the bounds; None passes when ``allow_none``."""
    if value is None and allow_none:
        return None
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value >= minimum if minimum_inclusive else value > minimum
    if ok and maximum is not None:
        ok = value <= maximum if maximum_inclusive else value < maximum
    if not ok:
        bounds = []
        if minimum is not None:
            bounds.append(f"{'>=' if minimum_inclusive else '>'} {minimum:g}")
        if maximum is not None:
            bounds.append(f"{'<=' if maximum_inclusive else '<'} {maximum:g}")
        expected = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
        raise invalid(name, expected + (" or None" if allow_none else ""), value)
    return float(value)


def check_bool(value, name: str) -> bool:
    """True or False."""
    if not isinstance(value, bool):
        raise invalid(name, "True or False", value)
    return value


def check_choice(value, allowed: Iterable[str], name: str, received: Any = None,
                 ignore_case: bool = False) -> str:
    """One of ``allowed`` exactly, or in any case with ``ignore_case`` (then
    returned lower-case, as Keras reads ``padding``); ``received``: what to
    quote, if not ``value``."""
    allowed = tuple(allowed)
    if isinstance(value, str) and ignore_case:
        value, received = value.lower(), value if received is None else received
    if not isinstance(value, str) or value not in allowed:
        raise invalid(name, f"one of {', '.join(repr(item) for item in allowed)}",
                      value if received is None else received)
    return value


def did_you_mean(name: Any, choices: Iterable[str]) -> str:
    """" Did you mean 'x'?" for the closest of ``choices`` to a misspelt
    ``name`` (difflib's ratio ≥ 0.6), or "" when none is close."""
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
