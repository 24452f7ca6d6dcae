"""Seconds of training to reach a test accuracy on the full MNIST: the zoo's
recipes against the keras-io "Simple MNIST convnet" as written, side by side.

    python -m benchmarks.time_to_accuracy --out benchmarks/results/time_to_accuracy_cpu.json \
        [--models deep_cnn lenet5] [--seeds 0 1 2] [--target 0.99]

The keras-io recipe (keras.io/examples/vision/mnist_convnet): Conv2D 32 (3×3,
ReLU) → max pool → Conv2D 64 → max pool → flatten → dropout 0.5 → dense
softmax, built from ``keras.layers``; Adam (its defaults), batch 128, at most
15 epochs. Each zoo model trains as ``zoo train MODEL --dataset mnist`` would:
its ``TrainConfig`` (the model's recipe, else the dataset's defaults: batch
size, step size on its cosine schedule, epochs) and the zoo's engine
(``compile_model``, E = E_D + λE_W). Every recipe reads the same 54,000
training digits (``zoo.datasets.load``, the last 6,000 held out) and is
checked on the 10,000 test digits after every epoch; the clock counts the
epochs' training only (the first one's tracing included, the checks not). For
each seed the recipes run one after the other, so that a slower or busier
moment of the machine falls on all of them.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from benchmarks.report import environment, write_report  # noqa: E402
from zoo.commands import Parser  # noqa: E402
from zoo.vocabulary import non_negative_int  # noqa: E402

KERAS_IO_EPOCHS, KERAS_IO_BATCH = 15, 128


class TimeToAccuracy(keras.callbacks.Callback):
    """Times each epoch's training, checks the test accuracy after it, and
    stops the training once it reaches ``target``."""

    def __init__(self, test_data, target: float):
        super().__init__()
        self.test_data, self.target = test_data, target
        self.training_s, self.curve, self.reached = 0.0, [], None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.training_s += time.perf_counter() - self.started
        accuracy = float(self.model.evaluate(self.test_data, verbose=0, return_dict=True)["accuracy"])
        self.curve.append({"epoch": epoch + 1, "training_s": round(self.training_s, 1),
                           "test_accuracy": round(accuracy, 4)})
        print(f"  epoch {epoch + 1}: {self.training_s:.1f} s, test accuracy {accuracy:.4f}", flush=True)
        if accuracy >= self.target and self.reached is None:
            self.reached = {"epochs": epoch + 1, "seconds": round(self.training_s, 1)}
            self.model.stop_training = True


def keras_io_convnet() -> keras.Model:
    """The keras-io "Simple MNIST convnet", layer for layer, compiled as written
    (integer labels: the sparse form of its categorical cross-entropy)."""
    from keras import layers

    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def run_recipe(recipe: str, seed: int, target: float, data_dir) -> dict:
    from zoo import datasets
    from zoo.training import TrainConfig, engine

    keras.backend.clear_session()
    engine.make_deterministic(seed)
    if recipe == "keras_io":
        model, batch_size, epochs, augment = keras_io_convnet(), KERAS_IO_BATCH, KERAS_IO_EPOCHS, False
        settings = {"batch_size": batch_size, "epochs": epochs, "optimizer": "adam",
                    "learning_rate": 1e-3, "layers": "keras"}
    else:
        config = TrainConfig(recipe, dataset="mnist", seed=seed)
        batch_size, epochs, augment = config.batch_size, config.epochs, config.augment
        settings = {name: getattr(config, name) for name in (
            "batch_size", "epochs", "optimizer", "learning_rate", "learning_rate_schedule",
            "augment")}
    train = datasets.load("mnist", "train", batch_size=batch_size, seed=seed, augment=augment,
                          data_dir=data_dir)
    test = datasets.load("mnist", "test", batch_size=1000, data_dir=data_dir)
    if recipe != "keras_io":
        engine.make_deterministic(seed)
        model = config.build_model()
        steps = datasets.num_batches(train)
        engine.compile_model(model, engine.make_optimizer(
            config.optimizer, config.learning_rate, config.learning_rate_schedule,
            config.epochs * steps))
    print(f"{recipe}, seed {seed}:", flush=True)
    clock = TimeToAccuracy(test, target)
    model.fit(train, epochs=epochs, callbacks=[clock], verbose=0)
    return {"recipe": recipe, "seed": seed, "settings": settings, "params": model.count_params(),
            "reached": clock.reached, "best_test_accuracy": max(c["test_accuracy"] for c in clock.curve),
            "curve": clock.curve}


def summary(runs: list[dict], recipes: list[str]) -> dict:
    import statistics

    out = {}
    for recipe in recipes:
        mine = [run for run in runs if run["recipe"] == recipe]
        seconds = [run["reached"]["seconds"] for run in mine if run["reached"]]
        out[recipe] = {"seeds_reaching_target": len(seconds), "seeds": len(mine),
                       "mean_seconds": round(statistics.mean(seconds), 1) if seconds else None,
                       "seconds": seconds,
                       "epochs": [run["reached"]["epochs"] if run["reached"] else None for run in mine]}
    base = out.get("keras_io", {}).get("mean_seconds")
    for recipe in recipes:
        mean = out[recipe]["mean_seconds"]
        out[recipe]["fraction_of_keras_io"] = (round(mean / base, 3) if mean and base else None)
    return out


def main(argv=None) -> int:
    parser = Parser(prog="python -m benchmarks.time_to_accuracy",
                    description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the JSON file to write")
    parser.add_argument("--models", nargs="+", default=["deep_cnn"],
                        help="zoo models, each trained with its recipe (default: deep_cnn)")
    parser.add_argument("--seeds", nargs="+", type=non_negative_int, default=[0, 1, 2])
    parser.add_argument("--target", type=float, default=0.99, help="test accuracy to reach")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    from zoo.training.precision import choose_precision

    recipes = ["keras_io", *args.models]
    runs = [run_recipe(recipe, seed, args.target, args.data_dir)
            for seed in args.seeds for recipe in recipes]
    report = {"benchmark": "time_to_accuracy", "dataset": "mnist", "target": args.target,
              "precision": "float32", "auto_precision_here": choose_precision("auto").policy,
              "environment": environment(), "summary": summary(runs, recipes), "runs": runs}
    write_report(report, args.out)
    import json

    print(json.dumps(report["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
