"""Forward+backward speed of each ``custom_layers`` layer against its ``keras.layers`` twin.

For every case the same input, the same weights (``custom.set_weights(
builtin.get_weights())``) and the same upstream gradient dE/dy are used; one
step is a ``tf.GradientTape`` over ``layer(x, training=True)`` followed by the
gradient with respect to the input and every trainable weight, wrapped in
``tf.function`` (and, unless ``--no-jit``, a second ``jit_compile=True``
variant). On ``KERAS_BACKEND=jax`` the step is ``jax.vjp`` of the layer's
``stateless_call`` (weights passed in, not baked in as constants), compiled
with ``jax.jit``: the one variant, "xla". After warm-up the two steps are
timed INTERLEAVED in one process —
custom, keras, keras, custom, ... — so machine noise hits both alike, and the
median over the repetitions is reported with the ratio custom/keras.

Targets: Dense, Conv1D, Conv2D, Activation, Flatten and the average poolings
must not be slower than Keras (ratio <= 1.0); the other layers may be at most
10 % slower (ratio <= 1.10). On JAX every layer's target is 1.10. Add takes
two inputs and has no row.

    python -m benchmarks.layers --out results.json [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.report import environment, write_report
from zoo.commands import Parser
from zoo.vocabulary import positive_float, positive_int

TARGETS = {"Dense": 1.0, "Conv1D": 1.0, "Conv2D": 1.0, "Activation": 1.0, "Flatten": 1.0,
           "AveragePooling1D": 1.0, "AveragePooling2D": 1.0, "GlobalAveragePooling2D": 1.0}
DEFAULT_TARGET = 1.10


@dataclass(frozen=True)
class Case:
    """One benchmark case: a layer class name, its constructor arguments, the input shape."""

    name: str
    layer: str
    config: dict[str, Any]
    input_shape: tuple[int, ...]
    seeded: bool = field(default=False)  # pass a seed (Dropout)
    masked: bool = field(default=False)  # call with a fixed mask over all axes but the last

    @property
    def target(self) -> float:
        if _backend() == "jax":
            return DEFAULT_TARGET
        return TARGETS.get(self.layer, DEFAULT_TARGET)


def _backend() -> str:
    import keras

    return keras.backend.backend()


# Sizes of a small MLP / CNN on MNIST-like (28x28) and MNIST-1D (length 40) data.
CASES: tuple[Case, ...] = (
    Case("dense_784x256", "Dense", {"units": 256}, (128, 784)),
    Case("dense_256x10", "Dense", {"units": 10}, (128, 256)),
    Case("dense_784x256_lora8", "Dense", {"units": 256, "lora_rank": 8}, (128, 784)),
    Case("conv2d_1to32_k3_same", "Conv2D",
         {"filters": 32, "kernel_size": 3, "padding": "same"}, (64, 28, 28, 1)),
    Case("conv2d_32to64_k3_same", "Conv2D",
         {"filters": 64, "kernel_size": 3, "padding": "same"}, (64, 28, 28, 32)),
    Case("conv2d_32to64_k3_s2_same", "Conv2D",
         {"filters": 64, "kernel_size": 3, "strides": 2, "padding": "same"}, (64, 28, 28, 32)),
    Case("conv2d_32to64_k3_valid", "Conv2D",
         {"filters": 64, "kernel_size": 3, "padding": "valid"}, (64, 28, 28, 32)),
    Case("conv2d_32to64_k3_same_groups4", "Conv2D",
         {"filters": 64, "kernel_size": 3, "padding": "same", "groups": 4}, (64, 28, 28, 32)),
    Case("conv2d_32to64_k3_same_channels_first", "Conv2D",
         {"filters": 64, "kernel_size": 3, "padding": "same", "data_format": "channels_first"},
         (64, 32, 28, 28)),
    Case("conv1d_1to25_k5_s2", "Conv1D",
         {"filters": 25, "kernel_size": 5, "strides": 2}, (100, 40, 1)),
    Case("conv1d_25to25_k3_s2", "Conv1D",
         {"filters": 25, "kernel_size": 3, "strides": 2}, (100, 18, 25)),
    Case("conv1d_25to25_k5_s2_same", "Conv1D",
         {"filters": 25, "kernel_size": 5, "strides": 2, "padding": "same"}, (100, 40, 25)),
    Case("maxpool2d_2x2", "MaxPooling2D", {"pool_size": 2}, (64, 28, 28, 32)),
    Case("maxpool2d_3x3_s2_same", "MaxPooling2D",
         {"pool_size": 3, "strides": 2, "padding": "same"}, (64, 28, 28, 32)),
    Case("maxpool2d_2x2_channels_first", "MaxPooling2D",
         {"pool_size": 2, "data_format": "channels_first"}, (64, 32, 28, 28)),
    Case("maxpool1d_2", "MaxPooling1D", {"pool_size": 2}, (100, 40, 25)),
    Case("batchnorm_128x256", "BatchNormalization", {}, (128, 256)),
    Case("batchnorm_64x14x14x64", "BatchNormalization", {}, (64, 14, 14, 64)),
    Case("batchnorm_renorm_64x14x14x64", "BatchNormalization", {"renorm": True},
         (64, 14, 14, 64)),
    Case("batchnorm_masked_64x50x128", "BatchNormalization", {}, (64, 50, 128), masked=True),
    Case("dropout_0.5_128x1024", "Dropout", {"rate": 0.5}, (128, 1024), seeded=True),
    Case("dropout_0.25_64x14x14x64", "Dropout", {"rate": 0.25}, (64, 14, 14, 64), seeded=True),
    Case("relu_64x28x28x32", "Activation", {"activation": "relu"}, (64, 28, 28, 32)),
    Case("sigmoid_128x256", "Activation", {"activation": "sigmoid"}, (128, 256)),
    Case("gelu_128x256", "Activation", {"activation": "gelu"}, (128, 256)),
    Case("softmax_128x10", "Activation", {"activation": "softmax"}, (128, 10)),
    Case("flatten_64x7x7x64", "Flatten", {}, (64, 7, 7, 64)),
    Case("avgpool2d_2x2", "AveragePooling2D", {"pool_size": 2}, (64, 28, 28, 32)),
    Case("avgpool1d_2", "AveragePooling1D", {"pool_size": 2}, (100, 40, 25)),
    Case("global_avgpool2d_64x7x7x64", "GlobalAveragePooling2D", {}, (64, 7, 7, 64)),
)
CASE_NAMES = tuple(case.name for case in CASES)
# A/A controls: keras.layers against a second keras.layers copy of the same case.
# Their ratio's distance from 1.0 is the noise floor of a run.
CONTROL_CASES = ("dense_784x256", "conv2d_32to64_k3_s2_same")


# ----------------------------------------------------------------------------- CLI


def parse_args(argv=None) -> argparse.Namespace:
    parser = Parser(
        prog="python -m benchmarks.layers",
        description="Time forward+backward of custom_layers against keras.layers "
                    "(interleaved, median over repetitions) and write JSON.",
    )
    parser.add_argument("--out", required=True,
                        help="JSON file to write (its folder must exist)")
    parser.add_argument("--repeats", type=positive_int, default=None,
                        help="timed repetitions per layer and case (default 80, 15 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions and shorter ones: a smoke run, not a measurement")
    parser.add_argument("--min-rep-ms", type=positive_float, default=None,
                        help="each repetition loops the step until it lasts about this long "
                             "(default 20 ms, 5 ms with --quick)")
    parser.add_argument("--max-case-s", type=positive_float, default=None,
                        help="time budget per case and variant: slow steps (XLA dropout on CPU "
                             "takes ~1 s) get fewer repetitions, at least 5 "
                             "(default 15 s, 8 s with --quick)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="TensorFlow intra-op threads (default: TensorFlow's choice)")
    parser.add_argument("--no-control", action="store_true",
                        help="skip the A/A control rows (keras vs keras) that show the noise floor")
    parser.add_argument("--no-jit", action="store_true",
                        help="skip the jit_compile=True (XLA) variant")
    parser.add_argument("--only", action="append", default=None, metavar="CASE",
                        help=f"run only this case (repeatable); one of: {', '.join(CASE_NAMES)}")
    args = parser.parse_args(argv)

    if args.repeats is None:
        args.repeats = 15 if args.quick else 80
    if args.repeats < 3:
        parser.error(f"--repeats must be at least 3 for a median, got {args.repeats}")
    if args.min_rep_ms is None:
        args.min_rep_ms = 5.0 if args.quick else 20.0
    if args.max_case_s is None:
        args.max_case_s = 8.0 if args.quick else 15.0
    if args.only:
        unknown = [name for name in args.only if name not in CASE_NAMES]
        if unknown:
            parser.error(f"unknown case {unknown[0]!r} for --only; "
                         f"choose from {', '.join(CASE_NAMES)}")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if os.path.isdir(args.out):
        parser.error(f"--out {args.out!r} is a directory; give a file name")
    if not os.path.isdir(out_dir):
        parser.error(f"--out {args.out!r}: folder "
                     f"{os.path.dirname(args.out) or '.'!r} does not exist")
    if not os.access(out_dir, os.W_OK):
        parser.error(f"--out {args.out!r}: folder is not writable")
    return args


# ------------------------------------------------------------------------ benchmark


def _machine_info() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    info = {
        **environment(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count_usable": usable,
    }
    if _backend() == "tensorflow":  # environment() names the backend and its version
        import tensorflow as tf

        info["intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
        info["inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
        info["onednn"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86 Linux)")
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _build_pair(case: Case, control: bool = False):
    """The keras.layers layer and its custom twin, built, with identical weights.
    With ``control`` the "twin" is a second keras.layers layer (an A/A run that
    shows how far apart two identical steps measure on this machine)."""
    import keras
    import numpy as np

    import custom_layers

    config = dict(case.config)
    if case.seeded:
        config["seed"] = 1234
    builtin = getattr(keras.layers, case.layer)(**config)
    custom = getattr(keras.layers if control else custom_layers, case.layer)(**config)
    builtin.build(case.input_shape)
    custom.build(case.input_shape)
    weights = builtin.get_weights()
    # Non-trivial BN statistics/affine parameters so nothing is a no-op.
    rng = np.random.default_rng(7)
    weights = [w + rng.normal(0.0, 0.1, w.shape).astype(w.dtype) if w.size else w
               for w in weights]
    if case.layer == "BatchNormalization":
        weights[-1] = np.abs(weights[-1]) + 0.5  # moving variance > 0
    builtin.set_weights(weights)
    custom.set_weights(weights)
    return custom, builtin


def _make_step(layer, jit: bool, mask=None):
    if _backend() == "jax":
        return _make_jax_step(layer, mask)
    import tensorflow as tf

    def step(x, upstream):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True) if mask is None else layer(x, training=True, mask=mask)
        sources = [x, *layer.trainable_variables]
        return tape.gradient(y, sources, output_gradients=upstream)

    return tf.function(step, jit_compile=jit, reduce_retracing=True)


def _make_jax_step(layer, mask=None):
    """``jax.vjp`` of the layer's call as a pure function of (x, weights), compiled;
    the returned callable waits for the result, so that timing covers the work."""
    import jax

    import inspect

    weights = [variable.value for variable in layer.trainable_variables]
    state = [variable.value for variable in layer.non_trainable_variables]
    # stateless_call hands its keyword arguments to call() as they are
    accepted = inspect.signature(layer.call).parameters
    kwargs = {name: value for name, value in (("training", True), ("mask", mask))
              if name in accepted and value is not None}

    @jax.jit
    def gradients(x, upstream, weights, state):
        def forward(x, weights):
            return layer.stateless_call(weights, state, x, **kwargs)[0]

        _, vjp = jax.vjp(forward, x, weights)
        grad_x, grad_weights = vjp(upstream)
        return [grad_x, *grad_weights]

    return lambda x, upstream: jax.block_until_ready(gradients(x, upstream, weights, state))


def _check_agreement(case: Case, custom_step, keras_step, x, upstream) -> float | None:
    """Largest |custom − keras| / max|keras| over the gradients, a sanity check that
    both sides compute the same thing (None for Dropout: the masks differ)."""
    import numpy as np

    if case.layer == "Dropout":
        return None
    worst = 0.0
    for mine, theirs in zip(custom_step(x, upstream), keras_step(x, upstream)):
        mine, theirs = np.asarray(mine), np.asarray(theirs)
        scale = max(float(np.max(np.abs(theirs))), 1e-30)
        worst = max(worst, float(np.max(np.abs(mine - theirs))) / scale)
    return float(f"{worst:.3g}")


def _per_call_seconds(step, args, min_rep_s: float) -> float:
    """Typical seconds per call: back-to-back calls lasting about ``min_rep_s / 4``,
    the fastest of three tries (a burst of load must not inflate the estimate)."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            step(*args)
        elapsed = time.perf_counter() - start
        if elapsed >= min_rep_s / 4 or number >= 1 << 16:
            break
        number *= 2
    best = elapsed / number
    for _ in range(2):
        start = time.perf_counter()
        for _ in range(number):
            step(*args)
        best = min(best, (time.perf_counter() - start) / number)
    return best


