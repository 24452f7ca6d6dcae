"""Tiny real searches end to end: ``zoo tune`` with RandomSearch (table,
results.json, plot, best model, SavedModel export, re-run), ``tune`` with
Hyperband (promoted trials continue from checkpoints), strategies."""

import contextlib
import io
import json
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from tuning import SearchSpace, make_tuner, tune, ZooHyperModel
from tuning.cli import main
from tuning.search import resolve_strategy
from tests.tuning.helpers import TINY_CNN, TINY_CNN_ARGS


@pytest.fixture(scope="module")
def random_search(data_dir, tmp_path_factory):
    """`zoo tune` with RandomSearch, 2 trials of 1 epoch, run twice in a row."""
    root = tmp_path_factory.mktemp("random")
    args = ["tune", "cnn1d", *TINY_CNN_ARGS, "--dataset", "mnist1d", "--tuner", "random",
            "--max-trials", "2", "--epochs", "1", "--run-dir", str(root / "search"),
            "--data-dir", data_dir, "--seed", "7", "--verbose", "0",
            "--dropout-rate-range", "0.1", "0.5", "--export-dir", str(root / "exported")]
    outputs = []
    for _ in range(2):
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            assert main(args) == 0
        outputs.append(stdout.getvalue())
    return root / "search", root / "exported", outputs


def test_cli_prints_the_trial_table_and_the_test_accuracy(random_search):
    project, _, (first, _) = random_search
    lines = first.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("trial"))
    assert header.split() == ["trial", "λ", "dropout", "val", "acc", "status", "tuner"]
    rows = [line for line in lines if line.split()[0] in ("#1", "#2")]  # Keras Tuner's numbers
    assert len(rows) == 2 and sum("<- best" in row for row in rows) == 1
    assert "test accuracy" in first and str(project / "results.json") in first


def test_results_json_holds_the_best_configuration_and_every_trial(random_search):
    project, _, _ = random_search
    results = json.loads((project / "results.json").read_text())
    assert results["tuner"] == "random" and results["model"] == "cnn1d"
    assert [(row["trial_id"], row["trial"]) for row in results["trials"]] == [("0", 1), ("1", 2)]
    assert {row["status"] for row in results["trials"]} == {"COMPLETED"}
    assert {row["tuner_id"] for row in results["trials"]} == {"tuner0"}
    best = results["best_hyperparameters"]
    assert best["weight_decay"] == 0 or 1e-6 <= best["weight_decay"] <= 1e-2
    assert 0.1 <= best["dropout_rate"] <= 0.5
    # Not tuned: trained as `zoo train` trains on mnist1d (step size, batch, cosine schedule).
    assert best["learning_rate"] == results["learning_rate"] == 3e-3
    assert (results["batch_size"], results["learning_rate_schedule"]) == (100, "cosine")
    best_row, = [row for row in results["trials"] if row["trial_id"] == results["best_trial_id"]]
    assert results["best_val_accuracy"] == best_row["val_accuracy"] == max(
        row["val_accuracy"] for row in results["trials"])
    assert 0.0 <= results["test_accuracy"] <= 1.0
    assert results["search_space"]["dropout_rate"] == [0.1, 0.5]
    assert results["model_arguments"] == {"filters": [8], "dense_units": [16]}
    assert (project / "search.png").stat().st_size > 0


def test_best_model_and_saved_model_reproduce_the_test_accuracy(random_search, data_dir):
    from zoo import datasets
    from zoo.io import load_model
    from zoo.training import compile_model

    project, exported, _ = random_search
    results = json.loads((project / "results.json").read_text())
    model = compile_model(load_model(project / "best_model.keras"))
    test = datasets.load("mnist1d", "test", batch_size=64, data_dir=data_dir)
    metrics = model.evaluate(test, verbose=0, return_dict=True)
    assert metrics["accuracy"] == pytest.approx(results["test_accuracy"], abs=1e-6)

    x, _ = next(iter(test))
    saved_model = tf.saved_model.load(str(exported))
    served = saved_model.serve(x)
    # bfloat16 keeps 8 bits of mantissa: the two graphs may round once differently
    tolerance = 1e-5 if results["precision"] == "float32" else 1e-2
    np.testing.assert_allclose(served.numpy(), model(x, training=False).numpy(), atol=tolerance)


def test_rerunning_a_finished_search_adds_no_trial_and_keeps_the_model(random_search):
    project, _, (first, second) = random_search
    results = json.loads((project / "results.json").read_text())
    assert len(results["trials"]) == 2  # after the second run too
    assert "Reloading Tuner" in second

    def accuracy_lines(text):
        return [line for line in text.splitlines() if line.startswith("test accuracy")]

    assert accuracy_lines(first) == accuracy_lines(second)  # reused, not retrained


