"""The ``zoo`` command: parses arguments and calls library functions.

    zoo list                     registered models
    zoo datasets                 the datasets: size, ready here or where they would come from
    zoo prepare DATASET          fetch, verify and prepare a dataset ahead of time
    zoo info MODEL               a model's description, arguments and size
    zoo train MODEL [...]        train (and resume) a run
    zoo evaluate RUN_DIR         re-evaluate a finished run on its test split
    zoo export RUN_DIR PATH      export a run's model as a SavedModel
    zoo predict MODEL INPUT...   classify .npy arrays or images (MODEL: a file, or a name
                                 with shipped weights)
    zoo convert IN.keras OUT.keras  a Keras model with custom_layers' twins swapped in
    zoo tune MODEL [...]         search λ and the dropout rate with Keras Tuner
    zoo reproduce NAME [--quick] reproduce a lecture claim (plot + results.json)

``tune`` and ``reproduce`` come from the packages that implement them
(entry points, :mod:`zoo.commands`). Errors print one line
(``zoo: error: ...``) and exit with status 2; Ctrl-C exits with 130 and the
run resumes when the same command is run again.
"""

from __future__ import annotations

import re
import sys
from typing import Sequence

from zoo import commands
from zoo.commands import DATA_DIR_HELP, Parser
from zoo.vocabulary import positive_int


def build_parser() -> Parser:
    """The ``zoo`` parser: its own subcommands and those registered under ``zoo.commands``."""
    parser = Parser(prog="zoo", description="deepzoo: models of layers with hand-written gradients.")
    parser.add_argument("--version", action="version", version=f"zoo (deepzoo) {commands.version()}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    subcommands.required = True

    subcommands.add_parser("list", help="list the registered models")

    datasets = subcommands.add_parser(
        "datasets", help="list the datasets: size, whether ready here, where each comes from")
    datasets.add_argument("--data-dir", default=None, metavar="DIR", help=DATA_DIR_HELP)

    prepare = subcommands.add_parser(
        "prepare", help="fetch, verify and prepare a dataset ahead of time")
    prepare.add_argument("dataset", help="a dataset name (see `zoo datasets`)")
    prepare.add_argument("--data-dir", default=None, metavar="DIR", help=DATA_DIR_HELP)

    info = subcommands.add_parser("info", help="describe a model: arguments, defaults, parameters")
    info.add_argument("model")

    train = subcommands.add_parser("train", help="train a model (re-run to resume an unfinished run)")
    commands.add_training_arguments(train)
    commands.add_run_arguments(train, "default: ./runs/MODEL-DATASET")
    train.add_argument("--overwrite", action="store_true",
                       help="train afresh: replace a finished run, or drop an unfinished one's backup")
    train.add_argument("--strategy", choices=("auto", "none", "mirrored", "multi-worker"),
                       default="auto", help="auto (default): mirrored over 2 or more GPUs, else none")
    train.add_argument("--gradient-stats", action="store_true",
                       help="record per-layer gradient statistics into the run directory "
                            "(gradients.csv, gradients.png, TensorBoard)")
    train.add_argument("--gradient-stats-every", type=positive_int, default=None, metavar="N",
                       help="record them every N steps (default 100; implies --gradient-stats)")
    train.add_argument("--per-example-gradients", action="store_true",
                       help="with the statistics, per-example gradient norms of Dense and Conv "
                            "kernels (implies --gradient-stats)")

    evaluate = subcommands.add_parser("evaluate", help="re-evaluate a finished run on its test split")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--data-dir", default=None, metavar="DIR", help=DATA_DIR_HELP)

    export = subcommands.add_parser("export", help="export a run's model as a TensorFlow SavedModel")
    export.add_argument("run_dir")
    export.add_argument("path", help="the SavedModel directory to write (must not exist)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace a SavedModel already at PATH (nothing else is replaced)")

    predict = subcommands.add_parser("predict", help="classify .npy arrays or PNG/JPEG images")
    predict.add_argument("model_path", help="a .keras file, a run directory, an exported SavedModel "
                                            "directory, or a registered model name (its shipped "
                                            "weights)")
    predict.add_argument("inputs", nargs="+", help=".npy files (one example or a batch) or images")

    convert = subcommands.add_parser(
        "convert", help="swap custom_layers' twins into a saved Keras model (same weights)")
    convert.add_argument("model_path", help="the .keras file to convert")
    convert.add_argument("out_path", help="the .keras file to write (replaced if it exists)")

    for name, handler in HANDLERS.items():
        subcommands.choices[name].set_defaults(handler=handler)
    # Commands built on zoo (zoo tune, zoo reproduce) register themselves.
    commands.add_contributed_commands(subcommands)
    return parser


def _list(_args) -> None:
    from zoo.flops import count_flops
    from zoo.models import create_model, list_models
    from zoo.models.registry import get_builder

    print(f"{'model':<22} {'params':>9} {'MACs':>7}  (per example, the default input)")
    for name in list_models():
        count = count_flops(create_model(name))
        print(f"{name:<22} {_millions(count.parameters):>9} {_millions(count.macs):>7}  "
              f"{_first_sentence(get_builder(name).__doc__ or '')}")
    from zoo.datasets import list_datasets

    print(f"{_datasets_here(list_datasets())} (`zoo info MODEL` says which a model takes)")


def _datasets(args) -> None:
    from zoo import datasets

    rows = [("dataset", "train/test", "download", "ready", "from")]
    for name in datasets.list_datasets():
        meta, here = datasets.info(name), datasets.availability(name, args.data_dir)
        rows.append((name, f"{meta.num_train:,}/{meta.num_test:,}",
                     f"{meta.megabytes:.1f} MB" if meta.megabytes else "-",
                     "yes" if here.ready else "no", here.source))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])


