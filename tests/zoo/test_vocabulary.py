"""One vocabulary from the Python API to the command line: every flag of
`zoo train`, `zoo tune` and `zoo reproduce` is the name of what it sets in the
Python API, the flags the commands share are the same flags, and an error
the library words for Python reads in flags on the command line."""

import dataclasses
import inspect

import pytest

from tuning import SearchConfig, SearchSpace, tune
from zoo import TrainConfig, experiments, train
from zoo.cli import build_parser
from zoo.commands import cli_wording
from zoo.experiments.registry import run as run_experiment
from zoo.models.registry import model_arguments, register_model, training_recipe


def subcommand_options(name: str) -> dict[str, object]:
    """The optional arguments of a ``zoo`` subcommand, by API name (dest)."""
    parser = build_parser()
    subparsers = next(action for action in parser._actions if action.dest == "command")
    return {action.dest: action for action in subparsers.choices[name]._actions
            if action.option_strings and action.dest != "help"}


def names_of(*things) -> set[str]:
    names = set()
    for thing in things:
        if dataclasses.is_dataclass(thing):
            names |= {field.name for field in dataclasses.fields(thing)}
        else:
            names |= set(inspect.signature(thing).parameters)
    return names


def unexplained(options, api_names: set[str]) -> list[str]:
    """The flags that name nothing of the API: not a parameter or field, not
    ``--no-X`` for one, not ``--X-range`` for a search-space field."""
    space = names_of(SearchSpace)
    return sorted(dest for dest in options
                  if dest not in api_names
                  and not (dest.startswith("no_") and dest[3:] in api_names | {"zero_weight_decay"})
                  and not (dest.endswith("_range") and dest[:-6] in space))


def test_every_flag_of_zoo_train_is_an_api_name():
    common_model_arguments = {"weight_decay", "dropout_rate", "batch_norm", "layers"}
    assert common_model_arguments <= set(model_arguments("deep_cnn"))
    api = names_of(train, TrainConfig) | common_model_arguments
    assert unexplained(subcommand_options("train"), api) == []


def test_every_flag_of_zoo_tune_and_zoo_reproduce_is_an_api_name():
    api = names_of(tune, SearchConfig, TrainConfig) | {"batch_norm", "layers", "retrain"}
    assert unexplained(subcommand_options("tune"), api) == []
    # --list is zoo.experiments.list_experiments
    assert unexplained(subcommand_options("reproduce"),
                       names_of(run_experiment) | set(experiments.__all__)) == []


def test_the_commands_share_their_common_flags():
    train_options, tune_options = subcommand_options("train"), subcommand_options("tune")
    reproduce_options = subcommand_options("reproduce")
    shared = set(train_options) & set(tune_options)
    assert {"epochs", "batch_size", "learning_rate", "learning_rate_schedule",
            "early_stopping_patience", "seed", "precision", "run_dir", "verbose",
            "data_dir", "overwrite", "strategy", "model_arguments"} <= shared
    for dest in shared | (set(reproduce_options) & set(train_options)):
        ours = train_options[dest]
        for other in (tune_options.get(dest), reproduce_options.get(dest)):
            if other is not None:  # the same flag, read the same way (defaults may differ)
                assert (other.option_strings, other.type) == (ours.option_strings, ours.type), dest


def test_a_library_error_reads_in_flags_on_the_command_line():
    flags = {"overwrite": "--overwrite", "optimizer": "--optimizer", "dataset": "--dataset",
             "early_stopping_patience": "--early-stopping-patience"}
    assert cli_wording("runs/x holds an unfinished run with other settings (epochs 3 -> 5); "
                       "pass overwrite=True to train afresh.", flags).endswith(
        "pass --overwrite to train afresh.")
    assert cli_wording("Invalid value for argument `optimizer`. Expected one of 'adam'. "
                       "Received: optimizer='lbfgs'.", flags) == (
        "Invalid value for argument --optimizer. Expected one of 'adam'. Received: --optimizer lbfgs.")
    assert cli_wording("Its own dataset is 'mnist1d': pass dataset='mnist1d'.", flags) == (
        "Its own dataset is 'mnist1d': pass --dataset mnist1d.")
    # Names that are not flags of the command, and words that merely contain one, stay.
    assert cli_wording("Received: input_shape=(28, 28, 1); the dataset's inputs", flags) == (
        "Received: input_shape=(28, 28, 1); the dataset's inputs")
    parser = build_parser()  # each subcommand knows its flags, those of its groups too
    assert parser.parse_args(["train", "mlp"]).flags["early_stopping_patience"] == \
        "--early-stopping-patience"
    assert parser.parse_args(["tune", "cnn1d"]).flags["max_trials"] == "--max-trials"


def test_one_config_is_validated_once_and_shared_by_train_and_tune():
    config = TrainConfig.from_arguments("cnn1d", epochs=3, weight_decay=1e-4)
    assert (config.dataset, config.batch_size, config.model_arguments) == (
        "mnist1d", 100, {"weight_decay": 1e-4})
    assert TrainConfig.from_arguments(config) is config
    search = SearchConfig.from_arguments("cnn1d", tuner="random", epochs=3, filters=(8,))
    assert (search.training.epochs, search.training.model_arguments, search.tuner) == (
        3, {"filters": (8,)}, "random")
    with pytest.raises(ValueError, match="tuned by the search"):
        SearchConfig(TrainConfig("cnn1d", model_arguments={"dropout_rate": 0.2}))
    with pytest.raises(ValueError, match="`model` is given twice"):
        TrainConfig.from_arguments("cnn1d", model="deep_cnn")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 4


