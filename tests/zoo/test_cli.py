"""The `zoo` command: happy paths in-process, bad inputs as a real subprocess
(one line on stderr, non-zero exit, no traceback)."""

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


@pytest.mark.parametrize("args, message", [
    (["info", "no_such_model"], "Unknown model 'no_such_model'"),
    (["train", "no_such_model"], "Unknown model 'no_such_model'"),
    (["train", "deep_cnn", "--dataset", "imagenet42"], "imagenet42"),
    (["train", "deep_cnn", "--optimizer", "lbfgs"], "Received: optimizer='lbfgs'"),
    (["train", "deep_cnn", "--learning-rate", "-1"], "argument `learning_rate`"),
])
def test_bad_inputs_print_one_line_and_exit_non_zero(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["train", "deep_cnn", "--epochs", "0"], "--epochs"),
    (["train", "deep_cnn", "--dropout", "1.5"], "--dropout"),
    (["train", "deep_cnn", "--weight-decay", "-0.1"], "--weight-decay"),
    (["train", "deep_cnn", "--layers", "torch"], "--layers"),
    (["frobnicate"], "invalid choice"),
])
def test_argument_errors_print_one_line_and_exit_2(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_evaluate_of_a_missing_run_dir_fails_cleanly_in_a_subprocess(tmp_path):
    result = run_zoo("evaluate", str(tmp_path / "nothing-here"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("zoo: error:")
    assert "is not a finished run" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
