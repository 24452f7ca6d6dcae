"""The settings of a search (``tuning.SearchConfig``'s own fields) and the
ranges of its space (``tuning.SearchSpace``'s) written once — default,
allowed values, how the command line reads them, help — as
``zoo.vocabulary`` writes a training's: ``SearchConfig`` and ``SearchSpace``
take their defaults from here and ``zoo tune`` makes its search flags from
it. Imports no Keras.
"""

from __future__ import annotations

import argparse

from tuning import TUNERS
from tuning.budget import DURATION_FORMS, parse_duration
from zoo.vocabulary import Setting, int_at_least, positive_int

PRUNERS = ("none", "median", "asha")


def duration(text: str) -> float:
    """An argparse ``type`` for ``--time-budget``: seconds of a duration (``tuning.budget``)."""
    try:
        return parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration, {DURATION_FORMS}; "
                                         f"received {text!r}") from None


#: SearchConfig's settings a command line sets, by field name, in the flags' order.
SEARCH = {
    "tuner": Setting("hyperband", "Keras Tuner's Hyperband, BayesianOptimization or RandomSearch "
                                  "(default: hyperband)", choices=TUNERS),
    "time_budget": Setting(None, "the search's wall-clock budget (600, 90s, 30m, 1h30m): no trial "
                                 "starts once it is spent, the running one ends at its next epoch; "
                                 "a resumed search counts the time already spent",
                           duration, metavar="DURATION"),
    "pruner": Setting("none", "stop random/bayesian trials that are behind after an epoch: the "
                              "median stopping rule or asynchronous successive halving "
                              "(default: none)", choices=PRUNERS),
    "objectives": Setting(("val_accuracy",), "val_accuracy (default), or val_accuracy,macs to "
                                             "report the front of validation accuracy against "
                                             "multiply-accumulates per example", metavar="NAMES"),
    "hyperband_factor": Setting(3, "Hyperband's reduction factor (default: 3)", int_at_least(2)),
    "hyperband_iterations": Setting(1, "Hyperband's iterations (default: 1)", positive_int),
}


def _range(default, help: str) -> Setting:
    return Setting(default, help, float, metavar=("LO", "HI"), nargs=2)


#: SearchSpace's ranges, by field name; the command line sets each as ``--NAME-range LO HI``.
SEARCH_SPACE = {
    "weight_decay": _range((1e-6, 1e-2), "λ, log-uniform (default: 1e-6 1e-2)"),
    "dropout_rate": _range((0.0, 0.7), "dropout rate, uniform (default: 0 0.7)"),
    "learning_rate": _range(None, "also tune the learning rate, log-uniform"),
    "width": _range(None, "also search a multiplier of the model's filters and units, "
                          "log-uniform (e.g. 0.25 1)"),
}


def range_flag(name: str) -> str:
    """The command line's flag of SearchSpace's range ``name``."""
    return "--" + name.replace("_", "-") + "-range"
