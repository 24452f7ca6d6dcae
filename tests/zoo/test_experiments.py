"""zoo.experiments: each of the lecture's claims, checked on a budget small
enough for the test suite yet big enough that the effect itself shows; the
ActivationPercentiles callback on a user's own model; bad inputs."""

import argparse
import json

import keras
import numpy as np
import pytest

from zoo import experiments
from zoo.experiments.callbacks import AccuracyEveryNSteps, ActivationPercentiles
from zoo.experiments.depth import mlp_params, width_for_budget

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def reproduce(data_dir, tmp_path_factory):
    """Runs an experiment in quick mode with tiny overrides into a temporary directory,
    in float32: the thresholds below were measured in it, and "auto" would pick
    bfloat16 on a CPU with AVX512-BF16."""
    root = tmp_path_factory.mktemp("reproduce")

    def run(name, **settings):
        settings.setdefault("precision", "float32")
        results = experiments.run(name, run_dir=root / name, quick=True, data_dir=data_dir,
                                  verbose=0, **settings)
        assert (root / name / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
        assert json.loads((root / name / "results.json").read_text())["experiment"] == name
        return results

    return run


@pytest.fixture(scope="module")
def depth_results(reproduce):
    # MNIST-1D, one seed, ≈25k parameters, 30 epochs: 3 layers beat 1 by 5-7 points (seeds 0-2)
    return reproduce("depth", depths=(1, 3), parameter_budget=25_000, repeats=1, epochs=30,
                     patience=10)


@pytest.fixture(scope="module")
def vanishing_gradients_results(reproduce):
    return reproduce("vanishing-gradients", width=32, epochs=1)


@pytest.fixture(scope="module")
def weight_decay_results(reproduce):
    return reproduce("weight-decay", weight_decays=(0, 1e-1), train_size=500, epochs=25,
                     hidden_units=(128, 128))


@pytest.fixture(scope="module")
def early_stopping_results(reproduce):
    return reproduce("early-stopping", train_size=500, epochs=20, patience=3,
                     hidden_units=(256, 256))


@pytest.fixture(scope="module")
def batch_norm_results(reproduce):
    return reproduce("batch-norm", steps=300, record_every=50, learning_rate=0.1,
                     high_learning_rate=1.0, probe_size=200)


@pytest.fixture(scope="module")
def dropout_results(reproduce):
    # 1,000 digits, one seed, 40 epochs: without dropout the net fits them all and overfits
    return reproduce("dropout", depths=(2,), width=128, train_size=1000, repeats=1, epochs=40)


@pytest.fixture(scope="module")
def params_results(reproduce):
    return reproduce("params", mlp_widths=(256,), cnn_channels=(25,), epochs=15)


@pytest.fixture(scope="module")
def mnist1d_results(reproduce):
    return reproduce("mnist1d", steps=400, record_every=200)


# --------------------------------------------------------------------------- registry


def test_experiments_are_listed_in_the_lecture_order():
    assert experiments.list_experiments() == [
        "depth", "vanishing-gradients", "weight-decay", "early-stopping", "batch-norm", "dropout",
        "params", "mnist1d"]


def test_unknown_experiment_is_a_value_error_listing_the_valid_names(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown experiment 'nope'.*depth.*batch-norm.*mnist1d"):
        experiments.run("nope", run_dir=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("arguments, message", [
    ({"epochs_per_step": 3}, r"Unknown setting\(s\) epochs_per_step.*Valid settings: .*steps"),
    ({"dataset": "imagenet42"}, "imagenet42"),
    ({"seed": -1}, "seed"),
])
def test_bad_arguments_fail_before_any_work(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        experiments.run("batch-norm", run_dir=tmp_path / "out", **arguments)
    assert not (tmp_path / "out").exists()


def test_an_experiment_refuses_a_dataset_its_claim_is_not_made_on(tmp_path, capsys):
    from zoo.cli import main

    with pytest.raises(ValueError, match=r"Experiment 'batch-norm' cannot use dataset 'mnist1d': "
                                         r"its claim is made on mnist_5k, mnist, fashion_mnist"):
        experiments.run("batch-norm", run_dir=tmp_path / "out", dataset="mnist1d")
    assert main(["reproduce", "--dataset", "mnist", "--run-dir", str(tmp_path / "all")]) == 2
    assert capsys.readouterr().err.strip() == (
        "zoo: error: Experiment 'mnist1d' cannot use dataset 'mnist': its claim is made on "
        "mnist1d; pass one of those.")
    assert not (tmp_path / "out").exists() and not (tmp_path / "all").exists()


def test_on_the_papers_dataset_an_experiment_runs_the_papers_settings():
    batch_norm = experiments.get_experiment("batch-norm")
    assert batch_norm.settings("mnist", quick=False)["steps"] == 50_000  # Ioffe & Szegedy, Fig. 1
    assert batch_norm.settings("mnist_5k", quick=False) == batch_norm.full
    dropout = experiments.get_experiment("dropout")
    assert dropout.settings("mnist", quick=True)["width"] == 1024  # Srivastava et al., Fig. 4
    with pytest.raises(ValueError, match=r"on\['mnist'\] sets settings of 'quick' or 'full' only"):
        experiments.register_experiment("x", claim="", dataset="mnist", quick={"a": 1},
                                        full={"a": 2}, on={"mnist": {"full": {"b": 3}}})


def test_every_experiment_has_quick_and_full_settings_and_an_offline_default_dataset():
    from zoo import datasets

    for name in experiments.list_experiments():
        experiment = experiments.get_experiment(name)
        assert experiment.quick.keys() == experiment.full.keys()
        assert experiment.dataset in datasets.offline_datasets()


# --------------------------------------------------------------------------- the claims


def test_a_deep_sigmoid_mlps_gradient_vanishes_and_bn_or_relu_keep_it(vanishing_gradients_results):
    results = vanishing_gradients_results
    rows = {row["net"]: row for row in results["table"]}
    assert list(rows) == ["sigmoid", "sigmoid + BN", "ReLU + He"]
    for run in results["runs"].values():
        assert len(run["gradient_norms"]) == results["hidden_layers"] == 10
    # sigmoid: orders of magnitude smaller next to the input than next to the output
    assert rows["sigmoid"]["orders_of_magnitude"] >= 2
    assert np.all(np.diff(np.log10(results["runs"]["sigmoid"]["gradient_norms"])) > 0)
    # batch norm, or ReLU with He's initialisation: within a factor of 10 across 10 layers
    for net in ("sigmoid + BN", "ReLU + He"):
        assert abs(rows[net]["orders_of_magnitude"]) < 1, net


def test_depth_deeper_mlp_beats_the_shallow_one_at_the_same_parameter_budget(depth_results):
    rows = depth_results["table"]
    assert [row["hidden_layers"] for row in rows] == [1, 3]
    for row in rows:
        assert abs(row["params"] - 25_000) / 25_000 < 0.02
        assert row["params"] == mlp_params(row["hidden_layers"], row["width"], 40, 10)  # MNIST-1D
        assert row["runs"] == 1 and row["test_accuracy_std"] == 0
    shallow, deep = rows
    assert shallow["width"] > 4 * deep["width"]  # deeper means narrower at the same budget
    assert deep["test_accuracy"] > shallow["test_accuracy"] + 0.03  # ≈ 30 of 1,000 test signals
    assert depth_results["best_depth"] == 3


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 8])
def test_width_for_budget_is_the_closest_width(depth):
    width = width_for_budget(depth, 50_000, 784, 10)
    error = abs(mlp_params(depth, width, 784, 10) - 50_000)
    assert error <= abs(mlp_params(depth, width + 1, 784, 10) - 50_000)
    assert error <= abs(mlp_params(depth, width - 1, 784, 10) - 50_000)


def test_weight_decay_large_lambda_underfits_and_zero_overfits(weight_decay_results):
    no_decay, large = weight_decay_results["table"]
    assert (no_decay["weight_decay"], large["weight_decay"]) == (0.0, 0.1)
    assert no_decay["train_accuracy"] > 0.95  # λ = 0 fits the training set ...
    assert no_decay["gap"] > 0.2  # ... and generalises far worse: overfit
    assert large["train_accuracy"] < no_decay["train_accuracy"] - 0.3  # large λ: underfit
    assert large["gap"] < no_decay["gap"]
    assert large["weight_penalty"] > 0 and no_decay["weight_penalty"] == 0
    best = max(weight_decay_results["table"], key=lambda row: row["validation_accuracy"])
    assert weight_decay_results["best_weight_decay"] == best["weight_decay"]


def test_early_stopping_stops_where_validation_loss_turns_up(early_stopping_results):
    results = early_stopping_results
    picked = results["picked_epoch"]
    validation_loss = results["history_without"]["val_loss"]
    assert picked < results["epochs_without"] == 20
    assert results["epochs_run_with_early_stopping"] <= picked + 3
    # the picked epoch has the lowest validation loss of the run that stopped ...
    assert results["best_validation_loss"] == min(results["history_early_stopped"]["val_loss"])
    # ... and training on without stopping only made it worse, while the training loss fell
    assert validation_loss[-1] > results["best_validation_loss"]
    assert results["history_without"]["loss"][-1] < results["history_early_stopped"]["loss"][picked - 1]


def test_batch_norm_trains_faster_and_keeps_the_sigmoid_input_stable(batch_norm_results):
    runs = batch_norm_results["runs"]
    with_bn, without_bn = runs["with BN, lr 0.1"], runs["without BN, lr 0.1"]
    for run in (with_bn, without_bn):
        assert run["steps"] == [0, 50, 100, 150, 200, 250, 300]
        assert run["percentile_steps"] == run["steps"]
        values = np.array(run["percentiles"])
        assert values.shape == (7, 3)
        assert np.all(values[:, 0] <= values[:, 1]) and np.all(values[:, 1] <= values[:, 2])
    # (a) same net, optimizer and step size: BN reaches a higher test accuracy
    assert with_bn["final_test_accuracy"] > without_bn["final_test_accuracy"] + 0.02
    # (b, c) the sigmoid's input distribution moves less with BN
    assert with_bn["percentile_drift"] < 0.7 * without_bn["percentile_drift"]
    # a step size only the BN net survives
    assert runs["with BN, lr 1"]["final_test_accuracy"] > 0.6
    assert runs["without BN, lr 1"]["final_test_accuracy"] < 0.25


def test_dropout_lowers_the_test_error_and_the_train_test_gap(dropout_results):
    without, with_dropout = dropout_results["table"]
    assert (without["dropout"], with_dropout["dropout"]) == ("no", "yes")
    assert with_dropout["params"] == without["params"]  # the same net; only dropout differs
    assert without["train_error_%"] < 0.5 and without["gap_%"] > 5  # without dropout: overfit
    assert with_dropout["test_error_%"] < without["test_error_%"] - 0.5  # 7.9 vs 9.1 % here
    assert with_dropout["gap_%"] < without["gap_%"] - 1.0
    assert dropout_results["dropout_lower_test_error"] == dropout_results["pairs"] == 1
    run = dropout_results["runs"][1]
    assert run["dropout"] == "yes" and run["train_size"] == 1000
    assert len(run["test_error_curve_%"]) == 40 + 1  # before training and after every epoch


def test_cnn_matches_the_mlp_with_far_fewer_parameters(params_results):
    mlp, cnn = params_results["table"]
    assert (mlp["family"], cnn["family"]) == ("MLP", "CNN")
    assert cnn["params"] * 10 < mlp["params"]
    assert cnn["test_accuracy"] > mlp["test_accuracy"]
    conv = [row for row in params_results["layer_table"] if row["type"] == "Conv1D"]
    assert [row["formula"] for row in conv] == [
        "K×N×C_in = 25×5×1", "K×N×C_in = 25×3×25", "K×N×C_in = 25×3×25"]
    assert [row["weights"] for row in conv] == [25 * 5 * 1, 25 * 3 * 25, 25 * 3 * 25]
    assert params_results["smallest_cnn_as_accurate"]["model"] == "cnn_25"
    for row in conv:  # weight sharing: far fewer than a dense layer joining the same units
        assert row["params"] * 10 < row["dense_equivalent"]


def test_mnist1d_table_ranks_logistic_below_mlp_below_cnn(mnist1d_results):
    rows = {row["model"]: row for row in mnist1d_results["table"]}
    assert list(rows) == ["logistic", "mlp", "cnn", "human"]
    assert rows["logistic"]["test_accuracy"] < rows["mlp"]["test_accuracy"] < rows["cnn"]["test_accuracy"]
    assert rows["cnn"]["test_accuracy"] > 0.7
    assert rows["logistic"]["published"] == 0.32 and rows["human"]["published"] == 0.96
    assert mnist1d_results["training_examples"] == 4000


def test_results_json_and_png_are_written(mnist1d_results, data_dir, tmp_path):
    results = experiments.run("mnist1d", run_dir=tmp_path, quick=True, data_dir=data_dir,
                              verbose=0, models=("logistic",), steps=20, record_every=10)
    assert (tmp_path / "mnist1d.png").read_bytes().startswith(PNG_SIGNATURE)
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored == json.loads(json.dumps(results))
    assert stored["settings"]["steps"] == 20 and stored["quick"] is True
    assert stored["dataset"] == "mnist1d" and stored["plot"] == "mnist1d.png"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries


# --------------------------------------------------------------------------- callbacks


def user_model():
    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(8, name="hidden"),
        keras.layers.BatchNormalization(name="norm"),
        keras.layers.Activation("sigmoid", name="squash"),
        keras.layers.Dense(2, activation="softmax", name="out"),
    ])


