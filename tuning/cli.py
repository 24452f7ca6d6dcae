"""The ``tune`` subcommand of the ``zoo`` command: parses arguments and calls
:func:`tuning.tune`.

    zoo tune cnn1d --dataset mnist1d --tuner hyperband --epochs 9
    zoo tune cnn1d --tuner bayesian --max-trials 20 --weight-decay-range 1e-5 1e-2 \\
        --dropout-rate-range 0 0.5 --export-dir exported/cnn1d

It prints the trial table (trial, λ, dropout, validation accuracy), the best
hyperparameters and the test accuracy of the retrained best model, and leaves
``results.json`` and ``search.png`` in the project directory (``--run-dir``).
Its flags are the Python API's names: ``zoo train``'s training flags, and
``tuning.tune``'s options. Re-running the same command resumes an
interrupted search. Under Keras Tuner's distributed mode (environment
variables KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT;
see ``tuning.tuners``) the same command runs the chief or a worker.

Nothing here imports TensorFlow; ``python -m tuning.cli tune ...`` runs the
subcommand on its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from tuning.vocabulary import SEARCH, SEARCH_SPACE, range_flag
from zoo.commands import (
    Parser,
    add_run_arguments,
    add_training_arguments,
    training_settings,
    verbosity,
)
from zoo.vocabulary import positive_int


def add_tune_command(subparsers: argparse.Action) -> argparse.ArgumentParser:
    """Adds ``tune`` to the ``zoo`` command's subparsers; returns its parser."""
    tune = subparsers.add_parser(
        "tune", help="search λ and the dropout rate with Keras Tuner (re-run to resume)",
        description="Search the weight decay λ and the dropout rate of a zoo model with Keras "
                    "Tuner, retrain the best configuration and evaluate it on the test split. "
                    "The training flags are zoo train's.")
    add_training_arguments(tune, model_arguments=False)
    add_run_arguments(tune, "the project directory (default: runs/tuning/MODEL-DATASET-TUNER)")
    tune.add_argument("--overwrite", action="store_true",
                      help="start the search afresh instead of resuming it")
    tune.add_argument("--strategy", choices=("auto", "none", "mirrored"), default="auto",
                      help="auto (default): mirrored over 2 or more GPUs, else none")

    search = tune.add_argument_group("search")
    for name, setting in SEARCH.items():  # SearchConfig's own settings
        setting.add_to(search, name)
    search.add_argument("--max-trials", type=positive_int, default=None,
                        help="trials of a bayesian/random search (default 10); a cap for hyperband")
    for name, setting in SEARCH_SPACE.items():  # SearchSpace's ranges
        setting.add_to(search, name + "_range")
    search.add_argument("--no-zero-weight-decay", action="store_true",
                        help="do not also try λ = 0")
    search.add_argument("--pick", default="best", metavar="RULE",
                        help="which front member is retrained: best (default) or "
                             "smallest-within:POINTS, the cheapest within POINTS of the best")

    after = tune.add_argument_group("after the search")
    after.add_argument("--no-retrain", action="store_true",
                       help="evaluate the best trial's checkpoint instead of retraining it")
    after.add_argument("--export-dir", metavar="DIR", default=None,
                       help="export the best model as a TensorFlow SavedModel to DIR")
    after.add_argument("--tensorboard", action="store_true",
                       help="TensorBoard logs per trial under RUN_DIR/logs")
    tune.set_defaults(handler=run_tune)
    return tune


def _search_space(args):
    from tuning.search_space import SearchSpace

    ranges = {name: getattr(args, name + "_range") for name in SEARCH_SPACE}
    try:
        return SearchSpace(include_zero_weight_decay=not args.no_zero_weight_decay,
                           **{name: None if lo_hi is None else tuple(lo_hi)
                              for name, lo_hi in ranges.items()})
    except ValueError as error:
        flag = next((range_flag(name) for name in ranges if f"`{name}`" in str(error)), None)
        raise ValueError(f"{flag}: {error}" if flag else str(error)) from None


def run_tune(args: argparse.Namespace) -> None:
    """Runs ``zoo tune`` for parsed ``args``: search, print the table and the
    best model's test accuracy (a worker prints the trials it ran)."""
    from tuning.report import format_trial_table, trial_number
    from tuning.search import tune

    result = tune(
        args.model, max_trials=args.max_trials, run_dir=args.run_dir, overwrite=args.overwrite,
        data_dir=args.data_dir, strategy=args.strategy, retrain=not args.no_retrain,
        export_dir=args.export_dir, tensorboard=args.tensorboard, verbose=verbosity(args),
        search_space=_search_space(args), pick=args.pick,
        **{name: getattr(args, name) for name in SEARCH}, **training_settings(args))
    if result.role == "worker":
        ran = ", ".join(result.trials_run) or "none"
        print(f"worker {result.tuner.tuner_id}: search finished; ran trials: {ran}. "
              f"The chief writes the results to {result.project_dir}.")
        return
    print(format_trial_table(result.trials, result.best_trial_id))
    best = result.best_hyperparameters
    print(f"best trial #{trial_number(result.best_trial_id)}: λ = {best['weight_decay']:.3g}, "
          f"dropout = {best['dropout_rate']:.3f}, learning rate = {best['learning_rate']:.3g}, "
          f"val accuracy {result.best_val_accuracy:.4f}")
    front = json.loads(result.results_path.read_text()).get("front")
    if front:
        print("front of validation accuracy against multiply-accumulates per example:")
        for row in front:
            print(f"  #{row['trial']:<4} width {row['width'] or 1:<6.3g} MACs {row['macs']:>12,}  "
                  f"val accuracy {row['val_accuracy']:.4f}"
                  + ("  <- retrained" if row["trial_id"] == result.best_trial_id else ""))
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
