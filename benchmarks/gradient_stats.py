"""What recording gradient statistics costs a training run.

``deep_cnn`` on mnist_5k at ``zoo train``'s batch size trains with Keras'
``fit`` in epochs of ``--every`` steps, so that each epoch holds exactly one
recorded step, for three variants:

    off           no callback (``zoo train`` without ``--gradient-stats``)
    every         ``GradientStatistics(every=N)`` (``--gradient-stats-every N``)
    per_example   the same with per-example norms (``--per-example-gradients``)

Each fit runs a few epochs; its first epoch (which traces the step) is
dropped. The variants take turns, round after round, so machine noise hits
all alike, and the median epoch gives the seconds per step. The overhead is
(variant − off) / off.

    python -m benchmarks.gradient_stats --out gradient_stats.json [--quick]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from typing import Any

from benchmarks.report import environment, write_report
from zoo.commands import Parser
from zoo.vocabulary import positive_int

VARIANTS = ("off", "every", "per_example")


def parse_args(argv=None):
    parser = Parser(prog="python -m benchmarks.gradient_stats",
                    description="Time training steps with and without GradientStatistics; write JSON.")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--model", default="deep_cnn", help="a zoo model (default deep_cnn)")
    parser.add_argument("--dataset", default="mnist_5k", help="default mnist_5k")
    parser.add_argument("--every", type=positive_int, default=100,
                        help="record every N steps; also the epoch length (default 100)")
    parser.add_argument("--rounds", type=positive_int, default=None,
                        help="rounds of the variants in turn (default 4, 1 with --quick)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="epochs per fit, the first dropped (default 3, 2 with --quick)")
    parser.add_argument("--precision", default="auto", help="default auto")
    parser.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 4)
    args.epochs = max(args.epochs or (2 if args.quick else 3), 2)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from zoo.commands import import_tensorflow_quietly

    import_tensorflow_quietly()
    from benchmarks.training_speed import build_model
    from custom_layers.inspect import GradientStatistics
    from zoo import datasets
    from zoo.training import training_defaults
    from zoo.training.engine import EpochTimer
    from zoo.training.precision import choose_precision

    precision = choose_precision(args.precision)
    info = datasets.info(args.dataset)
    batch_size = int(training_defaults(args.dataset)["batch_size"])
    data = datasets.load(args.dataset, "train", batch_size=batch_size, drop_remainder=True).repeat()
    models = {variant: build_model(args.model, "custom", precision.policy, info)
              for variant in VARIANTS}
    seconds: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            for variant, model in models.items():
                timer = EpochTimer()
                callbacks = [timer]
                if variant != "off":
                    callbacks.insert(0, GradientStatistics(
                        f"{scratch}/{variant}{round_index}", every=args.every,
                        per_example=variant == "per_example"))
                model.fit(data, epochs=args.epochs, steps_per_epoch=args.every, verbose=0,
                          callbacks=callbacks)
                seconds[variant].extend(timer.seconds[1:])
                print(f"round {round_index + 1}, {variant}: "
                      f"{[round(s, 2) for s in timer.seconds]} s per epoch", file=sys.stderr)
    step_ms = {variant: 1000 * statistics.median(values) / args.every
               for variant, values in seconds.items()}
    report: dict[str, Any] = {
        "benchmark": "gradient_stats",
        "environment": environment(),
        "precision": {"policy": precision.policy, "reason": precision.reason},
        "settings": {"model": args.model, "dataset": args.dataset, "batch_size": batch_size,
                     "every": args.every, "rounds": args.rounds, "epochs_per_fit": args.epochs,
                     "quick": args.quick},
        "median_step_ms": {variant: round(value, 3) for variant, value in step_ms.items()},
        "overhead": {variant: round(step_ms[variant] / step_ms["off"] - 1, 4)
                     for variant in VARIANTS if variant != "off"},
        "epoch_seconds": {variant: [round(s, 3) for s in values] for variant, values in seconds.items()},
    }
    write_report(report, args.out)
    print(f"overhead at N = {args.every}: {report['overhead']}; wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
