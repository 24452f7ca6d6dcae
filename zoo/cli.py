"""The ``zoo`` command: parses arguments and calls library functions.

    zoo list                     registered models
    zoo info MODEL               a model's description, arguments and size
    zoo train MODEL [...]        train (and resume) a run
    zoo evaluate RUN_DIR         re-evaluate a finished run on its test split
    zoo export RUN_DIR PATH      export a run's model as a SavedModel
    zoo predict MODEL INPUT...   classify .npy arrays or images
    zoo tune MODEL [...]         search λ and the dropout rate with Keras Tuner
    zoo reproduce NAME [--quick] reproduce a lecture claim (plot + results.json)

Errors print one line (``zoo: error: ...``) and exit with status 2; Ctrl-C
exits with 130 and the run resumes when the same command is run again.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def int_at_least(minimum: int):
    """An argparse ``type`` for integers ≥ ``minimum``; its error names the bound."""
    expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, received {text!r}")
        return value

    return parse


positive_int = int_at_least(1)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, received {text!r}")
    return value


def _rate(text: str) -> float:
    value = _non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1), received {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="zoo", description="deepzoo: models of layers with hand-written gradients.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    commands.add_parser("list", help="list the registered models")

    info = commands.add_parser("info", help="describe a model: arguments, defaults, parameters")
    info.add_argument("model")

    train = commands.add_parser("train", help="train a model (re-run to resume an unfinished run)")
    train.add_argument("model", help="a registered model name (see `zoo list`)")
    train.add_argument("--dataset", default="mnist_5k", help="default: %(default)s (offline)")
    train.add_argument("--epochs", type=positive_int, default=None,
                       help="default: 15 (40 on mnist1d)")
    train.add_argument("--batch-size", type=positive_int, default=None,
                       help="per replica, the global batch is this times the replicas; "
                            "default: 64 (100 on mnist1d)")
    train.add_argument("--learning-rate", type=float, default=None,
                       help="initial step size; default: 1e-3 (3e-3 on mnist1d)")
    train.add_argument("--optimizer", default="adam", help="adam, sgd, rmsprop or adamw")
    train.add_argument("--schedule", default="cosine", choices=("cosine", "constant"),
                       help="learning-rate schedule (default: %(default)s)")
    train.add_argument("--patience", type=int, default=5, help="early-stopping patience (epochs)")
    train.add_argument("--weight-decay", type=_non_negative_float, default=None,
                       help="λ in E = E_D + λ‖w‖² (default: the model's)")
    train.add_argument("--dropout", type=_rate, default=None,
                       help="dropout rate (default: the model's)")
    train.add_argument("--no-batch-norm", action="store_true", help="build without batch norm")
    train.add_argument("--layers", choices=("custom", "keras"), default=None,
                       help="hand-written-gradient layers (default) or keras.layers")
    train.add_argument("--run-dir", default=None, help="default: ./runs/MODEL-DATASET")
    train.add_argument("--overwrite", action="store_true",
                       help="train afresh: replace a finished run, or drop an unfinished one's backup")
    train.add_argument("--strategy", choices=("none", "mirrored", "multi-worker"), default="none")
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    train.add_argument("--augment", action="store_true", help="random shifts/rotations of images")

    evaluate = commands.add_parser("evaluate", help="re-evaluate a finished run on its test split")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--data-dir", default=None)

    export = commands.add_parser("export", help="export a run's model as a TensorFlow SavedModel")
    export.add_argument("run_dir")
    export.add_argument("path", help="the SavedModel directory to write (must not exist)")

    predict = commands.add_parser("predict", help="classify .npy arrays or PNG/JPEG images")
    predict.add_argument("model_path", help="a .keras file or an exported SavedModel directory")
    predict.add_argument("inputs", nargs="+", help=".npy files (one example or a batch) or images")

    # The tuning package builds on zoo; its command is added here, the CLI
    # being the one place that presents both (no TensorFlow imported).
    from tuning.cli import add_tune_command

    add_tune_command(commands)

    from zoo.experiments.cli import add_reproduce_command

    add_reproduce_command(commands)
    return parser


def _list(_args) -> None:
    from zoo.models import list_models
    from zoo.models.registry import get_builder

    for name in list_models():
        summary = (get_builder(name).__doc__ or "").strip().splitlines()[0]
        print(f"{name:<24} {summary}")


def _info(args) -> None:
    from zoo.models.registry import get_builder, model_arguments

    builder = get_builder(args.model)
    print(args.model)
    print(" ".join((builder.__doc__ or "").split()))
    print("arguments:")
    for key, value in model_arguments(args.model).items():
        print(f"  {key} = {value!r}")
    print(f"parameters: {builder().count_params():,} (with the default input shape)")


def _train(args) -> None:
    from zoo.training import train

    overrides = {}
    if args.weight_decay is not None:
        overrides["weight_decay"] = args.weight_decay
    if args.dropout is not None:
        overrides["dropout_rate"] = args.dropout
    if args.no_batch_norm:
        overrides["batch_norm"] = False
    if args.layers is not None:
        overrides["layers"] = args.layers
    result = train(
        args.model, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, optimizer=args.optimizer,
        learning_rate_schedule=args.schedule,
        early_stopping_patience=args.patience, run_dir=args.run_dir, overwrite=args.overwrite,
        strategy=args.strategy, seed=args.seed, data_dir=args.data_dir, augment=args.augment,
        **overrides,
    )
    metrics = result.metrics
    print(f"test accuracy {metrics['test_accuracy']:.4f}  test loss {metrics['test_loss']:.4f}  "
          f"epochs {metrics['epochs_run']}  params {metrics['params']:,}  "
          f"time {metrics['wall_time_s']:.1f}s  -> {result.run_dir}")


def _evaluate(args) -> None:
    from zoo.training import evaluate_run

    result = evaluate_run(args.run_dir, data_dir=args.data_dir)
    print(f"{result['dataset']}: test accuracy {result['test_accuracy']:.4f}  "
          f"test loss {result['test_loss']:.4f}")


def _export(args) -> None:
    from zoo.export import export_run

    print(f"exported SavedModel to {export_run(args.run_dir, args.path)} (signature `serve`)")


def _predict(args) -> None:
    from zoo.export import Predictor, read_inputs

    predictor = Predictor(args.model_path)
    probabilities = predictor.predict(read_inputs(args.inputs, predictor.input_shape))
    for index, row in enumerate(probabilities):
        print(f"{index}\tclass {int(row.argmax())}\tprobability {float(row.max()):.4f}")


def _tune(args) -> None:
    from tuning.cli import run_tune

    run_tune(args)


def _reproduce(args) -> None:
    from zoo.experiments.cli import run_reproduce

    run_reproduce(args)


COMMANDS = {"list": _list, "info": _info, "train": _train, "evaluate": _evaluate,
            "export": _export, "predict": _predict, "tune": _tune, "reproduce": _reproduce}


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow with file descriptor 2 pointed at /dev/null: its C++
    runtime prints start-up notices before its log level applies, and a user's
    terminal should show only this program's own output and errors."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def run_command(handler, args) -> int:
    """Runs a command handler the way every ``zoo`` command runs: TensorFlow
    imported quietly, errors as one line with exit status 2, Ctrl-C as 130."""
    try:
        _import_tensorflow_quietly()
        handler(args)
    except KeyboardInterrupt:
        print("zoo: interrupted; run the same command again to resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError, RuntimeError, KeyError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"zoo: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:  # Ctrl-C before the command started: nothing to resume
        print("zoo: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    return run_command(COMMANDS[args.command], args)


if __name__ == "__main__":
    sys.exit(main())
