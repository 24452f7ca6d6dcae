"""Keras Tuner search over the weight-decay λ and the dropout rate of zoo models.

    from tuning import SearchSpace, tune
    result = tune("cnn1d", dataset="mnist1d", tuner="hyperband", epochs=9,
                  search_space=SearchSpace(weight_decay=(1e-6, 1e-2), dropout_rate=(0.0, 0.7)))
    print(result.best_hyperparameters, result.test_accuracy)

Attributes are imported on first use, so ``import tuning`` (and the CLI's
argument parsing) stays free of TensorFlow.
"""

from __future__ import annotations

import importlib

#: Keras Tuner's tuners a search can run (``tuning.tuners.make_tuner``).
TUNERS = ("hyperband", "bayesian", "random")

_LAZY = {
    "SearchSpace": "tuning.search_space",
    "ZooHyperModel": "tuning.hypermodel",
    "make_tuner": "tuning.tuners",
    "distributed_role": "tuning.tuners",
    "ZooTuner": "tuning.tuners",
    "tune": "tuning.search",
    "SearchConfig": "tuning.search",
    "TuneResult": "tuning.search",
    "train_and_evaluate": "tuning.search",
    "evaluate": "tuning.search",
    "trial_table": "tuning.report",
    "format_trial_table": "tuning.report",
}

__all__ = sorted([*_LAZY, "TUNERS"])


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tuning' has no attribute {name!r}")
