"""How fast the zoo models train, against Keras, and against the machine.

For ``deep_cnn``, ``cnn1d``, ``deep_mlp``, ``lenet5`` and ``resnet20`` (each
on its dataset, at ``zoo train``'s batch size) one training step — Keras' own compiled
``train_function``: forward, loss E = E_D + λE_W, backward, Adam update — is
timed for

    zoo             the zoo's defaults: custom layers, precision "auto"
    keras_float32   the same network of keras.layers in Keras' default float32
    keras_same      keras.layers at the precision "auto" chose for zoo
    zoo_reference_batch_norm
                    zoo with batch norm's written-out reference backward
                    instead of the fused kernel (what the layer ran before)

interleaved in one process — each repetition runs a few steps of every
variant in turn, so machine noise hits all alike — and the median step is
reported as ms per example, with the ratios keras_float32/zoo and
keras_same/zoo (> 1: zoo is faster). The FLOPs of the convolutions and
dense layers (forward ×3 for a training step) give GFLOP/s, set against the
machine's peak measured in the same run (matmul and convolution probes, float32
and bfloat16). A per-layer profile (forward + backward of each layer alone,
at the shapes it sees in the model) shows where the step goes, before and
after the fused batch norm. Time to accuracy: the wall time of ``zoo train
deep_cnn`` and ``zoo train cnn1d --dataset mnist1d`` to their test accuracy.

    python -m benchmarks.training_speed --out training_speed.json [--quick]
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

from benchmarks.report import environment, write_report
from zoo.commands import Parser
from zoo.vocabulary import positive_int

MODELS = {"deep_cnn": "mnist_5k", "cnn1d": "mnist1d", "deep_mlp": "mnist_5k",
          "lenet5": "mnist_5k", "resnet20": "mnist_5k"}
VARIANTS = ("zoo", "keras_float32", "keras_same", "zoo_reference_batch_norm")
FLOP_LAYERS = ("Conv1D", "Conv2D", "Dense")


def parse_args(argv=None):
    parser = Parser(prog="python -m benchmarks.training_speed",
                    description="Time a training step of the zoo models against keras.layers "
                                "(interleaved, median step) and the machine's peak; write JSON.")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, of: {', '.join(MODELS)} (default: all)")
    parser.add_argument("--repeats", type=positive_int, default=None,
                        help="interleaved repetitions (default 15, 3 with --quick)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="training steps per variant and repetition (default 5, 2 with --quick)")
    parser.add_argument("--precision", default="auto",
                        help="the zoo variant's precision (default auto)")
    parser.add_argument("--no-time-to-accuracy", action="store_true",
                        help="skip the full `zoo train` runs")
    parser.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    args = parser.parse_args(argv)
    args.models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    args.repeats = args.repeats or (3 if args.quick else 15)
    args.steps = args.steps or (2 if args.quick else 5)
    return args


# ----------------------------------------------------------------------------- timing


def interleaved_medians(functions: dict[str, Callable[[], Any]], repeats: int,
                        calls: int) -> dict[str, float]:
    """Median seconds per call of each function, timed in turn ``repeats``
    times (``calls`` calls each time), after one warm-up round."""
    import tensorflow as tf

    def run(function):
        result = None
        for _ in range(calls):
            result = function()
        for tensor in tf.nest.flatten(result):  # wait for the device
            if hasattr(tensor, "numpy"):
                tensor.numpy()

    times: dict[str, list[float]] = {name: [] for name in functions}
    for function in functions.values():
        run(function)
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            run(function)
            times[name].append((time.perf_counter() - started) / calls)
    return {name: statistics.median(values) for name, values in times.items()}


def peak_probes(repeats: int, quick: bool) -> dict[str, float]:
    """GFLOP/s of a square matmul and a 3×3 convolution, float32 and bfloat16."""
    import tensorflow as tf

    n = 1024 if quick else 2048
    conv_x, conv_w = (64, 28, 28, 32), (3, 3, 32, 64)
    work = {"matmul": 2 * n**3, "conv": 2 * 64 * 28 * 28 * 64 * 9 * 32}
    functions, flops = {}, {}
    for dtype in ("float32", "bfloat16"):
        a = tf.cast(tf.random.normal((n, n)), dtype)
        x, w = tf.cast(tf.random.normal(conv_x), dtype), tf.cast(tf.random.normal(conv_w), dtype)
        matmul = tf.function(lambda a=a: tf.matmul(a, a))
        conv = tf.function(lambda x=x, w=w: tf.nn.conv2d(x, w, 1, "SAME"))
        functions[f"matmul_{dtype}"], flops[f"matmul_{dtype}"] = matmul, work["matmul"]
        functions[f"conv_{dtype}"], flops[f"conv_{dtype}"] = conv, work["conv"]
    seconds = interleaved_medians(functions, repeats, 3)
    return {name: round(flops[name] / seconds[name] / 1e9, 1) for name in functions}


# ----------------------------------------------------------------------------- models


@contextlib.contextmanager
def reference_batch_norm():
    """Batch norm layers built inside take the written-out reference backward."""
    from custom_layers import ops

    original = ops.batch_norm_training
    ops.batch_norm_training = functools.partial(original, implementation="reference")
    try:
        yield
    finally:
        ops.batch_norm_training = original


def build_model(name: str, layers: str, policy: str, dataset_info):
    from zoo.models import create_model
    from zoo.training import compile_model, make_optimizer
    from zoo.training.precision import precision_scope

    with precision_scope(policy):
        model = create_model(name, input_shape=dataset_info.input_shape,
                             num_classes=dataset_info.num_classes, layers=layers)
    compile_model(model, make_optimizer("adam", 1e-3), jit_compile=False)
    return model


def training_step(model, batch) -> Callable[[], Any]:
    """One compiled training step of ``model`` on ``batch``, again and again."""
    import tensorflow as tf

    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    model.make_train_function()
    return lambda: model.train_function(iterator)


def forward_flops(model) -> int:
    """Multiply-adds ×2 per example of the convolutions and dense layers
    (``zoo.flops.layer_macs``; batch norm's, which ``zoo.count_flops`` adds,
    are left out, as this benchmark's published rates always left them)."""
    from zoo.flops import layer_macs

    return 2 * sum(layer_macs(layer) for layer in model._flatten_layers(include_self=False)
                   if type(layer).__name__ in FLOP_LAYERS)


def layer_profile(model, batch_size: int, repeats: int, step_ms: float) -> list[dict[str, Any]]:
    """Forward + backward of each layer alone (training mode, its input and
    weight gradients) at its shapes in ``model``, less the cost of calling a
    ``tf.function`` that does nothing (measured alongside: in the step, one
    call runs every layer); the rest of the step (loss, optimizer, Keras'
    step) is ``step_ms`` minus their sum."""
    import tensorflow as tf

    empty = tf.zeros((batch_size, 1))
    functions = {"(call)": tf.function(lambda: tf.identity(empty))}
    kinds = {}
    for layer in model._flatten_layers(include_self=False):
        if type(layer).__name__ == "InputLayer":
            continue
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]  # Add: two
        xs = [tf.cast(tf.random.normal((batch_size, *tensor.shape[1:])), tensor.dtype)
              for tensor in inputs]

        @tf.function
        def forward_backward(layer=layer, xs=xs):
            with tf.GradientTape() as tape:
                tape.watch(xs)
                y = layer(xs if len(xs) > 1 else xs[0], training=True)
            return tape.gradient(y, [*xs, *layer.trainable_weights],
                                 output_gradients=tf.ones_like(y))

        functions[layer.name], kinds[layer.name] = forward_backward, type(layer).__name__
    seconds = interleaved_medians(functions, repeats, 2)
    call = seconds.pop("(call)")
    rows = []
    for name in seconds:
        ms = max(seconds[name] - call, 0.0) * 1e3
        rows.append({"layer": name, "class": kinds[name], "ms": round(ms, 3),
                     "share": round(ms / step_ms, 3)})
    rows.sort(key=lambda row: -row["ms"])
    rest = step_ms - sum(row["ms"] for row in rows)
    rows.append({"layer": "(rest: loss, optimizer, Keras step)", "class": "",
                 "ms": round(rest, 3), "share": round(rest / step_ms, 3)})
    return rows


