"""The ``zoo reproduce`` command, registered for ``zoo`` as an entry point of ``zoo.commands``.

    zoo reproduce --list                     the experiments and their claims
    zoo reproduce batch-norm --quick         one experiment, a few minutes
    zoo reproduce                            all of them, full settings
    zoo reproduce depth --dataset mnist1d --seed 1 --out runs/depth-1d
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zoo.commands import add_precision_argument, int_at_least, native_precision


def add_reproduce_command(subparsers) -> argparse.ArgumentParser:
    """Adds ``reproduce [NAME] [--quick] [--list] [--out DIR] [--dataset D]
    [--seed N] [--data-dir DIR] [--precision P]`` to an argparse ``subparsers`` object."""
    parser = subparsers.add_parser(
        "reproduce", help="reproduce the lecture's claims: plots and results.json",
        description="Runs one experiment (or all, without NAME) and writes its plot and "
                    "results.json to ./runs/reproduce-NAME (or --out).")
    parser.add_argument("name", nargs="?", default=None, metavar="NAME",
                        help="an experiment (see --list); all of them when left out")
    parser.add_argument("--quick", action="store_true",
                        help="small settings: a few minutes per experiment on two CPU cores")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output directory (default: ./runs/reproduce-NAME; with all "
                             "experiments, DIR/reproduce-NAME)")
    parser.add_argument("--dataset", default=None,
                        help="any zoo dataset (default: each experiment's offline one)")
    parser.add_argument("--seed", type=int_at_least(0), default=0, help="default: %(default)s")
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    add_precision_argument(parser)
    parser.set_defaults(handler=run_reproduce)
    return parser


def run_reproduce(args: argparse.Namespace) -> list[dict]:
    """Carries out a parsed ``reproduce`` command; returns the results of each experiment run."""
    from zoo.experiments.registry import get_experiment, list_experiments, run

    if args.list:
        for name in list_experiments():
            experiment = get_experiment(name)
            print(f"{name:<16} {experiment.claim}  [dataset {experiment.dataset}]")
        return []
    if args.name is not None:
        get_experiment(args.name)  # unknown names fail before any work
        names, out_dirs = [args.name], [args.out]
    else:
        names = list_experiments()
        out_dirs = [None if args.out is None else Path(args.out) / f"reproduce-{name}" for name in names]
    return [run(name, out_dir=out_dir, quick=args.quick, dataset=args.dataset, seed=args.seed,
                data_dir=args.data_dir, precision=native_precision(args.precision))
            for name, out_dir in zip(names, out_dirs)]
