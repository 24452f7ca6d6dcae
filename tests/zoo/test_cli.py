"""The `zoo` command: happy paths in-process, an error as a real subprocess
(one line on stderr, non-zero exit, no traceback); the other bad inputs are
rows of tests/zoo/test_bad_inputs.py."""

import subprocess
import sys

import pytest

from zoo.cli import main


def run_zoo(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_list_prints_every_model(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ["deep_cnn", "deep_mlp", "cnn1d", "bn_paper_mlp", "dropout_paper_mlp"]:
        assert name in out


def test_info_shows_arguments_and_parameters(capsys):
    assert main(["info", "bn_paper_mlp"]) == 0
    out = capsys.readouterr().out
    assert "hidden_units = (100, 100, 100)" in out and "parameters:" in out
    assert "trains by default on mnist_5k: epochs=15, batch_size=64" in out


def test_info_shows_the_recipe_a_model_trains_with(capsys):
    assert main(["info", "lenet5"]) == 0
    assert "epochs=40 (its recipe)" in capsys.readouterr().out


def test_commands_built_on_zoo_are_found_through_entry_points(capsys):
    from importlib.metadata import entry_points

    from zoo.cli import build_parser

    registered = {point.name for point in entry_points(group="zoo.commands")}
    assert registered == {"reproduce", "tune"}
    parser = build_parser()
    assert parser.parse_args(["tune", "cnn1d"]).handler.__module__ == "tuning.cli"
    assert parser.parse_args(["reproduce"]).handler.__module__ == "zoo.experiments.cli"
    assert main(["reproduce", "--list"]) == 0  # runs the contributed command's handler
    assert "batch-norm" in capsys.readouterr().out


def test_evaluate_of_a_missing_run_dir_fails_cleanly_in_a_subprocess(tmp_path):
    result = run_zoo("evaluate", str(tmp_path / "nothing-here"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("zoo: error:")
    assert "nothing-here does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_convert_swaps_custom_layers_into_a_saved_keras_model(tmp_path, capsys):
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
                              keras.layers.Dropout(0.2), keras.layers.Dense(2)])
    model.save(tmp_path / "model.keras")
    assert main(["convert", str(tmp_path / "model.keras"), str(tmp_path / "custom.keras")]) == 0
    out = capsys.readouterr().out
    assert "converted 3 layer(s) to custom_layers; kept as they were: none" in out

    from zoo.io import load_model

    converted = load_model(tmp_path / "custom.keras")
    assert [type(layer).__module__.split(".")[0] for layer in converted.layers] == ["custom_layers"] * 3
    x = np.random.default_rng(0).standard_normal((5, 4)).astype("float32")
    np.testing.assert_allclose(converted(x), model(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("flags, every", [
    ([], None), (["--gradient-stats"], 100), (["--gradient-stats-every", "7"], 7),
    (["--per-example-gradients"], 100)])
def test_gradient_statistics_flags(flags, every):
    from zoo.cli import build_parser
    from zoo.training.run import _check_gradient_statistics

    args = build_parser().parse_args(["train", "mlp", *flags])
    assert _check_gradient_statistics(args.gradient_stats, args.gradient_stats_every,
                                      args.per_example_gradients, "auto")[1] == every


def test_a_ctrl_c_that_python_ignored_still_stops_the_command(capsys):
    """SIGINT's KeyboardInterrupt can land in a garbage-collection callback,
    where Python drops it: the command still ends as interrupted (130), and a
    training in progress stops at its next batch."""
    import argparse

    import keras
    import numpy as np

    from zoo.commands import EXIT_INTERRUPTED, run_command
    from zoo.interrupts import interrupt_requested
    from zoo.training import training_callbacks

    def handler_whose_interrupt_was_dropped(args):
        interrupt_requested.set()

    assert run_command(handler_whose_interrupt_was_dropped, argparse.Namespace()) == EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().err

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    batches = []
    interrupt_requested.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(np.zeros((8, 2)), np.zeros(8), batch_size=2, verbose=0,
                      callbacks=[*training_callbacks(), keras.callbacks.LambdaCallback(
                          on_train_batch_begin=lambda batch, logs: batches.append(batch))])
    finally:
        interrupt_requested.clear()
    assert batches == [0]