def measure_model(name: str, precision, args, peak: dict[str, float]) -> dict[str, Any]:
    from zoo import datasets
    from zoo.training import training_defaults

    dataset = MODELS[name]
    info = datasets.info(dataset)
    batch_size = training_defaults(dataset)["batch_size"]
    batch = next(iter(datasets.load(dataset, "train", batch_size=batch_size, seed=0)))
    policies = {"zoo": ("custom", precision.policy), "keras_float32": ("keras", "float32"),
                "keras_same": ("keras", precision.policy)}
    models = {variant: build_model(name, layers, policy, info)
              for variant, (layers, policy) in policies.items()}
    if any(type(layer).__name__ == "BatchNormalization"
           for layer in models["zoo"]._flatten_layers(include_self=False)):
        with reference_batch_norm():
            models["zoo_reference_batch_norm"] = build_model(name, "custom", precision.policy, info)
    steps = {variant: training_step(model, batch) for variant, model in models.items()}
    seconds = interleaved_medians(steps, args.repeats, args.steps)
    ms_per_example = {variant: round(value * 1e3 / batch_size, 4) for variant, value in seconds.items()}

    flops = 3 * forward_flops(models["zoo"])
    achieved = flops / (ms_per_example["zoo"] * 1e-3) / 1e9
    half = precision.policy != "float32"
    peak_gflops = max(peak["matmul_bfloat16" if half else "matmul_float32"],
                      peak["conv_bfloat16" if half else "conv_float32"])
    result = {
        "dataset": dataset,
        "batch_size": batch_size,
        "precision": precision.policy,
        "ms_per_example": ms_per_example,
        "speedup_over_keras_float32": round(ms_per_example["keras_float32"] / ms_per_example["zoo"], 3),
        "speedup_over_keras_same_precision": round(
            ms_per_example["keras_same"] / ms_per_example["zoo"], 3),
        "training_flops_per_example": flops,
        "gflops_per_second": round(achieved, 1),
        "fraction_of_peak": round(achieved / peak_gflops, 3),
    }
    step_ms = ms_per_example["zoo"] * batch_size
    result["profile"] = {"zoo": layer_profile(models["zoo"], batch_size, args.repeats, step_ms)}
    if "zoo_reference_batch_norm" in models:
        result["speedup_of_fused_batch_norm"] = round(
            ms_per_example["zoo_reference_batch_norm"] / ms_per_example["zoo"], 3)
        with reference_batch_norm():
            result["profile"]["zoo_reference_batch_norm"] = layer_profile(
                models["zoo_reference_batch_norm"], batch_size, args.repeats,
                ms_per_example["zoo_reference_batch_norm"] * batch_size)
    return result


