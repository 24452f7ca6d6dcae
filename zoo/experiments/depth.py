"""Need for depth: test accuracy against the number of hidden layers of MLPs
(``deep_mlp``, ReLU) that all have about the same number of parameters — the
width of each depth is solved for from the parameter budget.

The default dataset is MNIST-1D (Greydanus 2020), made so that a model's
inductive bias shows: its digits are shifted, scaled and noisy 1-D templates,
so features must be composed rather than memorised. Every depth is trained
``repeats`` times (seeds ``seed``, ``seed + 1``, ...: other initialisations
and shuffles) with Adam until the validation accuracy has not improved for
``patience`` epochs, keeping the best epoch's weights; the test accuracy is
reported as mean ± std over the repeats.
"""

from __future__ import annotations

import math

import numpy as np

from zoo.experiments import common
from zoo.experiments.registry import register_experiment


def mlp_params(depth: int, width: int, inputs: int, classes: int) -> int:
    """Parameters of ``depth`` hidden layers of ``width`` units plus the softmax
    layer: (d+1)·w + (L−1)·(w+1)·w + (w+1)·C."""
    return (inputs + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * classes


def width_for_budget(depth: int, budget: int, inputs: int, classes: int) -> int:
    """The width whose ``depth``-layer MLP has the parameter count closest to ``budget``."""
    if depth < 1:
        raise ValueError(f"Invalid depth {depth!r}: expected at least one hidden layer.")
    # (L−1)·w² + (d + 1 + C + L − 1)·w + C − budget = 0
    a, b, c = depth - 1, inputs + classes + depth, classes - budget
    root = -c / b if a == 0 else (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
    return min(candidates, key=lambda w: abs(mlp_params(depth, w, inputs, classes) - budget))


@register_experiment(
    "depth",
    claim="Need for depth: at an equal parameter budget, deeper MLPs classify better",
    dataset="mnist1d",
    quick=dict(depths=(1, 2, 3, 4), parameter_budget=100_000, repeats=2, train_size=None,
               epochs=100, batch_size=100, learning_rate=3e-3, patience=15),
    full=dict(depths=(1, 2, 3, 4, 5, 6), parameter_budget=100_000, repeats=3, train_size=None,
              epochs=150, batch_size=100, learning_rate=3e-3, patience=20),
)
def depth(context, *, depths, parameter_budget, repeats, train_size, epochs, batch_size,
          learning_rate, patience):
    info = context.info
    inputs, classes = int(np.prod(info.input_shape)), info.num_classes
    train = context.arrays("train", train_size)
    validation = context.arrays("validation")
    x_test, y_test = context.arrays("test")

    table = []
    for hidden_layers in depths:
        width = width_for_budget(hidden_layers, parameter_budget, inputs, classes)
        accuracies, trained, params = [], [], None
        for repeat in range(repeats):
            model = common.build("deep_mlp", context, seed_offset=repeat,
                                 hidden_units=(width,) * hidden_layers)
            params = model.count_params()
            history = common.fit(model, train, validation=validation, epochs=epochs,
                                 batch_size=batch_size, learning_rate=learning_rate,
                                 early_stopping_patience=patience, monitor="val_accuracy",
                                 seed=context.seed + repeat)
            accuracies.append(common.evaluate(model, x_test, y_test)["accuracy"])
            trained.append(len(history["loss"]))
        table.append({"hidden_layers": hidden_layers, "width": width, "params": params,
                      "test_accuracy": float(np.mean(accuracies)),
                      "test_accuracy_std": float(np.std(accuracies)),
                      "runs": len(accuracies), "mean_epochs": float(np.mean(trained)),
                      "all_test_accuracies": accuracies})

    _plot(table, parameter_budget, context)
    best = max(table, key=lambda row: row["test_accuracy"])
    rows = [{k: v for k, v in row.items() if k != "all_test_accuracies"} for row in table]
    return {"parameter_budget": parameter_budget, "best_depth": best["hidden_layers"],
            "depths": table, "table": rows}


def _plot(table, budget, context) -> None:
    plt = common.pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    layers = [row["hidden_layers"] for row in table]
    means = np.array([row["test_accuracy"] for row in table])
    stds = np.array([row["test_accuracy_std"] for row in table])
    runs = max(row["runs"] for row in table)
    axis.errorbar(layers, means, yerr=stds, marker="o", capsize=4,
                  label=f"mean ± std over {runs} seed{'s' if runs > 1 else ''}")
    for row in table:
        axis.scatter([row["hidden_layers"]] * len(row["all_test_accuracies"]),
                     row["all_test_accuracies"], color="grey", s=10, alpha=0.6)
        axis.annotate(f"{row['width']} units\n{row['params']:,} params",
                      (row["hidden_layers"], 0), xycoords=("data", "axes fraction"),
                      textcoords="offset points", xytext=(0, 4), ha="center", fontsize=8)
    axis.scatter([], [], color="grey", s=10, alpha=0.6, label="one seed")
    axis.set(xlabel="hidden layers", ylabel="test accuracy", xticks=layers,
             title=f"Need for depth: MLPs of ≈{budget:,} parameters on {context.dataset}")
    every = np.concatenate([row["all_test_accuracies"] for row in table])
    low, high = float(min(np.min(means - stds), every.min())), float(max(np.max(means + stds), every.max()))
    axis.set_ylim(low - 0.05, high + 0.01)
    axis.set_xlim(min(layers) - 0.6, max(layers) + 0.6)
    axis.legend(fontsize=8, loc="upper left")
    axis.grid(alpha=0.3)
    common.save_figure(figure, context.plot_path)
