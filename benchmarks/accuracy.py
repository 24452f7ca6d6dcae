"""Accuracy and training time of zoo models, custom layers vs keras.layers, side by side.

    python -m benchmarks.accuracy --out accuracy.json [--epochs N] [--cases cnn1d:mnist1d ...]
                                  [--workdir DIR]

For each case (model on dataset) the custom-layer and the keras-layer variant
are trained alternately with the same seed (so the same initial weights and
data order) by ``zoo.train``, and the JSON records test accuracy, epochs run,
wall time, the accuracy gap and the time ratio custom/keras. With
``--workdir`` the runs are kept there (``MODEL-DATASET-LAYERS-SEED``): an
interrupted benchmark resumes, and a finished run of the same settings is
read, not trained again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import environment, write_report
from zoo.commands import Parser
from zoo.vocabulary import int_at_least, positive_int

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_CASES = ("cnn1d:mnist1d", "deep_cnn:mnist_5k")
TARGETS = {"cnn1d:mnist1d": 0.985, "deep_cnn:mnist_5k": 0.980}


def run_case(case: str, epochs: int | None, seed: int, workdir: str, data_dir: str | None,
             train_options: dict) -> dict:
    from zoo import runs
    from zoo.models.registry import RECIPE_FIELDS
    from zoo.training import RunFinishedError, train

    model, dataset = case.split(":")
    results = {}
    for layers in ("custom", "keras"):
        run_dir = os.path.join(workdir, f"{model}-{dataset}-{layers}-{seed}")
        try:
            metrics = train(model, dataset=dataset, epochs=epochs, seed=seed, run_dir=run_dir,
                            data_dir=data_dir, verbose=0, **train_options,
                            # custom is the default, recorded as no argument (as zoo train does)
                            **({} if layers == "custom" else {"layers": layers})).metrics
        except RunFinishedError:  # finished with these settings by an earlier call
            metrics = json.loads((Path(run_dir) / runs.FINISHED_FILE).read_text())
        settings = json.loads((Path(run_dir) / runs.SETTINGS_FILE).read_text())
        results[layers] = {key: metrics[key] for key in
                           ("test_accuracy", "test_loss", "epochs_run", "wall_time_s", "params")}
        results[layers]["seconds_per_epoch"] = round(metrics["wall_time_s"] / metrics["epochs_run"], 3)
        print(f"{case:<20} {layers:<7} seed {seed}: accuracy {metrics['test_accuracy']:.4f} "
              f"epochs {metrics['epochs_run']} time {metrics['wall_time_s']:.1f}s", flush=True)
    custom, keras_ = results["custom"], results["keras"]
    return {
        "case": case,
        "seed": seed,
        "training": {name: settings[name] for name in RECIPE_FIELDS},
        **{f"{layers}_{key}": value for layers, values in results.items()
           for key, value in values.items()},
        "accuracy_gap_points": round(100 * (custom["test_accuracy"] - keras_["test_accuracy"]), 2),
        "time_per_epoch_ratio_custom_over_keras": round(
            custom["seconds_per_epoch"] / keras_["seconds_per_epoch"], 3),
        "target_accuracy": TARGETS.get(case),
        "meets_accuracy_target": (custom["test_accuracy"] >= TARGETS[case]) if case in TARGETS
        else None,
    }


def main(argv=None) -> int:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES),
                        help="MODEL:DATASET pairs (default: %(default)s)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="default: the model's recipe, else the dataset's (15, or 40 on "
                             "mnist1d)")
    parser.add_argument("--seeds", type=int_at_least(0), nargs="+", default=[0])
    parser.add_argument("--batch-size", type=positive_int, default=None)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="default: the model's recipe (zoo.models.training_recipe)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--workdir", default=None,
                        help="keep the runs here, to resume and reuse (default: a temporary one)")
    parser.add_argument("--precision", default="auto",
                        help="auto, float32, mixed_bfloat16 or mixed_float16 (default auto)")
    args = parser.parse_args(argv)
    for case in args.cases:
        if case.count(":") != 1:
            print(f"accuracy: error: a case is MODEL:DATASET, received {case!r}", file=sys.stderr)
            return 2
    if args.epochs is not None and args.epochs < 1:
        print(f"accuracy: error: --epochs must be >= 1, received {args.epochs}", file=sys.stderr)
        return 2

    options = {"precision": args.precision}
    for name in ("augment", "batch_size"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    rows = []
    started = time.time()
    with (contextlib.nullcontext(args.workdir) if args.workdir
          else tempfile.TemporaryDirectory()) as workdir:
        for case in args.cases:
            for seed in args.seeds:
                rows.append(run_case(case, args.epochs, seed, workdir, args.data_dir, options))
    report = {
        "benchmark": "accuracy",
        "epochs": args.epochs or "the model's recipe, else the dataset's default",
        "options": options,
        **environment(),
        "total_seconds": round(time.time() - started, 1),
        "results": rows,
    }
    write_report(report, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
