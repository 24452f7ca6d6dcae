"""The zoo on an accelerator, measured in one run: training step, a full
``zoo train`` and a Keras Tuner search, on JAX, without TensorFlow.

    KERAS_BACKEND=jax python -m benchmarks.gpu --out gpu.json [--quick]

On whatever device JAX finds (a GPU, else the CPU) it records:

1. the device, its compute capability and the JAX version;
2. ``deep_cnn``'s training step, custom_layers against keras.layers, in the
   precision ``auto`` picks there (interleaved, median;
   :mod:`benchmarks.training_step`) — target custom/keras ≤ 1.05;
3. ``zoo train deep_cnn`` on mnist_5k with ``zoo train``'s defaults: test
   accuracy, training wall time, examples per second;
4. a Hyperband search of λ and the dropout rate of ``cnn1d`` on MNIST-1D (the
   README's CPU tuning benchmark's space and budget): trials per hour, the
   tuned model's test accuracy, the device memory in use after each trial,
   and the share of the search spent compiling (JAX's compile-time events).

``--quick`` shrinks every part to a smoke run (a minute on a CPU). The full
run is sized to finish within 8 minutes on one H100.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from typing import Any

from benchmarks.report import environment, write_report
from zoo.commands import Parser

FULL = dict(step_repeats=30, train_epochs=None, max_epochs=27)
QUICK = dict(step_repeats=3, train_epochs=1, max_epochs=2)


def parse_args(argv=None):
    parser = Parser(prog="python -m benchmarks.gpu",
                    description="Measure the zoo on the device JAX finds and write JSON.")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    return parser.parse_args(argv)


def device_info() -> dict[str, Any]:
    import jax

    device = jax.devices()[0]
    return {"platform": device.platform, "device_kind": device.device_kind,
            "compute_capability": getattr(device, "compute_capability", None),
            "device_count": jax.device_count(), "jax": jax.__version__}


def device_bytes_in_use() -> int | None:
    """Bytes the first device's allocator holds now (None where JAX does not tell)."""
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("bytes_in_use")


class CompileClock:
    """Sums the durations of JAX's compile events (tracing, lowering, XLA
    compilation) while it is active."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self, event: str, duration: float, **_):
        if "compile" in event or "tracing" in event or "lowering" in event:
            self.seconds += duration

    def __enter__(self):
        import jax.monitoring

        jax.monitoring.register_event_duration_secs_listener(self)
        return self

    def __exit__(self, *exc):
        import jax.monitoring

        jax.monitoring.unregister_event_duration_listener(self)


def measure_step(repeats: int, policy: str) -> dict[str, Any]:
    from benchmarks.training_step import measure

    return measure("deep_cnn", repeats, steps=5, precision=policy)


def measure_training(epochs: int | None, workdir: str) -> dict[str, Any]:
    from zoo.training import train

    result = train("deep_cnn", "mnist_5k", epochs=epochs, seed=0, verbose=0, overwrite=True,
                   run_dir=os.path.join(workdir, "deep_cnn"))
    metrics = result.metrics
    return {key: metrics[key] for key in ("test_accuracy", "epochs_run", "wall_time_s",
                                          "train_examples_per_second", "precision")}


def measure_search(max_epochs: int, workdir: str) -> dict[str, Any]:
    from tuning import SearchConfig, SearchSpace, tune
    from zoo.training import TrainConfig, training_defaults

    defaults = training_defaults("mnist1d")
    space = SearchSpace(weight_decay=(1e-6, 1e-2), include_zero_weight_decay=True,
                        dropout_rate=(0.0, 0.7))
    training = TrainConfig("cnn1d", "mnist1d", epochs=max_epochs, batch_size=defaults["batch_size"],
                           learning_rate=defaults["learning_rate"], learning_rate_schedule="cosine",
                           seed=1)
    config = SearchConfig(training, "hyperband", space)
    memory: list[int | None] = []
    with CompileClock() as clock:
        started = time.time()
        result = tune(config, run_dir=os.path.join(workdir, "cnn1d-mnist1d"), overwrite=True, verbose=0,
                      trial_observers=[lambda trial: memory.append(device_bytes_in_use())])
        wall = time.time() - started
    import json

    results = json.loads(result.results_path.read_text())
    search_s = results["search_wall_time_s"]
    trials = results["num_completed_trials"]
    known = [value for value in memory if value is not None]
    return {
        "trials": trials,
        "search_wall_time_s": search_s,
        "trials_per_hour": round(trials / search_s * 3600, 1) if search_s else None,
        "best_hyperparameters": result.best_hyperparameters,
        "best_val_accuracy": result.best_val_accuracy,
        "tuned_test_accuracy": results["test_accuracy"],
        "wall_time_with_retrain_s": round(wall, 1),
        "compile_s": round(clock.seconds, 1),
        "compile_share_of_search_and_retrain": round(clock.seconds / wall, 3) if wall else None,
        "device_bytes_in_use_after_each_trial": memory,
        "device_memory_growth_bytes": (known[-1] - known[0]) if len(known) > 1 else None,
        "device_memory_median_bytes": statistics.median(known) if known else None,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    import keras

    if keras.backend.backend() != "jax":
        print("benchmarks.gpu: error: run it with KERAS_BACKEND=jax", file=sys.stderr)
        return 2
    from zoo.training.precision import choose_precision

    settings = QUICK if args.quick else FULL
    started = time.time()
    precision = choose_precision("auto")
    report: dict[str, Any] = {"benchmark": "gpu", "quick": args.quick, "device": device_info(),
                              "precision": {"policy": precision.policy,
                                            "reason": precision.reason}}
    print(f"device: {report['device']}; precision {precision}", flush=True)
    report["training_step"] = measure_step(settings["step_repeats"], precision.policy)
    print(f"deep_cnn step custom/keras {report['training_step']['ratio_custom_over_keras']}",
          flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        report["train"] = measure_training(settings["train_epochs"], workdir)
        print(f"zoo train deep_cnn: {report['train']}", flush=True)
        report["search"] = measure_search(settings["max_epochs"], workdir)
    print(f"hyperband cnn1d: {report['search']['trials']} trials, "
          f"{report['search']['trials_per_hour']} trials/hour, tuned test accuracy "
          f"{report['search']['tuned_test_accuracy']}", flush=True)
    report["wall_s"] = round(time.time() - started, 1)
    report["environment"] = environment()
    write_report(report, args.out)
    print(f"wrote {args.out} ({report['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
