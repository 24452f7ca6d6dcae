"""One training step of the zoo's models, custom_layers against keras.layers, on any backend.

For ``deep_cnn``, ``cnn1d`` and ``deep_mlp`` (each at the input shape of its
default dataset and ``zoo train``'s batch size there) the same network is
built twice, from ``custom_layers`` and from ``keras.layers``, both compiled
by ``zoo.training.compile_model`` (E = E_D + λE_W, Adam) in float32 — with XLA
on JAX, as ``fit`` compiles there, and as a ``tf.function`` on TensorFlow —
and one ``train_on_batch`` of each is timed, interleaved: each repetition runs
a few steps of one variant, then of the other, in alternating order, so machine
noise hits both alike. The median step in ms per example and the ratio
custom/keras are written as JSON. Run it once per backend:

    python -m benchmarks.training_step --out training_step.json [--quick]
    KERAS_BACKEND=jax python -m benchmarks.training_step --out training_step_jax.json

Targets: custom/keras ≤ 1.05 for each model (median, interleaved).
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from benchmarks.report import environment, write_report
from zoo.commands import Parser
from zoo.vocabulary import positive_int

#: model → (the input shape of its default dataset, that dataset).
MODELS = {
    "deep_cnn": ((28, 28, 1), "mnist_5k"),
    "cnn1d": ((40, 1), "mnist1d"),
    "deep_mlp": ((28, 28, 1), "mnist_5k"),
}
TARGET = 1.05


def parse_args(argv=None):
    parser = Parser(prog="python -m benchmarks.training_step",
                    description="Time one training step of the zoo's models, custom_layers "
                                "vs keras.layers on the Keras backend in use, and write JSON.")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--repeats", type=positive_int, default=None,
                        help="interleaved repetitions (default 30, 7 with --quick)")
    parser.add_argument("--steps", type=positive_int, default=5,
                        help="steps per repetition and variant (default 5)")
    parser.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 7 if args.quick else 30
    return args


def build(name: str, layers: str, input_shape, jit_compile: bool, precision: str = "float32"):
    from zoo.models import create_model
    from zoo.training import compile_model
    from zoo.training.precision import precision_scope

    with precision_scope(precision):
        model = create_model(name, input_shape=input_shape, num_classes=10, layers=layers)
    return compile_model(model, "adam", 1e-3, jit_compile=jit_compile)


def measure(name: str, repeats: int, steps: int, precision: str = "float32") -> dict[str, Any]:
    """The interleaved median step of ``name`` built from each layer family
    under the dtype policy ``precision``, and their ratio."""
    import keras
    import numpy as np

    from zoo.training import training_defaults

    input_shape, dataset = MODELS[name]
    batch_size = int(training_defaults(dataset)["batch_size"])
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, *input_shape), dtype=np.float32)
    y = rng.integers(0, 10, batch_size)
    jit = keras.backend.backend() == "jax"
    models = {"custom": build(name, "custom", input_shape, jit, precision),
              "keras": build(name, "keras", input_shape, jit, precision)}
    models["keras"].set_weights(models["custom"].get_weights())
    first_step_s = {}
    for variant, model in models.items():
        start = time.perf_counter()
        model.train_on_batch(x, y)  # trace and compile
        first_step_s[variant] = round(time.perf_counter() - start, 3)
        for _ in range(3):
            model.train_on_batch(x, y)
    samples: dict[str, list[float]] = {variant: [] for variant in models}
    for repetition in range(repeats):
        order = list(models) if repetition % 2 == 0 else list(reversed(models))
        for variant in order:
            model = models[variant]
            start = time.perf_counter()
            for _ in range(steps):
                loss = model.train_on_batch(x, y)
            float(np.asarray(loss).ravel()[0])  # the last step has finished
            samples[variant].append((time.perf_counter() - start) / steps)
    medians = {variant: statistics.median(values) for variant, values in samples.items()}
    paired = sorted(c / k for c, k in zip(samples["custom"], samples["keras"]))
    ratio = medians["custom"] / medians["keras"]
    return {
        "model": name,
        "input_shape": list(input_shape),
        "batch_size": batch_size,
        "precision": precision,
        "jit_compile": jit,
        "ms_per_example": {variant: round(value * 1e3 / batch_size, 4)
                           for variant, value in medians.items()},
        "ratio_custom_over_keras": round(ratio, 4),
        "paired_ratio_quartiles": [round(q, 4) for q in
                                   statistics.quantiles(paired, n=4, method="inclusive")],
        "target": TARGET,
        "meets_target": bool(ratio <= TARGET),
        "first_step_s": first_step_s,
        "repetitions": repeats,
        "steps_per_repetition": steps,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.time()
    rows = []
    for name in MODELS:
        row = measure(name, args.repeats, args.steps)
        rows.append(row)
        print(f"  {name:<9} custom {row['ms_per_example']['custom']:.4f} ms/example  "
              f"keras {row['ms_per_example']['keras']:.4f}  "
              f"ratio {row['ratio_custom_over_keras']:.3f}", flush=True)
    import keras

    write_report({
        "benchmark": "training_step",
        "description": "median train_on_batch step of each zoo model, custom_layers vs "
                       "keras.layers on the same backend (float32), interleaved.",
        "machine": environment(),
        "settings": {"repeats": args.repeats, "steps": args.steps, "quick": args.quick,
                     "backend": keras.backend.backend(),
                     "wall_s": round(time.time() - started, 1)},
        "summary": {"all_meet_target": all(row["meets_target"] for row in rows)},
        "models": rows,
    }, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; no results written")
