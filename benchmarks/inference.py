"""Inference speed: SavedModel vs ``model.predict`` vs a compiled ``tf.function``,
custom layers vs keras.layers.

    python -m benchmarks.inference --out inference.json [--model deep_cnn] [--repeats 200]

For each layer set and each way of running, measures batch-1 latency (p50,
p99 over ``--repeats`` calls) and batch-256 throughput (examples/s), after a
warm-up, and writes JSON.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from benchmarks.report import environment, write_report
from zoo.commands import Parser
from zoo.vocabulary import positive_int

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def measure(run, batch_one, batch_big, repeats: int) -> dict:
    for _ in range(5):  # warm-up: tracing, first allocations
        run(batch_one)
        run(batch_big)
    latencies = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(batch_one)
        latencies.append((time.perf_counter() - started) * 1e3)
    big_repeats = max(5, repeats // 10)
    started = time.perf_counter()
    for _ in range(big_repeats):
        run(batch_big)
    throughput = big_repeats * len(batch_big) / (time.perf_counter() - started)
    return {"batch1_p50_ms": round(_percentile(latencies, 50), 3),
            "batch1_p99_ms": round(_percentile(latencies, 99), 3),
            "batch256_examples_per_s": round(throughput, 1)}


def main(argv=None) -> int:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default="deep_cnn")
    parser.add_argument("--repeats", type=positive_int, default=200)
    args = parser.parse_args(argv)
    if args.repeats < 10:
        print(f"inference: error: --repeats must be >= 10, received {args.repeats}", file=sys.stderr)
        return 2

    import keras
    import numpy as np
    import tensorflow as tf

    from zoo.export import export_savedmodel
    from zoo.models import create_model
    from zoo.models.registry import get_builder

    try:
        get_builder(args.model)
    except ValueError as error:
        print(f"inference: error: {error}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for layers in ("custom", "keras"):
            keras.utils.set_random_seed(0)
            model = create_model(args.model, layers=layers)
            shape = tuple(model.inputs[0].shape[1:])
            rng = np.random.default_rng(0)
            batch_one = rng.random((1, *shape)).astype("float32")
            batch_big = rng.random((256, *shape)).astype("float32")
            served = tf.saved_model.load(str(export_savedmodel(model, f"{workdir}/{layers}")))
            compiled = tf.function(lambda x: model(x, training=False),
                                   input_signature=[tf.TensorSpec((None, *shape), tf.float32)])
            runners = {
                "savedmodel_serve": lambda x: served.serve(tf.constant(x)).numpy(),
                "model_predict": lambda x: model.predict(x, verbose=0, batch_size=256),
                "tf_function": lambda x: compiled(tf.constant(x)).numpy(),
            }
            for way, run in runners.items():
                row = {"layers": layers, "runner": way, **measure(run, batch_one, batch_big,
                                                                  args.repeats)}
                print(f"{layers:<7} {way:<17} p50 {row['batch1_p50_ms']:8.3f} ms  "
                      f"p99 {row['batch1_p99_ms']:8.3f} ms  "
                      f"{row['batch256_examples_per_s']:10.1f} ex/s", flush=True)
                rows.append(row)
    report = {"benchmark": "inference", "model": args.model, "repeats": args.repeats,
              **environment(), "load_average": os.getloadavg(), "results": rows}
    write_report(report, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
