"""A search's wall-clock budget: durations read as a user writes them, no
trial started once it is spent, the running trial ended at its next epoch,
the time adding up over resumptions, and a changed budget refused by name."""

import json

import pytest

from tests.tuning.helpers import TINY_CNN
from tuning import tune
from tuning.budget import SearchClock, parse_duration, stop_when_spent
from tuning.cli import main


@pytest.mark.parametrize("text, seconds", [
    ("600", 600.0), (90, 90.0), ("90s", 90.0), ("30m", 1800.0), ("1h30m", 5400.0),
    ("1.5h", 5400.0), ("2m30s", 150.0), (" 45S ", 45.0)])
def test_a_budget_is_read_as_seconds_or_hours_minutes_and_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "0", "-5m", "30 minutes", "m", "1h-5m", "inf", True])
def test_a_budget_that_is_not_a_positive_duration_is_refused_naming_the_forms(text):
    with pytest.raises(ValueError, match=r"`time_budget` must be a positive duration: seconds "
                                         r"\(600\) or hours, minutes and seconds \(30m, 1h30m"):
        parse_duration(text)


def test_the_command_line_refuses_a_budget_that_is_no_duration_in_one_line(
        tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        main(["tune", "cnn1d", "--time-budget", "soon"])
    assert exit.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == ["zoo: error: argument --time-budget: expected a duration, seconds (600) or "
                     "hours, minutes and seconds (30m, 1h30m, 90s, 1.5h); received 'soon'"]
    assert not list(tmp_path.iterdir())


def test_a_spent_budget_starts_no_trial_ends_the_running_one_and_adds_up_on_resume(
        tmp_path, data_dir):
    """A 30-trial random search of 3-epoch trials with a budget spent during
    the first epoch: that trial ends after the epoch and no other starts; the
    best is still evaluated and reported; run again, it starts nothing and its
    time goes on from where it was; another budget is refused by name."""
    search = dict(tuner="random", max_trials=30, epochs=3, seed=1, data_dir=data_dir,
                  run_dir=tmp_path / "search", retrain=False, verbose=0, time_budget=0.5,
                  **TINY_CNN)
    result = tune("cnn1d", "mnist1d", **search)
    results = json.loads(result.results_path.read_text())
    assert results["stopped_by_budget"] is True and results["time_budget_s"] == 0.5
    assert [row["status"] for row in results["trials"]] == ["COMPLETED"]
    trial = result.tuner.oracle.trials[results["trials"][0]["trial_id"]]
    assert len(trial.metrics.get_history("val_accuracy")) == 1  # ended after 1 of its 3 epochs
    assert 0 < results["test_accuracy"] <= 1 and result.best_trial_id == results["trials"][0]["trial_id"]
    spent = json.loads((tmp_path / "search" / "zoo_budget.json").read_text())["spent_s"]
    assert spent >= 0.5 and results["search_wall_time_s"] >= spent

    again = tune("cnn1d", "mnist1d", **search)  # resumed: the budget is spent already
    assert len(again.trials) == 1
    resumed = json.loads(again.results_path.read_text())
    assert resumed["search_wall_time_s"] > results["search_wall_time_s"]  # it adds up

    with pytest.raises(ValueError, match=r"started with other settings \(time_budget 0\.5 -> 60\.0\)"):
        tune("cnn1d", "mnist1d", **{**search, "time_budget": "1m"})

    # The chief of a distributed search runs no trial: its timer stops the
    # oracle it serves, which then answers the workers' requests with STOPPED.
    oracle = again.tuner.oracle
    oracle.max_trials = 30
    assert oracle.create_trial("tuner0").status != "STOPPED"
    stop_when_spent(SearchClock(tmp_path / "chief", seconds=0.05), oracle).join(timeout=10)
    assert oracle.create_trial("tuner1").status == "STOPPED"
    assert stop_when_spent(SearchClock(tmp_path / "chief"), oracle) is None  # no budget, no timer