def test_a_models_recipe_fills_only_the_settings_a_call_leaves_out():
    recipe = training_recipe("lenet5")
    assert recipe["augment"] is True
    config = TrainConfig("lenet5")
    assert {name: getattr(config, name) for name in recipe} == recipe
    assert config.batch_size == 64  # not in the recipe: the dataset's default
    assert training_recipe("resnet20") == training_recipe("resnet")  # a preset trains as its family
    explicit = TrainConfig.from_arguments("lenet5", augment=False, epochs=3)
    assert (explicit.augment, explicit.epochs) == (False, 3)
    plain = TrainConfig("deep_cnn")
    assert (training_recipe("deep_cnn"), plain.epochs, plain.augment,
            plain.early_stopping_patience) == ({}, 15, False, 5)
    parser = build_parser()
    assert parser.parse_args(["train", "lenet5"]).augment is None  # None: the recipe's
    assert parser.parse_args(["train", "lenet5", "--no-augment"]).augment is False
    with pytest.raises(ValueError, match="a recipe sets only epochs, batch_size"):
        register_model(recipe={"optimizer": "sgd"})(lambda: None)


def test_a_recipe_may_differ_by_dataset_and_zoo_info_shows_each(monkeypatch, capsys):
    from zoo.cli import main
    from zoo.models import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_RECIPES", dict(registry._RECIPES))
    registry.register_preset("lenet5_by_dataset", registry.get_builder("lenet5"), "LeNet-5 again.",
                             recipe={"epochs": 40, "augment": True,
                                     "mnist": {"epochs": 12, "augment": False}})
    assert training_recipe("lenet5_by_dataset") == {"epochs": 40, "augment": True}
    assert training_recipe("lenet5_by_dataset", "mnist") == {"epochs": 12, "augment": False}
    assert training_recipe("lenet5_by_dataset", "fashion_mnist") == {"epochs": 40, "augment": True}
    on_own, on_mnist = TrainConfig("lenet5_by_dataset"), TrainConfig("lenet5_by_dataset",
                                                                      dataset="mnist")
    assert (on_own.dataset, on_own.epochs, on_own.augment) == ("mnist_5k", 40, True)
    assert (on_mnist.epochs, on_mnist.augment, on_mnist.batch_size) == (12, False, 64)
    assert TrainConfig.from_arguments("lenet5_by_dataset", dataset="mnist", epochs=3).epochs == 3
    assert main(["info", "lenet5_by_dataset"]) == 0
    lines = capsys.readouterr().out.splitlines()
    own = next(index for index, line in enumerate(lines) if line.startswith("trains by default"))
    assert "trains by default on mnist_5k: epochs=40 (its recipe)" in lines[own]
    assert lines[own + 1].startswith("trains on mnist: epochs=12 (its recipe), batch_size=64,")
    assert "augment=False (its recipe)" in lines[own + 1]
    assert lines[own + 2] == "shipped weights: none"
    for recipe, match in (({"mnist": {"optimizer": "sgd"}}, "a recipe for 'mnist' sets only"),
                          ({"imagenet": {"epochs": 3}}, r"under a dataset's name \(mnist1d")):
        with pytest.raises(ValueError, match=match):
            register_model(recipe=recipe)(lambda: None)


def test_the_training_flags_are_made_from_the_settings_the_config_defaults_to():
    from zoo.vocabulary import TRAINING

    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    for name, setting in TRAINING.items():
        assert name in fields and fields[name].default == setting.default, name
    for command in ("train", "tune"):
        options = subcommand_options(command)
        for name, setting in TRAINING.items():
            flag = options[name]
            assert flag.option_strings == ["--" + name.replace("_", "-")] + (
                ["--no-" + name.replace("_", "-")] if setting.boolean else [])
            assert (flag.default, flag.help) == (setting.default, setting.help), (command, name)


def test_the_search_flags_are_made_from_the_settings_the_search_config_defaults_to():
    from tuning.vocabulary import SEARCH

    fields = {field.name: field for field in dataclasses.fields(SearchConfig)}
    options = subcommand_options("tune")
    for name, setting in SEARCH.items():
        assert name in fields and fields[name].default == setting.default, name
        assert options[name].option_strings == ["--" + name.replace("_", "-")]
        assert (options[name].default, options[name].help) == (setting.default, setting.help)


def test_the_range_flags_are_made_from_the_ranges_the_search_space_defaults_to():
    from tuning.vocabulary import SEARCH_SPACE, range_flag

    fields = {field.name: field for field in dataclasses.fields(SearchSpace)}
    options = subcommand_options("tune")
    ranges = {name for name in fields if name != "include_zero_weight_decay"}
    assert set(SEARCH_SPACE) == ranges
    for name, setting in SEARCH_SPACE.items():
        option = options[name + "_range"]
        assert fields[name].default == setting.default, name
        assert option.option_strings == [range_flag(name)] and option.nargs == 2
        assert (option.default, option.help) == (setting.default, setting.help)
