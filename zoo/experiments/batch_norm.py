"""Batch Normalization (Ioffe & Szegedy 2015), Figure 1 on MNIST digits
(the 5,000 embedded ones by default; ``dataset="mnist"`` trains the
paper's 50,000 steps on all of them).

(a) Test accuracy against training steps of the paper's network — 3 fully
connected layers of 100 sigmoid units — with BN (``bn_paper_mlp``) and without
(``bn_paper_baseline_mlp``), same optimizer (the zoo's SGD, momentum 0.9) and
step size, mini-batches of 60; then both again at a higher step size, which
only the BN net survives.
(b, c) The {15, 50, 85}th percentiles of the input of one sigmoid of the last
hidden layer over a fixed probe batch, recorded by
:class:`~zoo.experiments.callbacks.ActivationPercentiles` while training.
"""

from __future__ import annotations

import numpy as np

from zoo.experiments import common
from zoo.experiments.callbacks import AccuracyEveryNSteps, ActivationPercentiles
from zoo.experiments.registry import register_experiment

NETS = {"with BN": "bn_paper_mlp", "without BN": "bn_paper_baseline_mlp"}
WATCHED_LAYER = "sigmoid_3"  # the last hidden layer's sigmoid; its input is BN's (or Dense's) output


def drift(percentiles: np.ndarray) -> float:
    """How far the distribution moved: the range each percentile sweeps over
    training, averaged over the percentiles."""
    return float(np.mean(percentiles.max(axis=0) - percentiles.min(axis=0)))


@register_experiment(
    "batch-norm",
    claim="Batch normalization trains faster, survives higher step sizes and keeps the "
          "input distribution of a sigmoid stable (BN paper, Fig. 1)",
    dataset="mnist_5k",
    quick=dict(steps=1500, learning_rate=0.01, high_learning_rate=1.0, batch_size=60,
               record_every=50, unit=0, probe_size=1000),
    full=dict(steps=6000, learning_rate=0.01, high_learning_rate=1.0, batch_size=60,
              record_every=100, unit=0, probe_size=1000),
    datasets=("mnist_5k", "mnist", "fashion_mnist"),
    # on MNIST the paper's 50,000 steps of 60 digits (full); a tenth of them (quick)
    on={"mnist": {"full": dict(steps=50_000, record_every=500),
                  "quick": dict(steps=5_000, record_every=100)}},
)
def batch_norm(context, *, steps, learning_rate, high_learning_rate, batch_size, record_every,
               unit, probe_size):
    train = context.arrays("train")
    probe = context.arrays("validation", probe_size)[0]
    x_test, y_test = context.arrays("test")
    rates = [learning_rate] + ([high_learning_rate] if high_learning_rate else [])

    runs = {}
    for rate in rates:
        for label, model_name in NETS.items():
            model = common.build(model_name, context)
            accuracy = AccuracyEveryNSteps(x_test, y_test, every_n_steps=record_every)
            percentiles = ActivationPercentiles(WATCHED_LAYER, unit=unit, every_n_steps=record_every,
                                                inputs=probe, where="input", training=True)
            common.fit(model, train, epochs=1, steps_per_epoch=steps, batch_size=batch_size,
                       optimizer="sgd", learning_rate=rate, callbacks=[accuracy, percentiles],
                       seed=context.seed)
            runs[f"{label}, lr {rate:g}"] = {
                "model": model_name, "batch_norm": label == "with BN", "learning_rate": rate,
                "steps": accuracy.steps, "test_accuracy": accuracy.accuracies,
                "final_test_accuracy": accuracy.accuracies[-1],
                "percentile_steps": percentiles.steps, "percentiles": percentiles.values.tolist(),
                "percentile_drift": drift(percentiles.values),
            }

    _plot(runs, learning_rate, context.plot_path)
    table = [{"run": key, "test_accuracy": run["final_test_accuracy"],
              "steps_to_90%": _steps_to(run, 0.9), "sigmoid_input_drift": run["percentile_drift"]}
             for key, run in runs.items()]
    return {"watched": {"layer": WATCHED_LAYER, "where": "input", "unit": unit,
                        "percentiles": [15, 50, 85]},
            "runs": runs, "table": table}


def _steps_to(run: dict, accuracy: float):
    """The first recorded step with at least ``accuracy`` on the test set (None if never)."""
    return next((step for step, value in zip(run["steps"], run["test_accuracy"]) if value >= accuracy),
                None)


def _plot(runs: dict, learning_rate: float, path) -> None:
    plt = common.pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colours = {True: "tab:blue", False: "tab:orange"}
    for key, run in runs.items():
        style = "-" if run["learning_rate"] == learning_rate else "--"
        axes[0].plot(run["steps"], run["test_accuracy"], style, color=colours[run["batch_norm"]],
                     label=key)
    axes[0].set(xlabel="training steps", ylabel="test accuracy", ylim=(0, 1),
                title="(a) test accuracy, with and without BN")
    axes[0].legend(loc="lower right")
    base = {run["batch_norm"]: run for run in runs.values() if run["learning_rate"] == learning_rate}
    for axis, with_bn, title in ((axes[1], False, "(b) without BN"), (axes[2], True, "(c) with BN")):
        run = base[with_bn]
        values = np.array(run["percentiles"])
        for column, (name, style) in enumerate(zip(("15th", "50th", "85th"), (":", "-", ":"))):
            axis.plot(run["percentile_steps"], values[:, column], style, color=colours[with_bn],
                      label=f"{name} percentile")
        axis.set(xlabel="training steps", ylabel="input of a last-layer sigmoid",
                 title=f"{title}, lr {learning_rate:g} (drift {run['percentile_drift']:.2f})")
    low = min(min(np.min(run["percentiles"]) for run in base.values()), -1.5)
    high = max(max(np.max(run["percentiles"]) for run in base.values()), 1.5)
    for axis in axes[1:]:
        axis.set_ylim(low - 0.2, high + 0.25 * (high - low))  # room for the legend
        axis.legend(loc="upper center", ncol=3, fontsize=8)
    for axis in axes:
        axis.grid(alpha=0.3)
    common.save_figure(figure, path)
