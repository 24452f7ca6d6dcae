"""Dropout (Srivastava et al. 2014), Figure 4: test error of nets with 2 to 4
hidden layers, with and without dropout, against the number of weight updates.

The nets are the paper's MNIST MLP (``dropout_paper_mlp``: ReLU, dropout 0.5
on hidden units and 0.2 on the inputs, max-norm 3); "without dropout" is the
same net with both rates 0 (max-norm kept), so dropout is the only difference.
"""

from __future__ import annotations

import math

import numpy as np

from zoo.experiments import common
from zoo.experiments.callbacks import AccuracyEveryNSteps
from zoo.experiments.registry import register_experiment


@register_experiment(
    "dropout",
    claim="Dropout lowers the test error of 2-4 layer nets and the gap between training and "
          "test error (Dropout paper, Fig. 4)",
    dataset="mnist_5k",
    quick=dict(depths=(2, 3), width=512, train_size=None, epochs=25, batch_size=64,
               learning_rate=1e-3),
    full=dict(depths=(2, 3, 4), width=1024, train_size=None, epochs=40, batch_size=64,
              learning_rate=1e-3),
)
def dropout(context, *, depths, width, train_size, epochs, batch_size, learning_rate):
    train = context.arrays("train", train_size)
    test = context.arrays("test")
    steps_per_epoch = math.ceil(len(train[1]) / batch_size)

    runs, table = [], []
    for hidden_layers in depths:
        for with_dropout in (False, True):
            rates = {} if with_dropout else {"dropout_rate": 0.0, "input_dropout_rate": 0.0}
            model = common.build("dropout_paper_mlp", context, hidden_units=(width,) * hidden_layers,
                                 **rates)
            curve = AccuracyEveryNSteps(*test, every_n_steps=steps_per_epoch)
            common.fit(model, train, epochs=epochs, batch_size=batch_size,
                       learning_rate=learning_rate, callbacks=[curve], seed=context.seed)
            train_error = 1 - common.evaluate(model, *train)["accuracy"]
            test_error = 1 - curve.accuracies[-1]
            row = {"hidden_layers": hidden_layers, "units": width,
                   "dropout": "yes" if with_dropout else "no", "params": model.count_params(),
                   "train_error_%": 100 * train_error, "test_error_%": 100 * test_error,
                   "gap_%": 100 * (test_error - train_error)}
            table.append(row)
            runs.append({**row, "steps": curve.steps,
                         "test_error_curve_%": [100 * (1 - a) for a in curve.accuracies]})

    _plot(runs, context)
    mean = {flag: float(np.mean([r["test_error_%"] for r in table if r["dropout"] == flag]))
            for flag in ("yes", "no")}
    gap = {flag: float(np.mean([r["gap_%"] for r in table if r["dropout"] == flag]))
           for flag in ("yes", "no")}
    return {"mean_test_error_%": {"with_dropout": mean["yes"], "without_dropout": mean["no"]},
            "mean_gap_%": {"with_dropout": gap["yes"], "without_dropout": gap["no"]},
            "runs": runs, "table": table}


def _plot(runs, context) -> None:
    plt = common.pyplot()
    figure, (curves, bars) = plt.subplots(1, 2, figsize=(13, 4.6))
    depths = sorted({r["hidden_layers"] for r in runs})
    colours = dict(zip(depths, ("tab:blue", "tab:green", "tab:red", "tab:purple")))
    for run in runs:
        style = "-" if run["dropout"] == "yes" else "--"
        label = (f"{run['hidden_layers']}×{run['units']}, "
                 f"{'with' if run['dropout'] == 'yes' else 'without'} dropout")
        curves.plot(run["steps"][1:], run["test_error_curve_%"][1:], style,
                    color=colours.get(run["hidden_layers"], "grey"), label=label)
    curves.set(xlabel="number of weight updates", ylabel="test error (%)",
               title=f"Test error with (solid) and without (dashed) dropout, {context.dataset}")
    low = min(min(r["test_error_curve_%"][1:]) for r in runs)
    high = max(np.percentile(r["test_error_curve_%"][1:], 90) for r in runs)
    curves.set_ylim(max(0.0, low - 0.5), high + 0.5)
    curves.legend(fontsize=8)
    positions = np.arange(len(runs))
    bars.bar(positions - 0.2, [r["train_error_%"] for r in runs], 0.4, label="train error")
    bars.bar(positions + 0.2, [r["test_error_%"] for r in runs], 0.4, label="test error")
    names = [f"{r['hidden_layers']} layers\n{'dropout' if r['dropout'] == 'yes' else 'no dropout'}"
             for r in runs]
    bars.set_xticks(positions, names, fontsize=8)
    bars.set(ylabel="error (%)", title="Final training and test error (the gap is overfitting)")
    bars.legend(fontsize=8)
    for axis in (curves, bars):
        axis.grid(alpha=0.3)
    common.save_figure(figure, context.plot_path)
