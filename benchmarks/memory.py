"""Process memory over a long tuning search: does RSS grow trial over trial?

    python -m benchmarks.memory --out memory.json                  # ~2 min on 2 CPU cores
    python -m benchmarks.memory --out benchmarks/results/memory_cpu.json --compare   # twice that

``tuning.tune`` runs a random search (``--trials`` trials, 1 epoch each) of a
tiny ``cnn1d`` on MNIST-1D in this process. After each trial has ended —
after the zoo's trial hook has cleared the Keras session and collected
garbage, as in every search — the resident set size of the process is read
from ``/proc/self/statm`` (psutil elsewhere). The JSON has the RSS after each
trial, the growth per trial as the slope of a least-squares line over the
second half of the trials (the first trials still fill caches: TensorFlow's
kernels, the tf.data buffers, the allocator's arenas), over all trials, and
the total.

Clearing the Keras session is not enough with this package's layers: every
``@tf.custom_gradient`` op traced in graph mode registers its gradient function
in TensorFlow's global gradient registry, which keeps the traced graph alive
for ever (about 4 MB per trial here). The zoo's tuners remove a trial's
registrations when it ends (``tuning.tuners.ZooTuner``).
``--keep-custom-gradients`` turns that off, to measure the leak; ``--compare``
also runs the search that way, in a fresh process, and adds it to the JSON.
Under ``KERAS_BACKEND=jax`` the same search runs on JAX, which has no such
registry (``--compare`` then measures the same thing twice).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.report import environment, write_report
from zoo.commands import Parser
from zoo.vocabulary import positive_int

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TINY_CNN = {"filters": (8,), "dense_units": (16,)}


def rss_mb() -> float:
    """The resident set size of this process now, in MiB."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import psutil

        return psutil.Process().memory_info().rss / 2**20


def slope(values: list[float]) -> float | None:
    """Least-squares growth per step of ``values`` (None for fewer than 2)."""
    import numpy as np

    if len(values) < 2:
        return None
    return float(np.polyfit(np.arange(len(values)), np.asarray(values), 1)[0])


def main(argv=None) -> int:
    if not __package__:  # as a script, `import tuning` would find the tuning benchmark
        print("memory benchmark: error: run it as `python -m benchmarks.memory`", file=sys.stderr)
        return 2
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--trials", type=positive_int, default=30, help="trials of the search (default 30)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--keep-custom-gradients", action="store_true",
                        help="do not remove a finished trial's custom-gradient registrations")
    parser.add_argument("--compare", action="store_true",
                        help="also run with --keep-custom-gradients (a fresh process) and report both")
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    args = parser.parse_args(argv)
    if args.trials < 4:
        parser.error("--trials must be at least 4")

    from tuning import tune

    samples = []

    def on_trial_end(trial):  # after the tuner released the trial's memory
        samples.append({"trial": trial.trial_id, "rss_mb": round(rss_mb(), 2),
                        "time_s": round(time.perf_counter() - started, 2)})
        print(f"trial {trial.trial_id}: RSS {samples[-1]['rss_mb']:.1f} MiB", flush=True)

    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir or os.path.join(scratch, "tensorflow_datasets")
        from zoo import datasets

        datasets.prepare("mnist1d", data_dir=data_dir)
        rss_before = rss_mb()
        started = time.perf_counter()
        result = tune("cnn1d", "mnist1d", tuner="random", max_trials=args.trials, epochs=1,
                      run_dir=os.path.join(scratch, "search", "memory"),
                      batch_size=args.batch_size, seed=1, data_dir=data_dir, verbose=0,
                      retrain=False, trial_observers=[on_trial_end],
                      release_custom_gradients=not args.keep_custom_gradients, **TINY_CNN)
        wall_time = time.perf_counter() - started

    rss = [sample["rss_mb"] for sample in samples]
    second_half = rss[len(rss) // 2:]
    report = {
        "benchmark": "memory",
        "description": __doc__.strip().splitlines()[0],
        "platform": environment(),
        "search": {"model": "cnn1d", "model_arguments": {k: list(v) for k, v in TINY_CNN.items()},
                   "dataset": "mnist1d", "tuner": "random", "trials": len(samples),
                   "epochs_per_trial": 1, "batch_size": args.batch_size,
                   "session_cleared_between_trials": True,
                   "custom_gradient_registrations_removed": not args.keep_custom_gradients},
        "rss_mb_before_search": round(rss_before, 2),
        "rss_mb_after_each_trial": samples,
        "growth_mb_per_trial_second_half": round(slope(second_half), 3),
        "growth_mb_per_trial_all_trials": round(slope(rss), 3),
        "growth_mb_first_to_last_trial": round(rss[-1] - rss[0], 2),
        "growth_mb_second_half_first_to_last": round(second_half[-1] - second_half[0], 2),
        "best_val_accuracy": result.best_val_accuracy,
        "wall_time_s": round(wall_time, 1),
    }
    if args.compare:
        with tempfile.TemporaryDirectory() as scratch:
            other = os.path.join(scratch, "keep.json")
            command = [sys.executable, "-m", "benchmarks.memory", "--out", other, "--trials",
                       str(args.trials), "--batch-size", str(args.batch_size), "--keep-custom-gradients"]
            if args.data_dir:
                command += ["--data-dir", args.data_dir]
            subprocess.run(command, check=True)
            with open(other) as handle:
                kept = json.load(handle)
        report["with_custom_gradients_kept"] = {
            key: kept[key] for key in ("rss_mb_before_search", "growth_mb_per_trial_second_half",
                                       "growth_mb_per_trial_all_trials", "growth_mb_first_to_last_trial",
                                       "rss_mb_after_each_trial", "wall_time_s")}
    write_report(report, args.out)
    print(f"RSS {rss[0]:.1f} -> {rss[-1]:.1f} MiB over {len(rss)} trials; growth per trial over the "
          f"second half {report['growth_mb_per_trial_second_half']:+.3f} MiB -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
