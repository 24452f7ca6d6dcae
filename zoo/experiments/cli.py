"""The ``zoo reproduce`` command, registered for ``zoo`` as an entry point of ``zoo.commands``.

    zoo reproduce --list                     the experiments and their claims
    zoo reproduce batch-norm --quick         one experiment, a few minutes
    zoo reproduce                            all of them, full settings
    zoo reproduce depth --dataset mnist1d --seed 1 --run-dir runs/depth-1d
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zoo.commands import add_precision_argument, add_run_arguments, verbosity
from zoo.vocabulary import non_negative_int


def add_reproduce_command(subparsers) -> argparse.ArgumentParser:
    """Adds ``reproduce [NAME] [--quick] [--list] [--dataset D] [--seed N]
    [--precision P] [--run-dir DIR] [--verbose V] [--data-dir DIR]`` to an
    argparse ``subparsers`` object (the flags it shares are ``zoo train``'s)."""
    parser = subparsers.add_parser(
        "reproduce", help="reproduce the lecture's claims: plots and results.json",
        description="Runs one experiment (or all, without NAME) and writes its plot and "
                    "results.json to ./runs/reproduce-NAME (or --run-dir).")
    parser.add_argument("name", nargs="?", default=None, metavar="NAME",
                        help="an experiment (see --list); all of them when left out")
    parser.add_argument("--quick", action="store_true",
                        help="small settings: a few minutes per experiment on two CPU cores")
    parser.add_argument("--list", dest="list_experiments", action="store_true",
                        help="list the experiments and exit")
    parser.add_argument("--dataset", default=None,
                        help="any zoo dataset (default: each experiment's offline one)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="default: %(default)s")
    add_precision_argument(parser)
    add_run_arguments(parser, "default: ./runs/reproduce-NAME; with all experiments, "
                              "DIR/reproduce-NAME")
    parser.set_defaults(handler=run_reproduce)
    return parser


def run_reproduce(args: argparse.Namespace) -> list[dict]:
    """Carries out a parsed ``reproduce`` command; returns the results of each experiment run."""
    from zoo.experiments.registry import check_dataset, get_experiment, list_experiments, run

    if args.list_experiments:
        width = max(map(len, list_experiments())) + 2
        for name in list_experiments():
            experiment = get_experiment(name)
            others = [dataset for dataset in experiment.datasets or () if dataset != experiment.dataset]
            print(f"{name:<{width}}{experiment.claim}  [dataset {experiment.dataset}"
                  f"{'; also ' + ', '.join(others) if others else ''}]")
        return []
    if args.name is not None:
        get_experiment(args.name)  # unknown names fail before any work
        names, run_dirs = [args.name], [args.run_dir]
    else:
        names = list_experiments()
        run_dirs = [None if args.run_dir is None else Path(args.run_dir) / f"reproduce-{name}"
                    for name in names]
    if args.dataset is not None:
        for name in names:  # every experiment can use it, before any runs
            check_dataset(name, args.dataset)
    return [run(name, run_dir=run_dir, quick=args.quick, dataset=args.dataset, seed=args.seed,
                data_dir=args.data_dir, precision=args.precision,
                verbose=verbosity(args))
            for name, run_dir in zip(names, run_dirs)]
