"""The ``tune`` subcommand of the ``zoo`` command: parses arguments and calls
:func:`tuning.tune`.

    zoo tune cnn1d --dataset mnist1d --tuner hyperband --max-epochs 9
    zoo tune cnn1d --tuner bayesian --max-trials 20 --weight-decay-range 1e-5 1e-2 \\
        --dropout-range 0 0.5 --export exported/cnn1d

It prints the trial table (trial, λ, dropout, validation accuracy), the best
hyperparameters and the test accuracy of the retrained best model, and leaves
``results.json`` and ``search.png`` in the project directory
(``--directory``/``--project-name``). Re-running the same command resumes an
interrupted search. Under Keras Tuner's distributed mode (environment
variables KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT;
see ``tuning.tuners``) the same command runs the chief or a worker.

Nothing here imports TensorFlow; ``python -m tuning.cli tune ...`` runs the
subcommand on its own.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from zoo.commands import (
    Parser,
    add_model_argument,
    add_precision_argument,
    native_precision,
    positive_int,
)

TUNER_CHOICES = ("hyperband", "bayesian", "random")


def add_tune_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds ``tune`` to the ``zoo`` command's subparsers; returns its parser."""
    tune = subparsers.add_parser(
        "tune", help="search λ and the dropout rate with Keras Tuner (re-run to resume)",
        description="Search the weight decay λ and the dropout rate of a zoo model with Keras "
                    "Tuner, retrain the best configuration and evaluate it on the test split.")
    tune.add_argument("model", help="a registered model name (see `zoo list`)")
    tune.add_argument("--dataset", default="mnist1d", help="default: %(default)s (offline)")
    tune.add_argument("--tuner", choices=TUNER_CHOICES, default="hyperband",
                      help="Keras Tuner's Hyperband, BayesianOptimization or RandomSearch "
                           "(default: %(default)s)")
    tune.add_argument("--max-trials", type=positive_int, default=None,
                      help="trials of a bayesian/random search (default 10); a cap for hyperband")
    tune.add_argument("--max-epochs", type=positive_int, default=None,
                      help="most epochs per model; Hyperband's largest budget "
                           "(default: as `zoo train`, 15; 40 on mnist1d)")
    tune.add_argument("--directory", default=None, help="default: runs/tuning")
    tune.add_argument("--project-name", default=None, help="default: MODEL-DATASET-TUNER")
    tune.add_argument("--overwrite", action="store_true",
                      help="start the search afresh instead of resuming it")
    tune.add_argument("--export", metavar="DIR", default=None,
                      help="export the best model as a TensorFlow SavedModel to DIR")

    space = tune.add_argument_group("search space")
    space.add_argument("--weight-decay-range", nargs=2, type=float, metavar=("LO", "HI"),
                       default=(1e-6, 1e-2), help="λ, log-uniform (default: 1e-6 1e-2)")
    space.add_argument("--no-zero-weight-decay", action="store_true",
                       help="do not also try λ = 0")
    space.add_argument("--dropout-range", nargs=2, type=float, metavar=("LO", "HI"),
                       default=(0.0, 0.7), help="dropout rate, uniform (default: 0 0.7)")
    space.add_argument("--learning-rate-range", nargs=2, type=float, metavar=("LO", "HI"),
                       default=None, help="also tune the learning rate, log-uniform")

    training = tune.add_argument_group("training")
    training.add_argument("--learning-rate", type=float, default=None,
                          help="when not tuned; default: as `zoo train` (1e-3, 3e-3 on mnist1d)")
    training.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                          help="learning-rate schedule over --max-epochs (default: %(default)s)")
    training.add_argument("--optimizer", default="adam", help="adam, sgd, rmsprop or adamw")
    training.add_argument("--batch-size", type=positive_int, default=None,
                          help="per replica; default: as `zoo train` (64, 100 on mnist1d)")
    training.add_argument("--patience", type=int, default=5,
                          help="early-stopping patience in epochs (default: %(default)s)")
    training.add_argument("--seed", type=int, default=None)
    training.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    training.add_argument("--no-retrain", action="store_true",
                          help="evaluate the best trial's checkpoint instead of retraining it")
    training.add_argument("--hyperband-factor", type=int, default=3)
    training.add_argument("--hyperband-iterations", type=positive_int, default=1)

    model = tune.add_argument_group("model (fixed during the search)")
    model.add_argument("--layers", choices=("custom", "keras"), default=None,
                       help="hand-written-gradient layers (default) or keras.layers")
    model.add_argument("--no-batch-norm", action="store_true", help="build without batch norm")
    add_model_argument(model)

    devices = tune.add_argument_group("devices")
    devices.add_argument("--strategy", choices=("auto", "none", "mirrored"), default="auto",
                         help="auto: MirroredStrategy over all GPUs when there are 2 or more")
    add_precision_argument(devices)
    devices.add_argument("--mixed-precision", action="store_true",
                         help="deprecated: the same as --precision mixed_float16")
    devices.add_argument("--tensorboard", action="store_true",
                         help="TensorBoard logs per trial under PROJECT_DIR/logs")
    tune.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                      help="0 silent, 1 progress bars, 2 one line per epoch (default)")
    tune.set_defaults(handler=run_tune)
    return tune


