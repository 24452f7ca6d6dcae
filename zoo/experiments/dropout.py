"""Dropout (Srivastava et al. 2014), Figure 4: test error of nets with 2 to 4
hidden layers, with and without dropout, against the number of weight updates.

The nets are the paper's MNIST MLP (``dropout_paper_mlp``: ReLU, dropout 0.5
on hidden units and 0.2 on the inputs, max-norm 3) at a chosen width;
"without dropout" is the same net with both rates 0 (max-norm kept), so
dropout is the only difference. They are trained on a small random subset
of the training digits (``train_size``), where a net without dropout fits
the training set perfectly and overfits, for a fixed number of epochs (no
early stopping). Each setting is run ``repeats`` times (seeds ``seed``,
``seed + 1``, ...: another training subset, initialisation and shuffle
each; a net with and without dropout of the same seed share all three), and
training error, test error and their gap are reported as mean ± std.
"""

from __future__ import annotations

import dataclasses
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
    quick=dict(depths=(2, 3), width=256, train_size=1000, repeats=2, epochs=60, batch_size=64,
               learning_rate=1e-3),
    full=dict(depths=(2, 3, 4), width=256, train_size=1000, repeats=3, epochs=100, batch_size=64,
              learning_rate=1e-3),
    datasets=("mnist_5k", "mnist", "fashion_mnist"),
    # on MNIST the paper's nets, 1,024 units wide, on every training digit: the nearest to
    # Fig. 4 that fits two CPU cores (the paper trains for far longer)
    on={"mnist": {"full": dict(width=1024, train_size=None, repeats=1, epochs=20),
                  "quick": dict(depths=(2,), width=1024, train_size=None, repeats=1, epochs=3)}},
)
def dropout(context, *, depths, width, train_size, repeats, epochs, batch_size, learning_rate):
    test = context.arrays("test")

    runs = []
    for hidden_layers in depths:
        for repeat in range(repeats):
            seeded = dataclasses.replace(context, seed=context.seed + repeat)
            train = seeded.arrays("train", train_size)
            steps_per_epoch = math.ceil(len(train[1]) / batch_size)
            for with_dropout in (False, True):
                rates = {} if with_dropout else {"dropout_rate": 0.0, "input_dropout_rate": 0.0}
                model = common.build("dropout_paper_mlp", seeded,
                                     hidden_units=(width,) * hidden_layers, **rates)
                curve = AccuracyEveryNSteps(*test, every_n_steps=steps_per_epoch)
                common.fit(model, train, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate, callbacks=[curve], seed=seeded.seed)
                train_error = 1 - common.evaluate(model, *train)["accuracy"]
                test_error = 1 - curve.accuracies[-1]
                runs.append({"hidden_layers": hidden_layers, "units": width,
                             "dropout": "yes" if with_dropout else "no", "seed": seeded.seed,
                             "params": model.count_params(), "train_size": len(train[1]),
                             "train_error_%": 100 * train_error, "test_error_%": 100 * test_error,
                             "gap_%": 100 * (test_error - train_error), "steps": curve.steps,
                             "test_error_curve_%": [100 * (1 - a) for a in curve.accuracies]})

    table = []
    for hidden_layers in depths:
        for flag in ("no", "yes"):
            group = [r for r in runs if r["hidden_layers"] == hidden_layers and r["dropout"] == flag]
            row = {"hidden_layers": hidden_layers, "units": width, "dropout": flag,
                   "params": group[0]["params"], "runs": len(group)}
            for key in ("train_error_%", "test_error_%", "gap_%"):
                values = [r[key] for r in group]
                row[key] = float(np.mean(values))
                row[key.replace("_%", "_std_%")] = float(np.std(values))
            table.append(row)

    _plot(runs, table, context)
    pairs = [(without, with_) for without, with_ in zip(runs[0::2], runs[1::2])]
    summary = {}
    for key in ("test_error_%", "gap_%"):
        summary[f"mean_{key}"] = {
            "with_dropout": float(np.mean([r[key] for r in runs if r["dropout"] == "yes"])),
            "without_dropout": float(np.mean([r[key] for r in runs if r["dropout"] == "no"]))}
    return {**summary,
            "dropout_lower_test_error": sum(w["test_error_%"] < n["test_error_%"] for n, w in pairs),
            "dropout_smaller_gap": sum(w["gap_%"] < n["gap_%"] for n, w in pairs),
            "pairs": len(pairs), "runs": runs, "table": table}


def _plot(runs, table, context) -> None:
    plt = common.pyplot()
    figure, (curves, bars) = plt.subplots(1, 2, figsize=(13, 4.8))
    depths = sorted({r["hidden_layers"] for r in runs})
    colours = dict(zip(depths, ("tab:blue", "tab:green", "tab:red", "tab:purple")))
    low, high = math.inf, 0.0
    for row in table:
        group = [r for r in runs
                 if r["hidden_layers"] == row["hidden_layers"] and r["dropout"] == row["dropout"]]
        length = min(len(r["test_error_curve_%"]) for r in group)
        errors = np.array([r["test_error_curve_%"][1:length] for r in group])
        steps = group[0]["steps"][1:length]
        mean, spread = errors.mean(axis=0), errors.std(axis=0)
        colour = colours.get(row["hidden_layers"], "grey")
        label = (f"{row['hidden_layers']}×{row['units']}, "
                 f"{'with' if row['dropout'] == 'yes' else 'without'} dropout")
        curves.plot(steps, mean, "-" if row["dropout"] == "yes" else "--", color=colour, label=label)
        curves.fill_between(steps, mean - spread, mean + spread, color=colour, alpha=0.08)
        low, high = min(low, float(mean.min())), max(high, float(np.percentile(mean, 90)))
    seeds = max(row["runs"] for row in table)
    curves.set(xlabel="number of weight updates", ylabel="test error (%)",
               title=f"Test error with (solid) and without (dashed) dropout, {context.dataset},\n"
                     f"{runs[0]['train_size']:,} training digits; mean ± std over {seeds} seeds")
    curves.set_ylim(max(0.0, low - 1.0), high + 1.0)
    curves.legend(fontsize=8)

    positions = np.arange(len(table))
    for offset, key, label in ((-0.2, "train_error_%", "train error"), (0.2, "test_error_%", "test error")):
        bars.bar(positions + offset, [row[key] for row in table], 0.4, label=label,
                 yerr=[row[key.replace("_%", "_std_%")] for row in table], capsize=3)
        for position, row in zip(positions, table):
            values = [r[key] for r in runs
                      if r["hidden_layers"] == row["hidden_layers"] and r["dropout"] == row["dropout"]]
            bars.scatter([position + offset] * len(values), values, color="black", s=8, zorder=3)
    names = [f"{row['hidden_layers']} layers\n{'dropout' if row['dropout'] == 'yes' else 'no dropout'}"
             for row in table]
    bars.set_xticks(positions, names, fontsize=8)
    bars.set(ylabel="error (%)",
             title="Final training and test error (the gap is overfitting);\nbars: mean ± std, dots: seeds")
    bars.legend(fontsize=8)
    for axis in (curves, bars):
        axis.grid(alpha=0.3)
    common.save_figure(figure, context.plot_path)
