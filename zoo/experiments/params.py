""""CNN layers have much smaller # of parameters ↳ weight sharing".

A family of MLPs (two hidden layers of w units) and a family of CNNs (c
channels per conv layer) train on the same data; the smallest CNN at least as
accurate as the best MLP is compared with it, parameter for parameter. The
layer table counts each conv layer's weights as K kernels × N taps × C_in
input channels (the lecture's k×N for one input channel), beside what a dense
layer joining the same inputs to the same outputs would need.

CNNs: ``mnist1d_paper_cnn`` with ``filters=(c, c, c)`` for signals,
``deep_cnn`` with ``filters=(c, 2c)``, one conv per block and no hidden dense
layer for images.
"""

from __future__ import annotations

import keras
import numpy as np

from zoo.experiments import common
from zoo.experiments.registry import register_experiment


def cnn_family(context, channels: int, name: str | None = None) -> keras.Model:
    """The CNN of the family with ``channels`` kernels per conv layer."""
    if context.info.modality == "signal":
        return common.build("mnist1d_paper_cnn", context, filters=(channels,) * 3, name=name)
    return common.build("deep_cnn", context, filters=(channels, 2 * channels), convs_per_block=1,
                        dense_units=(), dropout_rate=0.0, batch_norm=False, weight_decay=0.0,
                        name=name)


def layer_table(model: keras.Model) -> list[dict]:
    """One row per layer with weights: its kernel shape, weights, biases and —
    for conv layers — the weights of a dense layer joining the same inputs to
    the same outputs (what weight sharing saves)."""
    rows = []
    for layer in model.layers:
        if not layer.weights:
            continue
        kernel = layer.weights[0].shape
        weights = int(np.prod(kernel))
        biases = sum(int(np.prod(w.shape)) for w in layer.weights[1:])
        inputs = int(np.prod(layer.input.shape[1:]))
        outputs = int(np.prod(layer.output.shape[1:]))
        if len(kernel) == 3:  # Conv1D: (N taps, C_in, K kernels)
            taps, channels_in, kernels = kernel
            formula = f"K×N×C_in = {kernels}×{taps}×{channels_in}"
        elif len(kernel) == 4:  # Conv2D: (M, N, C_in, K)
            rows_, columns, channels_in, kernels = kernel
            formula = f"K×M×N×C_in = {kernels}×{rows_}×{columns}×{channels_in}"
        else:  # Dense: (inputs, units)
            formula = f"in×out = {kernel[0]}×{kernel[1]}"
        rows.append({"model": model.name, "layer": layer.name, "type": type(layer).__name__,
                     "formula": formula, "weights": weights, "biases": biases,
                     "params": weights + biases,
                     "dense_equivalent": inputs * outputs + outputs})
    return rows


@register_experiment(
    "params",
    claim="CNN layers have much smaller # of parameters (weight sharing): a CNN matches an "
          "MLP's accuracy with a fraction of its parameters",
    dataset="mnist1d",
    quick=dict(mlp_widths=(64, 256), cnn_channels=(4, 8, 16), epochs=40, batch_size=100,
               learning_rate=3e-3, patience=10),
    full=dict(mlp_widths=(32, 64, 128, 256, 512), cnn_channels=(2, 4, 8, 16, 25, 32), epochs=150,
              batch_size=100, learning_rate=3e-3, patience=25),
)
def params(context, *, mlp_widths, cnn_channels, epochs, batch_size, learning_rate, patience):
    train = context.arrays("train")
    validation = context.arrays("validation")
    test = context.arrays("test")

    def train_and_test(model):
        common.fit(model, train, validation=validation, epochs=epochs, batch_size=batch_size,
                   learning_rate=learning_rate, early_stopping_patience=patience,
                   seed=context.seed)
        return common.evaluate(model, *test)["accuracy"]

    table, models = [], {}
    for width in mlp_widths:
        model = common.build("deep_mlp", context, hidden_units=(width, width), name=f"mlp_{width}")
        table.append({"family": "MLP", "model": model.name, "size": f"2×{width} units",
                      "params": model.count_params(), "test_accuracy": train_and_test(model)})
        models[model.name] = model
    for channels in cnn_channels:
        model = cnn_family(context, channels, name=f"cnn_{channels}")
        table.append({"family": "CNN", "model": model.name, "size": f"{channels} channels",
                      "params": model.count_params(), "test_accuracy": train_and_test(model)})
        models[model.name] = model

    best_mlp = max((row for row in table if row["family"] == "MLP"),
                   key=lambda row: row["test_accuracy"])
    cnns = sorted((row for row in table if row["family"] == "CNN"), key=lambda row: row["params"])
    matched = next((row for row in cnns if row["test_accuracy"] >= best_mlp["test_accuracy"]), None)
    shown = matched or max(cnns, key=lambda row: row["test_accuracy"])
    layers = layer_table(models[shown["model"]]) + layer_table(models[best_mlp["model"]])
    results = {
        "best_mlp": best_mlp,
        "smallest_cnn_as_accurate": matched,
        "parameter_ratio": (best_mlp["params"] / matched["params"]) if matched else None,
        "table": table,
        "layer_table": layers,
    }
    _plot(table, best_mlp, shown, layers, context)
    return results


def _plot(table, best_mlp, shown, layers, context) -> None:
    plt = common.pyplot()
    figure, (scatter, bars) = plt.subplots(1, 2, figsize=(13, 4.6))
    for family, marker in (("MLP", "o-"), ("CNN", "s-")):
        rows = sorted((r for r in table if r["family"] == family), key=lambda r: r["params"])
        scatter.plot([r["params"] for r in rows], [r["test_accuracy"] for r in rows], marker,
                     label=family)
        for r in rows:
            scatter.annotate(r["size"], (r["params"], r["test_accuracy"]), fontsize=7,
                             textcoords="offset points", xytext=(4, -10))
    scatter.axhline(best_mlp["test_accuracy"], color="grey", linestyle=":",
                    label=f"best MLP: {best_mlp['params']:,} params")
    scatter.plot([shown["params"]], [shown["test_accuracy"]], "*", markersize=14, color="tab:red",
                 label=f"{shown['model']}: {shown['params']:,} params")
    scatter.set(xscale="log", xlabel="parameters", ylabel="test accuracy",
                title=f"Accuracy vs parameters on {context.dataset}")
    scatter.legend(fontsize=8)
    conv_rows = [r for r in layers if r["model"] == shown["model"]]
    positions = np.arange(len(conv_rows))
    bars.bar(positions - 0.2, [r["params"] for r in conv_rows], 0.4, label="parameters (shared kernels)")
    bars.bar(positions + 0.2, [r["dense_equivalent"] for r in conv_rows], 0.4,
             label="a dense layer, same inputs and outputs")
    bars.set_xticks(positions, [f"{r['layer']}\n{r['formula']}" for r in conv_rows], fontsize=7)
    bars.set(yscale="log", ylabel="parameters", title=f"Weight sharing, layer by layer ({shown['model']})")
    bars.legend(fontsize=8)
    for axis in (scatter, bars):
        axis.grid(alpha=0.3)
    common.save_figure(figure, context.plot_path)
