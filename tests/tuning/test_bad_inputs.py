"""The tuning's table of bad input: ``tune``, ``zoo tune``, the search space
and the hypermodel refuse it with a clear error that names the problem and
the allowed values — before anything is trained or written."""

import pytest

from tuning import SearchSpace, ZooHyperModel, tune
from tuning.cli import main
from tests.tuning.helpers import TINY_CNN


@pytest.mark.parametrize("arguments, message", [
    (dict(tuner="grid"), "Invalid value for argument `tuner`. Expected one of 'hyperband', "
                         "'bayesian', 'random'. Received: tuner='grid'."),
    (dict(max_trials=0), "argument `max_trials`. Expected a positive integer or None. Received: max_trials=0."),
    (dict(max_trials=2.5), "argument `max_trials`. Expected a positive integer or None"),
    (dict(epochs=0), "argument `epochs`. Expected a positive integer. Received: epochs=0"),
    (dict(batch_size=0), "argument `batch_size`. Expected a positive integer"),
    (dict(hyperband_factor=1), "argument `hyperband_factor`. Expected an integer >= 2"),
    (dict(model="no_such_model"), "Unknown model 'no_such_model'. Available models: "),
    (dict(dataset="imagenet42"), "unknown dataset 'imagenet42'; valid names are: mnist1d"),
    (dict(weight_decay=1e-3), "tuned by the search"),
    (dict(optimizer="lbfgs"), "Received: optimizer='lbfgs'"),
    (dict(learning_rate=0.0), "argument `learning_rate`. Expected a finite number > 0"),
    (dict(learning_rate_schedule="step"),
     "argument `learning_rate_schedule`. Expected one of 'cosine', 'constant'. "
     "Received: learning_rate_schedule='step'"),
    (dict(strategy="tpu"), "argument `strategy`. Expected one of 'auto'"),
    (dict(strategy="multi-worker"), "chief/worker mode"),
    (dict(verbose=True), "`verbose` must be one of 'auto', 0, 1, 2"),
    (dict(precision="fp8"), "Invalid value for argument `precision`. Expected one of 'auto', "
                            "'float32', 'mixed_bfloat16', 'mixed_float16'. Received: precision='fp8'."),
    (dict(search_space={"dropout_rate": (0.0, 1.0)}),
     "argument `dropout_rate`. Expected rates with 0 <= low < high < 1"),
])
def test_tune_refuses_bad_input_before_any_work(tmp_path, arguments, message):
    directory = tmp_path / "search"
    with pytest.raises(ValueError) as error:
        tune(**{"model": "cnn1d", "dataset": "mnist1d", "run_dir": directory, "verbose": 0,
                **arguments})
    assert message in str(error.value)
    assert not directory.exists()  # nothing written, nothing trained


@pytest.mark.parametrize("args, message", [
    (["cnn1d", "--weight-decay-range", "1e-2", "1e-6"],
     "--weight-decay-range: Invalid value for argument `weight_decay`. Expected low < high (the "
     "range is empty or inverted). Received: weight_decay=(0.01, 1e-06)."),
    (["cnn1d", "--weight-decay-range", "-1", "1"],
     "--weight-decay-range: Invalid value for argument `weight_decay`. Expected 0 < low < high "
     "(λ cannot be negative)"),
    (["cnn1d", "--dropout-rate-range", "0.2", "1.0"],
     "--dropout-rate-range: Invalid value for argument `dropout_rate`. Expected rates with 0 <= low"),
    (["cnn1d", "--dropout-rate-range", "0.3", "0.3"],
     "--dropout-rate-range: Invalid value for argument `dropout_rate`. Expected low < high (the "
     "range is empty"),
    (["no_such_model"], "Unknown model 'no_such_model'"),
    (["cnn1d", "--dataset", "imagenet42"], "unknown dataset 'imagenet42'"),
    (["cnn1d", "--model-arg", "nonsense=1"], "Unknown argument(s) nonsense"),
    (["cnn1d", "--precision", "fp8"], "Received: --precision fp8"),
    (["cnn1d", "--optimizer", "lbfgs"], "Invalid value for argument --optimizer. Expected one of "
                                        "'adam', 'sgd', 'rmsprop', 'adamw'. Received: --optimizer lbfgs."),
])
def test_cli_prints_one_line_and_exits_2(capsys, tmp_path, args, message):
    assert main(["tune", *args, "--run-dir", str(tmp_path / "search")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "search").exists()


@pytest.mark.parametrize("args, message", [
    (["cnn1d", "--tuner", "grid"], "argument --tuner: invalid choice: 'grid'"),
    (["cnn1d", "--max-trials", "0"], "argument --max-trials: expected a positive integer"),
    (["cnn1d", "--epochs", "0"], "argument --epochs: expected a positive integer"),
    (["cnn1d", "--learning-rate-schedule", "step"],
     "argument --learning-rate-schedule: invalid choice: 'step'"),
    (["cnn1d", "--dropout-rate-range", "0.1"], "argument --dropout-rate-range: expected 2 arguments"),
    (["cnn1d", "--early-stopping-patience", "-1"],
     "argument --early-stopping-patience: expected an integer >= 0"),
    (["cnn1d", "--mixed-precision"], "unrecognized arguments: --mixed-precision"),
    (["cnn1d", "--model-arg", "filters"], "argument --model-arg: expected NAME=VALUE"),
])
def test_cli_argument_errors_exit_2(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["tune", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("arguments, message", [
    (dict(weight_decay=(1e-3, 1e-3)), "empty or inverted"),
    (dict(weight_decay=(0.0, 1e-2)), "include_zero_weight_decay"),
    (dict(weight_decay=(1e-6, float("nan"))), "finite"),
    (dict(weight_decay=1e-3), "pair"),
    (dict(dropout_rate=(-0.1, 0.5)), "0 <= low < high < 1"),
    (dict(dropout_rate=(0.5, 0.2)), "empty or inverted"),
    (dict(learning_rate=(0.0, 1e-2)), "0 < low < high"),
    (dict(include_zero_weight_decay="yes"), "True or False"),
])
def test_bad_ranges_are_refused_with_the_argument_named(arguments, message):
    with pytest.raises(ValueError, match="Invalid value for argument `") as error:
        SearchSpace(**arguments)
    assert message in str(error.value)
    assert f"`{next(iter(arguments))}`" in str(error.value)


@pytest.mark.parametrize("arguments, message", [
    (dict(dropout_rate=0.5), "tuned by the search"),
    (dict(early_stopping_patience=-1), "argument `early_stopping_patience`. Expected an integer >= 0"),
])
def test_hypermodel_refuses_bad_arguments(arguments, message):
    with pytest.raises(ValueError) as error:
        ZooHyperModel("cnn1d", **arguments)
    assert message in str(error.value)


def test_a_corrupt_keras_tuner_state_is_named(data_dir, tmp_path, monkeypatch):
    """A search interrupted before its first trial, whose Keras Tuner state was then damaged."""
    import keras_tuner

    arguments = dict(tuner="random", max_trials=1, epochs=1, run_dir=tmp_path / "search",
                     data_dir=data_dir, verbose=0, **TINY_CNN)

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(keras_tuner.Tuner, "search", interrupted)
        with pytest.raises(KeyboardInterrupt):
            tune("cnn1d", "mnist1d", **arguments)
    for name in ("oracle.json", "tuner0.json"):
        (tmp_path / "search" / name).write_text('{"ongoing_trials": {')
    with pytest.raises(ValueError, match=r"Keras Tuner file .*oracle\.json is corrupt .*pass overwrite=True"):
        tune("cnn1d", "mnist1d", **arguments)