def _prepare(args) -> None:
    from zoo import datasets

    here = datasets.ensure_ready(args.dataset, args.data_dir, progress=True)
    print(f"{args.dataset}: ready here; {here.source}")


def _millions(number: int) -> str:
    """A count in millions, or thousands below 0.1 M: 0.27M, 61.7k."""
    return f"{number / 1e6:.2f}M" if number >= 100_000 else f"{number / 1e3:.1f}k"


def _first_sentence(docstring: str) -> str:
    """A docstring's first sentence on one line, without reStructuredText's backticks."""
    paragraph = " ".join(docstring.strip().split("\n\n")[0].split()).replace("``", "")
    end = re.search(r"(?<!\bal)\.(\s+[A-Z(]|$)", paragraph)  # not after "et al."
    return paragraph[:end.start() + 1] if end else paragraph


def _info(args) -> None:
    from zoo.flops import count_flops
    from zoo.models.registry import datasets_for, get_builder, model_arguments, recipe_datasets
    from zoo.models.weights import card_lines
    from zoo.training import TrainConfig

    builder = get_builder(args.model)
    print(args.model)
    print(" ".join((builder.__doc__ or "").split()))
    print("arguments:")
    for key, value in model_arguments(args.model).items():
        print(f"  {key} = {value!r}")
    count = count_flops(builder())
    print(f"parameters: {count.parameters:,} (with the default input shape)")
    print(f"multiply-accumulates per example: {count.macs:,} forward, "
          f"{count.training_macs:,} a training step (3x)")
    config = TrainConfig(args.model)
    print(f"trains by default on {config.dataset}: {_recipe_line(args.model, config.dataset)}")
    for dataset in recipe_datasets(args.model):
        if dataset != config.dataset:
            print(f"trains on {dataset}: {_recipe_line(args.model, dataset)}")
    cards = card_lines(args.model)
    print("shipped weights:" if cards else "shipped weights: none")
    for line in cards:
        print(f"  {line}")
    print(_datasets_here(datasets_for(args.model)))


