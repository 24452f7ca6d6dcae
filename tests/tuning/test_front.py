"""The front of accuracy against cost: the non-dominated trials, the member a
pick chooses, a width multiplier in the space, and what is refused."""

import json

import pytest

from tests.tuning.helpers import TINY_CNN
from tuning import SearchSpace, tune
from tuning.front import check_objectives, pareto_front, parse_pick, pick_member

ROWS = [
    {"trial_id": "0", "status": "COMPLETED", "val_accuracy": 0.90, "macs": 1000},
    {"trial_id": "1", "status": "COMPLETED", "val_accuracy": 0.89, "macs": 200},
    {"trial_id": "2", "status": "COMPLETED", "val_accuracy": 0.85, "macs": 300},  # dominated by 1
    {"trial_id": "3", "status": "COMPLETED", "val_accuracy": 0.80, "macs": 50},
    {"trial_id": "4", "status": "PRUNED", "val_accuracy": 0.95, "macs": 10},  # not a finished trial
]


def test_the_front_holds_the_trials_no_other_beats_in_both_cheapest_first():
    assert [row["trial_id"] for row in pareto_front(ROWS)] == ["3", "1", "0"]


def test_a_pick_chooses_the_most_accurate_or_the_cheapest_within_a_tolerance():
    front = pareto_front(ROWS)
    assert pick_member(front, "best")["trial_id"] == "0"
    assert pick_member(front, "smallest-within:1.5")["trial_id"] == "1"  # 0.89 >= 0.90 - 0.015
    assert pick_member(front, "smallest-within:0.5")["trial_id"] == "0"
    assert pick_member(front, "smallest-within:20")["trial_id"] == "3"


@pytest.mark.parametrize("call, message", [
    (lambda: check_objectives("val_accuracy,flops"),
     "`objectives` must be val_accuracy, optionally with macs"),
    (lambda: check_objectives(("macs",)), "`objectives` must be val_accuracy"),
    (lambda: parse_pick("smallest"), "`pick` must be 'best' or 'smallest-within:POINTS'"),
    (lambda: parse_pick("smallest-within:-1"), "`pick` must be 'best'"),
    (lambda: SearchSpace(width=(0.0, 1.0)), r"0 < low < high \(of the model's filters and units\)"),
    (lambda: tune("cnn1d", "mnist1d", tuner="random", pick="smallest-within:0.2"),
     "which this search does not draw; pass objectives=\\('val_accuracy', 'macs'\\)"),
    (lambda: tune("lenet5", "mnist_5k", tuner="random", objectives="val_accuracy,macs",
                  search_space=SearchSpace(width=(0.5, 1.0)), run_dir="/nonexistent/x", max_trials=1),
     "Model 'lenet5' has no width to search"),
])
def test_what_the_front_cannot_use_is_refused_naming_the_allowed(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_pruned_search_over_width_reports_its_front_and_retrains_the_pick(tmp_path, data_dir):
    """A 5-trial random search of 2-epoch trials over λ, dropout and width,
    with ASHA and the front: trials behind the others' first epoch are pruned
    after it (recorded as such, never on the front nor the best), the front
    is cheapest first and non-dominated, and the pick's checkpoint is loaded."""
    result = tune("cnn1d", "mnist1d", tuner="random", max_trials=5, epochs=2, seed=3,
                  search_space=SearchSpace(width=(0.25, 1.0)), objectives="val_accuracy,macs",
                  pruner="asha", pick="smallest-within:100", data_dir=data_dir,
                  run_dir=tmp_path / "search", retrain=False, verbose=0, **TINY_CNN)
    results = json.loads(result.results_path.read_text())
    rows = results["trials"]
    pruned = [row for row in rows if row["status"] == "PRUNED"]
    assert pruned and results["num_pruned_trials"] == len(pruned)
    assert all(row["epochs_run"] == 1 and row["val_accuracy"] is not None for row in pruned)
    assert results["trial_epochs"] == sum(row["epochs_run"] for row in rows) < 2 * len(rows)
    record = json.loads((tmp_path / "search" / f"trial_{pruned[0]['trial_id']}" /
                         "zoo_trial.json").read_text())
    assert record["pruned_at_epoch"] == 1 and record["status"] == "STOPPED"

    assert results["objectives"] == ["val_accuracy", "macs"]
    assert len({row["macs"] for row in rows}) == len(rows)  # each width its own cost
    front = results["front"]
    assert front and not {row["trial_id"] for row in front} & {row["trial_id"] for row in pruned}
    assert [row["macs"] for row in front] == sorted(row["macs"] for row in front)
    assert [row["val_accuracy"] for row in front] == sorted(row["val_accuracy"] for row in front)
    assert results["best_trial_id"] == front[0]["trial_id"]  # the cheapest: any accuracy is within 100
    from zoo.flops import count_flops

    assert count_flops(result.model).macs == front[0]["macs"]  # the picked trial's checkpoint
    assert (tmp_path / "search" / "front.png").exists()
