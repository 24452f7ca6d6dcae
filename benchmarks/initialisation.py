"""Dead ReLU units and test accuracy: Glorot or He initialisation, with or
without batch norm in the dense head.

Each model trains as ``zoo train`` trains it (its own dataset, the defaults,
early stopping) in each variant, for each seed:

    glorot   every kernel Glorot uniform, no batch norm in the dense head (the zoo before)
    he       ReLU layers' kernels He normal (He et al. 2015), no batch norm in the head
    now      the zoo's defaults: He normal, and batch norm in the head where the
             model has batch norm (``head_batch_norm``)
 Then the trained model sees the test
split: a unit of a ReLU layer (a channel of a feature map) is dead when it
is 0 for every test example at every position. The JSON holds, per model
and initialisation, the dead fraction of each ReLU layer and the test
accuracy per seed, with their means.

    python -m benchmarks.initialisation --out initialisation.json [--quick]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from typing import Any

from benchmarks.report import environment, write_report
from zoo.commands import Parser
from zoo.vocabulary import positive_int

VARIANTS = {
    "glorot": {"kernel_initializer": "glorot_uniform", "head_batch_norm": False},
    "he": {"head_batch_norm": False},
    "now": {},
}
MODELS = ("deep_cnn", "deep_mlp", "cnn1d")


def parse_args(argv=None):
    parser = Parser(prog="python -m benchmarks.initialisation",
                    description="Dead ReLU units and accuracy, Glorot against He; write JSON.")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="default: %(default)s")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                        help="default: all")
    parser.add_argument("--seeds", type=positive_int, default=None,
                        help="seeds 0..N-1 (default 3, 1 with --quick)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="default: zoo train's (1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    args = parser.parse_args(argv)
    args.seeds = args.seeds or (1 if args.quick else 3)
    args.epochs = args.epochs or (1 if args.quick else None)
    return args


def dead_fractions(model, test_data) -> dict[str, float]:
    """Per ReLU layer: the fraction of its units (channels) that are 0 for
    every example of ``test_data`` at every position."""
    import keras
    import numpy as np

    relus = [layer for layer in model.layers if type(layer).__name__ == "Activation"
             and layer.get_config()["activation"] == "relu"]
    probe = keras.Model(model.inputs, [layer.output for layer in relus])
    largest = None
    for x, _ in test_data:
        outputs = probe(x, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        batch = [np.asarray(output).reshape(-1, output.shape[-1]).max(axis=0) for output in outputs]
        largest = batch if largest is None else [np.maximum(a, b) for a, b in zip(largest, batch)]
    return {layer.name: round(float(np.mean(values <= 0)), 4) for layer, values in zip(relus, largest)}


def main(argv=None) -> int:
    args = parse_args(argv)
    from zoo.commands import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from zoo import datasets
    from zoo.models import model_arguments
    from zoo.training import train

    results: dict[str, Any] = {}
    for model in args.models:
        results[model] = {}
        for label in args.variants:
            runs = []
            accepted = model_arguments(model)
            arguments = {key: value for key, value in VARIANTS[label].items() if key in accepted}
            for seed in range(args.seeds):
                settings = {} if args.epochs is None else {"epochs": args.epochs}
                started = time.time()
                with tempfile.TemporaryDirectory() as run_dir:
                    result = train(model, run_dir=run_dir, seed=seed, verbose=0, precision="float32",
                                   **settings, **arguments)
                test_data = datasets.load(result.config.dataset, "test", batch_size=256)
                dead = dead_fractions(result.model, test_data)
                runs.append({"seed": seed, "test_accuracy": round(result.metrics["test_accuracy"], 4),
                             "epochs_run": result.metrics["epochs_run"], "dead_fraction": dead,
                             "wall_time_s": round(time.time() - started, 1)})
                print(f"{model} {label} seed {seed}: accuracy {runs[-1]['test_accuracy']:.4f}, "
                      f"dead {dead}", file=sys.stderr, flush=True)
                keras.backend.clear_session()
            accuracies = [run["test_accuracy"] for run in runs]
            layers = list(runs[0]["dead_fraction"])
            results[model][label] = {
                "runs": runs,
                "test_accuracy_mean": round(statistics.mean(accuracies), 4),
                "test_accuracy_std": round(statistics.stdev(accuracies), 4) if len(runs) > 1 else None,
                "dead_fraction_mean": {layer: round(statistics.mean(
                    run["dead_fraction"][layer] for run in runs), 4) for layer in layers},
            }
    report = {
        "benchmark": "initialisation",
        "environment": environment(),
        "settings": {"models": args.models, "seeds": args.seeds, "epochs": args.epochs or "zoo train's",
                     "precision": "float32", "quick": args.quick,
                     "variants": {label: VARIANTS[label] for label in args.variants}},
        "results": results,
    }
    write_report(report, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
