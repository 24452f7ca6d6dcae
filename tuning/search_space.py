"""The search space: which values of λ, the dropout rate and (optionally) the
learning rate a tuner may try. Declared once, in :meth:`SearchSpace.declare`.

    from tuning import SearchSpace
    space = SearchSpace(weight_decay=(1e-5, 1e-2), dropout_rate=(0.0, 0.5),
                        learning_rate=(1e-4, 1e-2))

Hyperparameter names (what Keras Tuner records in every ``trial.json``):

    use_weight_decay   Boolean   False → λ = 0 (only if include_zero_weight_decay)
    weight_decay       Float     λ, log-uniform in weight_decay; active when use_weight_decay
    dropout_rate       Float     uniform in dropout_rate
    learning_rate      Float     log-uniform in learning_rate (only if given)
    width              Float     log-uniform multiplier of the model's filters and units
                                 (only if given; ``tuning.hypermodel.widened``)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from custom_layers.arguments import check_bool, invalid
from tuning.vocabulary import SEARCH_SPACE

Range = tuple[float, float]

#: The hyperparameter names the space declares (see the module docstring).
USE_WEIGHT_DECAY = "use_weight_decay"
WEIGHT_DECAY = "weight_decay"
DROPOUT_RATE = "dropout_rate"
LEARNING_RATE = "learning_rate"
WIDTH = "width"


def _check_range(value: Any, name: str, problem) -> Range:
    """A (low, high) pair of finite numbers with low < high; ``problem(low,
    high)`` names what else is wrong with it, or returns None."""
    try:
        low, high = value
    except (TypeError, ValueError):
        raise invalid(name, "a pair (low, high)", value) from None
    for bound in (low, high):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
            raise invalid(name, "two finite numbers", value)
    if not low < high:
        raise invalid(name, "low < high (the range is empty or inverted)", value)
    message = problem(low, high)
    if message:
        raise invalid(name, message, value)
    return float(low), float(high)


def _weight_decay_problem(low, high):
    if low < 0:
        return "0 < low < high (λ cannot be negative)"
    if low == 0:
        return ("0 < low < high (λ is sampled on a log scale; "
                "include_zero_weight_decay=True adds λ = 0)")
    return None


def _dropout_problem(low, high):
    if low < 0 or high >= 1:
        return "rates with 0 <= low < high < 1"
    return None


def _width_problem(low, high):
    if low <= 0:
        return "multipliers with 0 < low < high (of the model's filters and units)"
    return None


def _learning_rate_problem(low, high):
    if low <= 0:
        return "0 < low < high (sampled on a log scale)"
    return None


@dataclass(frozen=True)
class SearchSpace:
    """Ranges of the tuned hyperparameters; the architecture stays fixed.

    Args:
        weight_decay: (low, high) of λ in E = E_D + λ‖w‖², sampled
            log-uniformly; 0 < low < high.
        include_zero_weight_decay: also try λ = 0 (a Boolean hyperparameter
            ``use_weight_decay``; λ is then only sampled when it is True).
        dropout_rate: (low, high) of the dropout rate, sampled uniformly;
            0 <= low < high < 1.
        learning_rate: None to keep the learning rate fixed, or (low, high),
            sampled log-uniformly; 0 < low < high.
        width: None to keep the architecture, or (low, high) of a multiplier
            of the model's filters and units, sampled log-uniformly; 0 < low < high.

    Invalid ranges raise ValueError when the space is created, before any training.
    """

    weight_decay: Range = SEARCH_SPACE["weight_decay"].default
    include_zero_weight_decay: bool = True
    dropout_rate: Range = SEARCH_SPACE["dropout_rate"].default
    learning_rate: Range | None = SEARCH_SPACE["learning_rate"].default
    width: Range | None = SEARCH_SPACE["width"].default

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "weight_decay", _check_range(self.weight_decay, "weight_decay",
                                                _weight_decay_problem))
        check_bool(self.include_zero_weight_decay, "include_zero_weight_decay")
        set_(self, "dropout_rate", _check_range(self.dropout_rate, "dropout_rate",
                                                _dropout_problem))
        if self.learning_rate is not None:
            set_(self, "learning_rate", _check_range(self.learning_rate, "learning_rate",
                                                     _learning_rate_problem))
        if self.width is not None:
            set_(self, "width", _check_range(self.width, "width", _width_problem))

    def declare(self, hp) -> dict[str, float]:
        """Declares the space on ``hp`` (a ``keras_tuner.HyperParameters``) and
        returns this trial's values: ``weight_decay``, ``dropout_rate`` and,
        if tuned, ``learning_rate``. The whole space, top to bottom."""
        low, high = self.weight_decay
        if self.include_zero_weight_decay:
            use_weight_decay = hp.Boolean(USE_WEIGHT_DECAY, default=True)
            with hp.conditional_scope(USE_WEIGHT_DECAY, [True]):  # None while inactive
                sampled = hp.Float(WEIGHT_DECAY, low, high, sampling="log")
            weight_decay = sampled if use_weight_decay else 0.0
        else:
            weight_decay = hp.Float(WEIGHT_DECAY, low, high, sampling="log")

        values = {
            WEIGHT_DECAY: float(weight_decay),
            DROPOUT_RATE: float(hp.Float(DROPOUT_RATE, *self.dropout_rate)),
        }
        if self.learning_rate is not None:
            values[LEARNING_RATE] = float(hp.Float(LEARNING_RATE, *self.learning_rate,
                                                   sampling="log"))
        if self.width is not None:
            values[WIDTH] = float(hp.Float(WIDTH, *self.width, sampling="log"))
        return values

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (ranges as lists; no width unless it is searched,
        as spaces were recorded before it could be)."""
        return {key: (list(value) if isinstance(value, tuple) else value)
                for key, value in asdict(self).items() if key != WIDTH or value is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchSpace":
        """The inverse of :meth:`to_dict`."""
        return cls(**{key: (tuple(value) if isinstance(value, list) else value)
                      for key, value in data.items()})


def trial_values(values: dict[str, Any]) -> dict[str, float | None]:
    """λ, dropout rate and learning rate (None if not tuned) of a trial's
    recorded ``hp.values`` — λ is 0 where ``use_weight_decay`` was False."""
    if values.get(USE_WEIGHT_DECAY, True) is False or WEIGHT_DECAY not in values:
        weight_decay = 0.0
    else:
        weight_decay = float(values[WEIGHT_DECAY])
    dropout = values.get(DROPOUT_RATE)
    learning_rate = values.get(LEARNING_RATE)
    width = values.get(WIDTH)
    return {
        WEIGHT_DECAY: weight_decay,
        DROPOUT_RATE: None if dropout is None else float(dropout),
        LEARNING_RATE: None if learning_rate is None else float(learning_rate),
        WIDTH: None if width is None else float(width),
    }