def user_data(n=80):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def test_activation_percentiles_records_a_users_own_fit():
    x, y = user_data()
    model = user_model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    watch = ActivationPercentiles("squash", unit=3, every_n_steps=2, inputs=x[:40])
    accuracy = AccuracyEveryNSteps(x, y, every_n_steps=5)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[watch, accuracy])  # 20 steps
    assert watch.steps == list(range(0, 21, 2))
    assert watch.values.shape == (11, 3)
    assert np.all(np.diff(watch.values, axis=1) >= 0)  # 15th <= 50th <= 85th
    # the input of "squash" is what BN hands it: the probe's values of unit 3, at the end
    probe = keras.Model(model.inputs[0], model.get_layer("norm").output)
    expected = np.percentile(np.asarray(probe(x[:40], training=False))[:, 3], (15, 50, 85))
    np.testing.assert_allclose(watch.values[-1], expected, rtol=1e-5, atol=1e-6)
    assert accuracy.steps == [0, 5, 10, 15, 20] and all(0 <= a <= 1 for a in accuracy.accuracies)


def test_activation_percentiles_in_training_mode_leaves_moving_statistics_alone():
    x, _ = user_data()
    model = user_model()
    norm = model.get_layer("norm")
    before = [w.copy() for w in norm.get_weights()]
    watch = ActivationPercentiles("squash", every_n_steps=1, inputs=x + 5.0, training=True)
    watch.set_model(model)
    watch.on_train_begin()  # records once, with the probe's own batch statistics
    after = norm.get_weights()
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)
    # batch statistics of the probe normalise it: the median sits near β = 0
    assert abs(watch.values[0, 1]) < 0.5