def _time_interleaved(custom_step, keras_step, args, repeats: int, number: int):
    """Per-call seconds of each repetition (``number`` back-to-back calls), the two
    sides alternating in ABBA order so that neither always runs first."""
    samples = {"custom": [], "keras": []}
    steps = {"custom": custom_step, "keras": keras_step}
    for rep in range(repeats):
        order = ("custom", "keras") if rep % 2 == 0 else ("keras", "custom")
        for side in order:
            step = steps[side]
            start = time.perf_counter()
            for _ in range(number):
                step(*args)
            samples[side].append((time.perf_counter() - start) / number)
    return samples["custom"], samples["keras"]


def _quartiles(values):
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def _bootstrap_ratio_ci(custom_s, keras_s, resamples: int = 2000, seed: int = 0):
    """95 % bootstrap interval of median(custom)/median(keras), resampling the
    interleaved repetition pairs together (they share the machine's state)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    custom_s, keras_s = np.asarray(custom_s), np.asarray(keras_s)
    index = rng.integers(0, len(custom_s), size=(resamples, len(custom_s)))
    ratios = np.median(custom_s[index], axis=1) / np.median(keras_s[index], axis=1)
    low, high = np.quantile(ratios, [0.025, 0.975])
    return float(low), float(high)


def _verdict(ratio: float, ci: tuple[float, float], target: float) -> str:
    if ci[1] <= target:
        return "meets"
    if ci[0] > target:
        return "misses"
    return "meets (within noise)" if ratio <= target else "misses (within noise)"


def run_case(case: Case, jit: bool, repeats: int, min_rep_s: float,
             max_case_s: float, control: bool = False) -> dict[str, Any]:
    import keras
    import numpy as np

    custom, builtin = _build_pair(case, control)
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.standard_normal(case.input_shape, dtype=np.float32))
    y = builtin(x, training=False)
    upstream = keras.ops.convert_to_tensor(rng.standard_normal(tuple(y.shape), dtype=np.float32))

    mask = None
    if case.masked:  # padded sequences: the last quarter of the steps masked out
        batch, steps = case.input_shape[:2]
        mask = keras.ops.convert_to_tensor(
            np.broadcast_to(np.arange(steps) < steps - steps // 4, (batch, steps)))
    custom_step = _make_step(custom, jit, mask)
    keras_step = _make_step(builtin, jit, mask)
    args = (x, upstream)
    first_call_s = {}
    for side, step in (("custom", custom_step), ("keras", keras_step)):
        start = time.perf_counter()
        step(*args)  # trace (and XLA-compile)
        first_call_s[side] = time.perf_counter() - start
    max_rel_diff = _check_agreement(case, custom_step, keras_step, x, upstream)
    for _ in range(2):  # warm-up: caches, thread pools, oneDNN primitives
        custom_step(*args)
        keras_step(*args)
    per_call = max(_per_call_seconds(custom_step, args, min_rep_s),
                   _per_call_seconds(keras_step, args, min_rep_s))
    number = max(1, int(round(min_rep_s / per_call)))
    affordable = int(max_case_s / (2 * number * per_call))
    repeats = max(5, min(repeats, affordable))
    custom_s, keras_s = _time_interleaved(custom_step, keras_step, args, repeats, number)

    c_q1, c_med, c_q3 = _quartiles(custom_s)
    k_q1, k_med, k_q3 = _quartiles(keras_s)
    p_q1, p_med, p_q3 = _quartiles([c / k for c, k in zip(custom_s, keras_s)])
    ratio = c_med / k_med
    ci = _bootstrap_ratio_ci(custom_s, keras_s)
    return {
        "case": f"control:{case.name}" if control else case.name,
        "control": control,
        "layer": case.layer,
        "config": dict(case.config),
        "input_shape": list(case.input_shape),
        "variant": "xla" if jit else "graph",
        "jit_compile": jit,
        "custom_ms": round(c_med * 1e3, 5),
        "keras_ms": round(k_med * 1e3, 5),
        "ratio": round(ratio, 4),
        "target": None if control else case.target,
        "meets_target": None if control else bool(ratio <= case.target),
        "ratio_ci95": [round(ci[0], 4), round(ci[1], 4)],
        "verdict": "A/A control" if control else _verdict(ratio, ci, case.target),
        "custom_iqr_ms": [round(c_q1 * 1e3, 5), round(c_q3 * 1e3, 5)],
        "keras_iqr_ms": [round(k_q1 * 1e3, 5), round(k_q3 * 1e3, 5)],
        "paired_ratio_quartiles": [round(p_q1, 4), round(p_med, 4), round(p_q3, 4)],
        "calls_per_repetition": number,
        "repetitions": repeats,
        "first_call_s": {side: round(value, 3) for side, value in first_call_s.items()},
        "max_rel_grad_diff": max_rel_diff,
    }


def _format_table(rows) -> str:
    header = (f"{'case':<34} {'variant':<7} {'custom ms':>10} {'keras ms':>10} "
              f"{'ratio':>6} {'95% CI':>11} {'target':>6}  verdict")
    lines = [header, "-" * (len(header) + 14)]
    for row in rows:
        low, high = row["ratio_ci95"]
        lines.append(
            f"{row['case']:<34} {row['variant']:<7} {row['custom_ms']:>10.4f} "
            f"{row['keras_ms']:>10.4f} {row['ratio']:>6.3f} {f'{low:.2f}-{high:.2f}':>11} "
            f"{'-' if row['target'] is None else format(row['target'], '.2f'):>6}  "
            f"{row['verdict']}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    on_jax = _backend() == "jax"
    if on_jax:
        if args.threads is not None:
            sys.exit("--threads sets TensorFlow's thread pools; on JAX set XLA_FLAGS instead")
    else:
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
        if args.threads is not None:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    cases = [case for case in CASES if not args.only or case.name in args.only]
    # JAX compiles every step with XLA: its one variant.
    variants = [True] if on_jax else [False] if args.no_jit else [False, True]
    min_rep_s = args.min_rep_ms / 1e3

    started = time.time()
    load_before = _load_average()
    rows = []
    failures = []
    for jit in variants:
        for case in cases:
            try:
                row = run_case(case, jit, args.repeats, min_rep_s, args.max_case_s)
            except Exception as error:  # keep benchmarking the other cases
                variant = "xla" if jit else "graph"
                message = f"{type(error).__name__}: {error}".splitlines()[0]
                failures.append({"case": case.name, "variant": variant, "error": message})
                print(f"  {case.name:<34} {variant:<6} FAILED: {message}", flush=True)
                continue
            rows.append(row)
            print(f"  {row['case']:<34} {row['variant']:<6} custom {row['custom_ms']:.4f} ms  "
                  f"keras {row['keras_ms']:.4f} ms  ratio {row['ratio']:.3f}  "
                  f"({row['repetitions']} reps x {row['calls_per_repetition']} calls)",
                  flush=True)

    controls = []
    if not args.no_control:
        for case in cases:
            if case.name in CONTROL_CASES:
                row = run_case(case, on_jax, args.repeats, min_rep_s, args.max_case_s, True)
                controls.append(row)
                print(f"  {row['case']:<34} copy {row['custom_ms']:.4f} ms  "
                      f"keras {row['keras_ms']:.4f} ms  ratio {row['ratio']:.3f}", flush=True)

    variants_run = [v for v in ("graph", "xla") if any(row["variant"] == v for row in rows)]
    missed = {v: [row["case"] for row in rows if row["variant"] == v and not row["meets_target"]]
              for v in variants_run}
    clearly_missed = {v: [row["case"] for row in rows
                          if row["variant"] == v and row["verdict"] == "misses"]
                      for v in variants_run}
    result = {
        "benchmark": "layers",
        "description": "median per-call time of a compiled forward+backward step "
                       "(TensorFlow: tf.function, GradientTape over layer(x, training=True); "
                       "JAX: jax.jit of jax.vjp over the layer's stateless_call), gradients "
                       "w.r.t. the input and all trainable weights, custom_layers vs "
                       "keras.layers on the same backend, interleaved.",
        "machine": _machine_info(),
        "settings": {
            "repeats": args.repeats,
            "min_rep_ms": args.min_rep_ms,
            "max_case_s": args.max_case_s,
            "quick": args.quick,
            "threads": args.threads,
            "jit_variant": not args.no_jit,
            "dtype": "float32",
            "load_average_before": load_before,
            "load_average_after": _load_average(),
            "wall_s": round(time.time() - started, 1),
        },
        "summary": {
            "all_meet_target": not any(missed.values()) and not failures,
            "failures": failures,
            "missed": missed,
            "clearly_missed": clearly_missed,
            "note": "meets_target compares the ratio of medians with the target; 'verdict' "
                    "also uses the 95 % bootstrap interval of that ratio: 'within noise' "
                    "means the interval straddles the target.",
        },
        "cases": rows,
        "controls": controls,
    }
    write_report(result, args.out)

    print()
    print(_format_table(rows))
    if controls:
        print("A/A controls (keras vs an identical keras layer; 'custom' = the copy):")
        print(_format_table(controls).split("\n", 2)[2])
    print()
    for variant, names in missed.items():
        clear = clearly_missed[variant]
        print(f"{variant}: " + (f"missed target: {', '.join(names)}" if names
                                else "all cases meet their target")
              + (f" (beyond noise: {', '.join(clear)})" if clear else ""))
    for failure in failures:
        print(f"{failure['variant']}: {failure['case']} FAILED: {failure['error']}")
    print(f"wrote {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; no results written")