def test_resuming_with_other_settings_is_refused(random_search):
    project, _, _ = random_search
    with pytest.raises(ValueError, match="was started with other settings") as error:
        tune("cnn1d", dataset="mnist1d", tuner="random", max_trials=2, epochs=1,
             run_dir=project, batch_size=64,
             search_space=SearchSpace(dropout_rate=(0.0, 0.3)), **TINY_CNN)
    assert "search_space" in str(error.value) and "overwrite=True" in str(error.value)


def test_a_search_records_its_precision_and_refuses_another_on_resume(random_search):
    project, _, _ = random_search
    results = json.loads((project / "results.json").read_text())
    assert results["precision"] in ("float32", "mixed_bfloat16", "mixed_float16")
    assert results["precision_reason"].startswith("auto: ")
    other = "mixed_float16" if results["precision"] == "float32" else "float32"
    with pytest.raises(ValueError, match=f"precision '{results['precision']}' -> '{other}'"):
        tune("cnn1d", dataset="mnist1d", tuner="random", max_trials=2, epochs=1,
             run_dir=project, batch_size=64,
             search_space=SearchSpace(dropout_rate=(0.1, 0.5)), precision=other, **TINY_CNN)


def test_hyperband_continues_promoted_trials_from_their_checkpoints(data_dir, tmp_path, monkeypatch):
    import tuning.tuners

    releases = []
    release_memory = tuning.tuners.release_memory
    monkeypatch.setattr(tuning.tuners, "release_memory",
                        lambda: releases.append(1) or release_memory())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = tune("cnn1d", dataset="mnist1d", tuner="hyperband", epochs=2, hyperband_factor=2,
                      max_trials=3, run_dir=tmp_path / "hyperband", data_dir=data_dir, seed=3,
                      batch_size=100, retrain=False, verbose=0, overwrite=True,
                      search_space=SearchSpace(dropout_rate=(0.0, 0.5)), **TINY_CNN)
    # the best checkpoint is read for its weights, without a word about its optimizer's
    assert not [str(warning.message) for warning in caught if "optimizer" in str(warning.message)]
    trials = result.trials
    # factor 2, max_epochs 2: a bracket of 2 one-epoch trials whose best goes on
    # for a second epoch (then a bracket of 2 two-epoch trials, cut by max_trials).
    assert len(trials) == 3 and {row["status"] for row in trials} == {"COMPLETED"}
    assert [row["epochs"] for row in trials] == [1, 1, 2]
    promoted, = [row for row in trials if row["continues_trial"] is not None]
    parent, = [row for row in trials if row["trial"] == promoted["continues_trial"]]
    assert (promoted["weight_decay"], promoted["dropout_rate"]) == (
        parent["weight_decay"], parent["dropout_rate"])
    assert result.best_val_accuracy == max(row["val_accuracy"] for row in trials)
    assert result.model is not None and 0.0 <= result.test_accuracy <= 1.0
    assert result.role == "local" and sorted(result.trials_run) == [row["trial_id"] for row in trials]
    assert os.path.exists(result.results_path) and os.path.exists(result.plot_path)
    assert len(releases) == len(trials)  # Keras' session was cleared after every trial


def test_strategies_reach_the_tuner(tmp_path):
    # tests/conftest.py gives this process two logical CPU devices.
    assert resolve_strategy("auto") is None  # no GPUs here: one device
    assert resolve_strategy("none") is None
    mirrored = resolve_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy) and mirrored.num_replicas_in_sync == 2
    hypermodel = ZooHyperModel("cnn1d", **TINY_CNN)
    tuner = make_tuner("random", hypermodel, max_trials=1, max_epochs=1, directory=tmp_path,
                       project_name="mirrored", distribution_strategy=mirrored)
    assert tuner.distribution_strategy is mirrored


def test_a_seeded_random_search_draws_distinct_trials_and_the_same_ones_again(tmp_path):
    from tuning.tuners import DistinctRandomSearchOracle

    def draws(project):
        keras.utils.set_random_seed(0)  # as tune() seeds: Keras Tuner takes its seed 0 as "none"
        tuner = make_tuner("random", ZooHyperModel("cnn1d", **TINY_CNN), max_trials=10,
                           max_epochs=1, directory=tmp_path, project_name=project, seed=0)
        space = {hp.name: hp for hp in tuner.oracle.hyperparameters.space}
        return [tuner.oracle.create_trial(f"tuner{index}").hyperparameters.values
                for index in range(6)], space

    first, space = draws("first")
    assert draws("again")[0] == first
    # Keras Tuner's own draws from this seed: trials #1 and #2 both λ = 0, dropout 0.3138 and 0.3139
    for index, values in enumerate(first):
        for earlier in first[:index]:
            assert not DistinctRandomSearchOracle.same_values(values, earlier, space), (values, earlier)
