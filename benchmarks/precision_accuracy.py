"""Does a half precision cost accuracy? ``zoo.train`` at float32 and at a mixed
precision, the same seeds, side by side.

    python -m benchmarks.precision_accuracy --out precision.json \\
        [--cases cnn1d:mnist1d deep_cnn:mnist_5k] [--seeds 0 1 2] [--precision mixed_bfloat16]

For each case and seed the two precisions train one after the other with the
zoo's defaults; the JSON records every run (test accuracy, epochs, wall time,
examples per second) and per case the mean and standard deviation of each
precision's test accuracy, their difference, and whether it lies within the
seeds' spread (|difference| ≤ the larger of the two standard deviations, or
one test example when both are 0).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile

from benchmarks.report import environment, write_report
from zoo.commands import Parser
from zoo.vocabulary import int_at_least

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_CASES = ("cnn1d:mnist1d", "deep_cnn:mnist_5k")


def summarise(runs: list[dict], baseline: str, half: str, test_examples: int) -> dict:
    """Mean ± std of each precision's test accuracy and whether the gap is within the spread."""
    accuracy = {precision: [run["test_accuracy"] for run in runs if run["precision"] == precision]
                for precision in (baseline, half)}
    spread = {precision: statistics.stdev(values) if len(values) > 1 else 0.0
              for precision, values in accuracy.items()}
    means = {precision: statistics.fmean(values) for precision, values in accuracy.items()}
    difference = means[half] - means[baseline]
    allowed = max(max(spread.values()), 1.0 / test_examples)
    return {
        "mean_test_accuracy": {key: round(value, 5) for key, value in means.items()},
        "std_test_accuracy": {key: round(value, 5) for key, value in spread.items()},
        "difference_points": round(100 * difference, 3),
        "within_seed_spread": abs(difference) <= allowed,
    }


def main(argv=None) -> int:
    parser = Parser(prog="python -m benchmarks.precision_accuracy",
                    description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), metavar="MODEL:DATASET")
    parser.add_argument("--seeds", type=int_at_least(0), nargs="+", default=[0, 1, 2])
    parser.add_argument("--precision", default="mixed_bfloat16",
                        help="the half precision compared with float32 (default: %(default)s)")
    parser.add_argument("--epochs", type=int_at_least(1), default=None,
                        help="default: zoo train's for the dataset")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    from zoo import datasets
    from zoo.training import train
    from zoo.training.precision import choose_precision

    half = choose_precision(args.precision)
    report = {"benchmark": "precision_accuracy", "environment": environment(),
              "half_precision": {"policy": half.policy, "native": half.native, "reason": half.reason},
              "seeds": args.seeds, "cases": {}}
    with tempfile.TemporaryDirectory() as workdir:
        for case in args.cases:
            model, dataset = case.split(":")
            runs = []
            for seed in args.seeds:
                for precision in ("float32", half.policy):
                    metrics = train(model, dataset=dataset, epochs=args.epochs, seed=seed,
                                    precision=precision, data_dir=args.data_dir, verbose=0,
                                    run_dir=os.path.join(workdir, f"{model}-{precision}-{seed}")).metrics
                    runs.append({"seed": seed, **{key: metrics[key] for key in (
                        "precision", "test_accuracy", "epochs_run", "wall_time_s",
                        "train_examples_per_second")}})
                    print(f"{case} seed {seed} {precision}: {metrics['test_accuracy']:.4f} "
                          f"({metrics['wall_time_s']:.0f} s)", file=sys.stderr, flush=True)
            test_examples = datasets.info(dataset).num_examples("test")
            report["cases"][case] = {"runs": runs,
                                     **summarise(runs, "float32", half.policy, test_examples)}
            write_report(report, args.out)
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
