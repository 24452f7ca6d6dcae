"""The settings of a search (``tuning.SearchConfig``'s own fields) written
once — default, allowed values, how the command line reads them, help — as
``zoo.vocabulary`` writes a training's: ``SearchConfig`` takes its defaults
from here and ``zoo tune`` makes its search flags from it. Imports no Keras.
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