def _recipe_line(model: str, dataset: str) -> str:
    """What ``model`` trains with on ``dataset``, marking what its recipe sets."""
    from zoo.models.registry import RECIPE_FIELDS, training_recipe
    from zoo.training import TrainConfig

    config, recipe = TrainConfig(model, dataset=dataset), training_recipe(model, dataset)
    return ", ".join(f"{name}={getattr(config, name)!r}{' (its recipe)' if name in recipe else ''}"
                     for name in RECIPE_FIELDS)


def _datasets_here(names: list[str]) -> str:
    """Which of ``names`` load on this machine without the network, and which need a fetch."""
    from zoo.datasets import availability

    ready = [name for name in names if availability(name).ready]
    line = f"datasets ready here: {', '.join(ready) or 'none'}"
    others = [name for name in names if name not in ready]
    if others:
        line += f"; to fetch first (`zoo datasets` says from where): {', '.join(others)}"
    return line


def _train(args) -> None:
    from zoo.training import RunFinishedError

    try:
        _train_run(args)
    except RunFinishedError as finished:  # done already: like a finished `zoo tune`, exit 0
        import json

        from zoo import runs

        recorded = json.loads((finished.run_dir / runs.FINISHED_FILE).read_text())
        print(f"{finished.run_dir} already holds a finished run: test accuracy "
              f"{recorded.get('test_accuracy', float('nan')):.4f}; --overwrite trains it again.")


def _train_run(args) -> None:
    from zoo.training import train

    result = train(
        args.model, run_dir=args.run_dir, overwrite=args.overwrite, strategy=args.strategy,
        data_dir=args.data_dir, verbose=commands.verbosity(args),
        gradient_stats=args.gradient_stats, gradient_stats_every=args.gradient_stats_every,
        per_example_gradients=args.per_example_gradients, **commands.training_settings(args))
    metrics = result.metrics
    print(f"test accuracy {metrics['test_accuracy']:.4f}  test loss {metrics['test_loss']:.4f}  "
          f"epochs {metrics['epochs_run']}  params {metrics['params']:,}  "
          f"time {metrics['wall_time_s']:.1f}s  {metrics['precision']}  -> {result.run_dir}")


def _evaluate(args) -> None:
    from zoo.training import evaluate_run

    result = evaluate_run(args.run_dir, data_dir=args.data_dir)
    print(f"{result['dataset']}: test accuracy {result['test_accuracy']:.4f}  "
          f"test loss {result['test_loss']:.4f}")


def _export(args) -> None:
    from zoo.export import export_run

    path = export_run(args.run_dir, args.path, replace=args.overwrite)
    print(f"exported SavedModel to {path} (signature `serve`)")


def _predict(args) -> None:
    from zoo.export import Predictor, read_named_inputs

    predictor = Predictor(args.model_path)
    notes: list[str] = [predictor.weights_note] if predictor.weights_note else []
    inputs, names = read_named_inputs(args.inputs, predictor.input_shape, notes)
    for note in notes:
        print(f"zoo: note: {note}", file=sys.stderr)
    for name, row in zip(names, predictor.predict(inputs)):
        print(f"{name}\tclass {int(row.argmax())}\tprobability {float(row.max()):.4f}")


def _convert(args) -> None:
    import warnings

    from custom_layers import convert
    from zoo.io import atomic_save_model, load_model

    model = load_model(args.model_path)
    with warnings.catch_warnings():  # the kept layers are printed below instead
        warnings.simplefilter("ignore")
        converted = convert(model)
    atomic_save_model(converted, args.out_path)
    kept = ", ".join(converted.kept_layers) or "none"
    print(f"converted {len(converted.converted_layers)} layer(s) to custom_layers; "
          f"kept as they were: {kept} "
          f"-> {args.out_path}")


HANDLERS = {"list": _list, "datasets": _datasets, "prepare": _prepare, "info": _info,
            "train": _train, "evaluate": _evaluate, "export": _export, "predict": _predict,
            "convert": _convert}


def main(argv: Sequence[str] | None = None) -> int:
    return commands.main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
