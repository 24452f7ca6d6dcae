"""Stopping bad trials early in random and Bayesian search, which Keras
Tuner does only inside Hyperband's brackets (keras-team/keras-tuner#279):
after every epoch a trial's best validation accuracy so far is compared with
the other trials' at the same epoch, and a trial clearly behind is stopped.

- ``median``: the median stopping rule (Golovin et al. 2017, Google Vizier;
  Optuna's ``MedianPruner``, Ray Tune's ``MedianStoppingRule``): stop at
  epoch e when the trial's best so far is below the median of the finished
  trials' best-so-far at epoch e, once ``startup_trials`` have finished and
  after ``warmup_epochs``.
- ``asha``: asynchronous successive halving (Li et al. 2020; Ray Tune's
  ASHA): rungs at epochs 1, η, η², … (η = 3); at a rung a trial goes on only
  if its best so far reaches the top 1/η of the values the others recorded there.

A pruned trial keeps its epochs' results but is never the best (Keras
Tuner's oracle picks among completed trials only). The rules read nothing
but lists of numbers, so they are the same on every backend.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

import numpy as np


def best_so_far(values: Sequence[float]) -> list[float]:
    """The running maximum of a trial's per-epoch validation accuracies."""
    best, running = [], -math.inf
    for value in values:
        running = max(running, value)
        best.append(running)
    return best


class MedianPruner:
    """The median stopping rule (module docstring)."""

    def __init__(self, startup_trials: int = 3, warmup_epochs: int = 1):
        self.startup_trials = startup_trials
        self.warmup_epochs = warmup_epochs

    def should_prune(self, values: Sequence[float], others: Sequence[Sequence[float]]) -> bool:
        """Whether a trial with per-epoch ``values`` so far stops, given the
        finished trials' per-epoch values ``others``."""
        epoch = len(values)
        if epoch <= self.warmup_epochs or len(others) < self.startup_trials:
            return False
        at_epoch = [best_so_far(other)[epoch - 1] for other in others if len(other) >= epoch]
        if not at_epoch:
            return False
        return best_so_far(values)[-1] < statistics.median(at_epoch)


class AshaPruner:
    """Asynchronous successive halving (module docstring)."""

    def __init__(self, reduction_factor: int = 3, min_epochs: int = 1):
        self.reduction_factor = reduction_factor
        self.min_epochs = min_epochs

    def rung(self, epoch: int) -> bool:
        """Whether ``epoch`` (from 1) is a rung: min_epochs · η^k."""
        ratio = epoch / self.min_epochs
        if ratio < 1 or ratio != int(ratio):
            return False
        power = round(math.log(ratio, self.reduction_factor))
        return self.reduction_factor ** power == int(ratio)

    def should_prune(self, values: Sequence[float], others: Sequence[Sequence[float]]) -> bool:
        """At a rung, whether the trial's best so far is below the cutoff:
        the (1 − 1/η) quantile of what the other trials recorded there (as
        Ray Tune's ASHA computes it; nothing recorded there: it goes on)."""
        epoch = len(values)
        if not self.rung(epoch):
            return False
        recorded = [best_so_far(other)[epoch - 1] for other in others if len(other) >= epoch]
        if not recorded:
            return False
        cutoff = float(np.percentile(recorded, (1 - 1 / self.reduction_factor) * 100))
        return best_so_far(values)[-1] < cutoff


def make_pruner(name: str) -> MedianPruner | AshaPruner | None:
    """The pruner called ``name`` (:data:`PRUNERS`), None for "none"."""
    return {"none": None, "median": MedianPruner(), "asha": AshaPruner()}[name]
