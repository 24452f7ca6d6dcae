"""Stopping bad trials early: the median stopping rule and asynchronous
successive halving on per-epoch validation accuracies (a real pruned search:
tests/tuning/test_front.py)."""

import pytest

from tuning import tune
from tuning.pruners import AshaPruner, MedianPruner, best_so_far

FINISHED = [[0.50, 0.60, 0.70], [0.55, 0.65, 0.75], [0.40, 0.62, 0.72]]


def test_best_so_far_is_the_running_maximum():
    assert best_so_far([0.5, 0.4, 0.7, 0.6]) == [0.5, 0.5, 0.7, 0.7]


def test_the_median_rule_stops_a_trial_below_the_finished_trials_median_at_its_epoch():
    rule = MedianPruner(startup_trials=3, warmup_epochs=1)
    assert not rule.should_prune([0.1], FINISHED)  # warm-up epoch
    assert rule.should_prune([0.1, 0.61], FINISHED)  # median at epoch 2 is 0.62
    assert not rule.should_prune([0.1, 0.62], FINISHED)
    assert not rule.should_prune([0.1, 0.3], FINISHED[:2])  # fewer than 3 finished trials
    assert not rule.should_prune([0.5, 0.6, 0.7, 0.1], FINISHED)  # nobody reached epoch 4


def test_asha_stops_at_rungs_only_and_keeps_the_top_third():
    asha = AshaPruner(reduction_factor=3, min_epochs=1)
    assert [epoch for epoch in range(1, 30) if asha.rung(epoch)] == [1, 3, 9, 27]
    others = [[value] * 3 for value in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    assert asha.should_prune([0.42], others)  # below the 2/3 quantile of the others, 0.4333
    assert not asha.should_prune([0.44], others)
    assert not asha.should_prune([0.0, 0.0], others)  # epoch 2 is no rung
    assert not asha.should_prune([0.0], [])  # nothing recorded there yet


def test_a_pruner_is_refused_where_it_cannot_work():
    with pytest.raises(ValueError, match=r"Hyperband stops trials by its own brackets"):
        tune("cnn1d", "mnist1d", tuner="hyperband", pruner="median")
    with pytest.raises(ValueError, match=r"Expected one of 'none', 'median', 'asha'"):
        tune("cnn1d", "mnist1d", tuner="random", pruner="successive")