@pytest.mark.parametrize("arguments, message", [
    (dict(layer_name="nope"), "no layer 'nope'. Its layers: hidden, norm, squash, out"),
    (dict(layer_name="squash", unit=8), "a unit of layer 'squash', which has 8 at its"),
])
def test_activation_percentiles_names_a_missing_layer_or_unit(arguments, message):
    x, y = user_data(16)
    model = user_model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    watch = ActivationPercentiles(inputs=x, **arguments)
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[watch])


@pytest.mark.parametrize("arguments, message", [
    (dict(percentiles=(15, 150)), "percentiles"),
    (dict(every_n_steps=0), "every_n_steps"),
    (dict(where="middle"), "where"),
    (dict(unit=-1), "unit"),
    (dict(inputs=None), "inputs"),
])
def test_activation_percentiles_rejects_bad_arguments(arguments, message):
    arguments = {"layer_name": "squash", "inputs": np.zeros((2, 6)), **arguments}
    with pytest.raises(ValueError, match=message):
        ActivationPercentiles(**arguments)


# --------------------------------------------------------------------------- command line


def parser():
    root = argparse.ArgumentParser(prog="zoo")
    experiments.add_reproduce_command(root.add_subparsers(dest="command"))
    return root


def test_reproduce_command_parses_its_options():
    args = parser().parse_args(["reproduce", "batch-norm", "--quick", "--run-dir", "somewhere",
                                "--dataset", "mnist1d", "--seed", "3"])
    assert (args.command, args.name, args.quick, args.run_dir, args.dataset, args.seed,
            args.list_experiments) == ("reproduce", "batch-norm", True, "somewhere", "mnist1d", 3, False)
    assert parser().parse_args(["reproduce"]).name is None


def test_reproduce_list_prints_every_experiment(capsys):
    assert experiments.run_reproduce(parser().parse_args(["reproduce", "--list"])) == []
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == experiments.list_experiments()
    claims = {line.index(experiments.get_experiment(line.split()[0]).claim) for line in lines}
    assert len(claims) == 1  # the claims start in one column


def test_reproduce_of_an_unknown_experiment_is_a_value_error():
    with pytest.raises(ValueError, match="Unknown experiment 'frobnicate'. Available experiments"):
        experiments.run_reproduce(parser().parse_args(["reproduce", "frobnicate"]))


def test_experiments_build_their_models_as_they_were_measured(tmp_path):
    from zoo.experiments.common import Context, build

    context = Context(name="depth", dataset="mnist_5k", seed=0, quick=True, run_dir=tmp_path)
    model = build("deep_cnn", context, filters=(4,))
    assert type(model.get_layer("conv_1_1").kernel_initializer).__name__ == "GlorotUniform"
    assert "dense_batch_norm_1" not in [layer.name for layer in model.layers]
    chosen = build("deep_cnn", context, filters=(4,), kernel_initializer="he_normal")
    assert type(chosen.get_layer("conv_1_1").kernel_initializer).__name__ == "HeNormal"