def time_to_accuracy(precision: str, quick: bool) -> list[dict[str, Any]]:
    """``zoo train deep_cnn`` and ``zoo train cnn1d --dataset mnist1d``, defaults."""
    from zoo.training import train

    runs = []
    for model, dataset in (("deep_cnn", "mnist_5k"), ("cnn1d", "mnist1d")):
        with tempfile.TemporaryDirectory() as run_dir:
            metrics = train(model, dataset=dataset, run_dir=run_dir, seed=0, verbose=0,
                            precision=precision, **({"epochs": 1} if quick else {})).metrics
        runs.append({key: metrics[key] for key in (
            "model", "dataset", "test_accuracy", "wall_time_s", "epochs_run",
            "train_examples_per_second", "precision", "batch_size")})
    return runs


def main(argv=None) -> int:
    args = parse_args(argv)
    from zoo.commands import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # each profiled layer is its own tf.function: no retracing notes
    from zoo.training.precision import choose_precision, detect_device

    precision = choose_precision(args.precision)
    device = detect_device()
    report: dict[str, Any] = {
        "benchmark": "training_speed",
        "environment": {**environment(),
                        "cpu_half_precision_flags": sorted(
                            flag for flag in device.cpu_flags
                            if flag.startswith(("amx", "avx512_bf16", "avx512_fp16")))},
        "precision": {"policy": precision.policy, "reason": precision.reason},
        "settings": {"repeats": args.repeats, "steps": args.steps, "quick": args.quick},
    }
    report["peak_gflops_per_second"] = peak_probes(args.repeats, args.quick)
    print(f"peak GFLOP/s: {report['peak_gflops_per_second']}", file=sys.stderr)
    report["models"] = {}
    for name in args.models:
        report["models"][name] = measure_model(name, precision, args, report["peak_gflops_per_second"])
        row = report["models"][name]
        print(f"{name}: {row['ms_per_example']} ms/example; x{row['speedup_over_keras_float32']} "
              f"vs keras float32", file=sys.stderr)
        write_report(report, args.out)  # what is measured is kept
    if not args.no_time_to_accuracy:
        report["time_to_accuracy"] = time_to_accuracy(precision.policy, args.quick)
    write_report(report, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
