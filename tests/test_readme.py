"""The README's Python examples run as written.

Each ```python block runs in a fresh directory. The calls that would train
for minutes (``train``, ``tune``) are checked, not run: their arguments are
bound to the real signatures and turned into the real configs, which
validate them as a run would before it starts. The names a block leaves to
the reader (``x``, ``y``, ``my_op``, ...) are given small stand-ins."""

import inspect
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[tuple[int, str]]:
    """(line number, code) of every ```python block of the README."""
    text = README.read_text()
    return [(text[:match.start()].count("\n") + 1, match.group(1))
            for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)]


@pytest.fixture
def checked_calls(monkeypatch):
    """``zoo.train`` and ``tuning.tune`` replaced by checks of their arguments;
    returns the configs they were called with."""
    import tuning.search
    import zoo.training
    from tuning import SearchConfig
    from zoo import TrainConfig

    calls = []
    train, tune = zoo.training.train, tuning.search.tune

    def check_train(*args, **kwargs):
        bound = inspect.signature(train).bind(*args, **kwargs)
        arguments = bound.arguments
        config = TrainConfig.from_arguments(arguments.get("model", "deep_cnn"), arguments.get("dataset"),
                                            **arguments.get("settings", {}))
        calls.append(config)
        return SimpleNamespace(metrics={"test_accuracy": float("nan")}, config=config)

    def check_tune(*args, **kwargs):
        bound = inspect.signature(tune).bind(*args, **kwargs)
        arguments = bound.arguments
        config = SearchConfig.from_arguments(arguments.get("config"), arguments.get("dataset"),
                                             **arguments.get("settings", {}))
        calls.append(config)
        return SimpleNamespace(best_hyperparameters={}, test_accuracy=float("nan"), config=config)

    monkeypatch.setattr(zoo.training, "train", check_train)
    monkeypatch.setattr(tuning.search, "tune", check_tune)
    return calls


def stand_ins() -> dict:
    """Small values for the names the README's blocks leave to the reader."""
    import keras

    from custom_layers import ops

    rng = np.random.default_rng(0)
    return {
        "x": rng.random((32, 28, 28, 1), np.float32), "y": rng.integers(0, 10, 32),
        "w": rng.normal(size=(5, 3)),
        "my_op": ops.dense,
        "my_reference_forward": lambda x, w: keras.ops.matmul(x, w),
    }


def test_the_readme_has_python_examples():
    assert len(python_blocks()) >= 5


def test_every_python_example_of_the_readme_runs(tmp_path, monkeypatch, checked_calls):
    import keras

    from tuning import SearchConfig
    from zoo import TrainConfig

    monkeypatch.chdir(tmp_path)
    namespace = stand_ins()
    for line, code in python_blocks():
        if "load_model(\"my_model.keras\")" in code:  # the reader's own saved model
            namespace["model"].save("my_model.keras")
        if "check_gradients(" in code:  # an op of two inputs, in float64
            namespace["x"] = np.random.default_rng(1).normal(size=(4, 5))
        try:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
        except Exception as error:
            pytest.fail(f"the README's example at line {line} fails: {type(error).__name__}: {error}")
        keras.backend.clear_session()
    trainings = [call for call in checked_calls if isinstance(call, TrainConfig)]
    searches = [call for call in checked_calls if isinstance(call, SearchConfig)]
    assert trainings and trainings[0].dataset == "mnist1d"  # cnn1d trains on its own dataset
    assert len(searches) == 2
    assert searches[0].training == searches[1].training == TrainConfig("cnn1d", epochs=40)


def test_the_readme_results_table_is_the_one_the_results_csvs_give():
    from benchmarks.results import RESULTS, readme_table

    assert sorted(path.name for path in RESULTS.glob("results-*.csv"))
    assert readme_table() in README.read_text()


def test_the_results_table_has_a_row_for_every_registered_model():
    import csv

    from benchmarks.results import RESULTS, preset_of
    from zoo.models import default_dataset, list_models

    rows = [row for path in RESULTS.glob("results-*.csv") for row in csv.DictReader(path.open())]
    own = sorted(row["model"] for row in rows if row["dataset"] == default_dataset(row["model"]))
    assert own == list_models()  # every model on its own dataset, once
    assert len({(row["model"], row["dataset"]) for row in rows}) == len(rows)
    assert preset_of("resnet", list_models()) == "resnet20"  # the family's row is its preset's runs
    assert preset_of("deep_cnn", list_models()) is None