def _search_space(args):
    from tuning.search_space import SearchSpace

    flags = {"weight_decay": "--weight-decay-range", "dropout_rate": "--dropout-range",
             "learning_rate": "--learning-rate-range"}
    try:
        return SearchSpace(
            weight_decay=tuple(args.weight_decay_range),
            include_zero_weight_decay=not args.no_zero_weight_decay,
            dropout_rate=tuple(args.dropout_range),
            learning_rate=None if args.learning_rate_range is None else tuple(args.learning_rate_range),
        )
    except ValueError as error:
        flag = next((flag for key, flag in flags.items() if f"`{key}`" in str(error)), None)
        raise ValueError(f"{flag}: {error}" if flag else str(error)) from None


def _precision(args: argparse.Namespace) -> str:
    """``--precision``, or mixed_float16 for the deprecated ``--mixed-precision``."""
    if not args.mixed_precision:
        return native_precision(args.precision)
    if args.precision not in ("auto", "mixed_float16"):
        raise ValueError(f"--mixed-precision contradicts --precision {args.precision}; "
                         "pass --precision alone.")
    print("zoo tune: --mixed-precision is deprecated; use --precision mixed_float16.",
          file=sys.stderr)
    return native_precision("mixed_float16")


def run_tune(args: argparse.Namespace) -> None:
    """Runs ``zoo tune`` for parsed ``args``: search, print the table and the
    best model's test accuracy (a worker prints the trials it ran)."""
    from tuning.report import format_trial_table
    from tuning.search import tune

    overrides = dict(args.model_arg)
    if args.no_batch_norm:
        overrides["batch_norm"] = False
    if args.layers is not None:
        overrides["layers"] = args.layers
    result = tune(
        args.model, dataset=args.dataset, tuner=args.tuner, max_trials=args.max_trials,
        max_epochs=args.max_epochs, directory=args.directory, project_name=args.project_name,
        overwrite=args.overwrite, search_space=_search_space(args), batch_size=args.batch_size,
        seed=args.seed, data_dir=args.data_dir, precision=_precision(args),
        distribution_strategy=args.strategy, learning_rate=args.learning_rate,
        learning_rate_schedule=args.schedule,
        optimizer=args.optimizer, early_stopping_patience=args.patience,
        hyperband_factor=args.hyperband_factor, hyperband_iterations=args.hyperband_iterations,
        retrain=not args.no_retrain, export_dir=args.export, tensorboard=args.tensorboard,
        verbose=args.verbose, **overrides,
    )
    if result.role == "worker":
        ran = ", ".join(result.trials_run) or "none"
        print(f"worker {result.tuner.tuner_id}: search finished; ran trials: {ran}. "
              f"The chief writes the results to {result.project_dir}.")
        return
    print(format_trial_table(result.trials, result.best_trial_id))
    best = result.best_hyperparameters
    print(f"best trial {result.best_trial_id}: λ = {best['weight_decay']:.3g}, "
          f"dropout = {best['dropout_rate']:.3f}, learning rate = {best['learning_rate']:.3g}, "
          f"val accuracy {result.best_val_accuracy:.4f}")
    print(f"test accuracy {result.test_accuracy:.4f}  test loss {result.test_loss:.4f}  "
          f"-> {result.results_path}, {result.plot_path}")
    if result.export_dir is not None:
        print(f"exported SavedModel -> {result.export_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tuning.cli tune ...``: the subcommand without the rest of
    ``zoo``; errors as ``zoo`` prints them (one line, exit 2)."""
    from zoo import commands

    def build_parser() -> Parser:
        parser = Parser(prog="zoo", description="deepzoo: tune a model's λ and dropout rate.")
        subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
        subcommands.required = True
        add_tune_command(subcommands)
        return parser

    return commands.main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
