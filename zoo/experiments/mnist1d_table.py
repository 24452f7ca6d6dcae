"""The MNIST-1D paper's table (Greydanus 2020), re-measured with this zoo.

Logistic regression (``logistic_regression``), an MLP (``mlp``: 100 ReLU
units; ``mlp_2x100`` has two such layers) and the paper's CNN
(``mnist1d_paper_cnn``), optionally a small
bidirectional GRU (Keras' own layer; the zoo has no custom recurrent layer),
trained as in the paper: Adam, step size 1e-2, mini-batches of 100, a fixed
number of steps, on all 4,000 training examples (train + validation splits),
tested on the 1,000 test examples.
"""

from __future__ import annotations

import keras
import numpy as np

from zoo.experiments import common
from zoo.experiments.callbacks import AccuracyEveryNSteps
from zoo.experiments.registry import register_experiment

#: Test accuracies published in the MNIST-1D README / paper.
PUBLISHED = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91, "human": 0.96}
PUBLISHED["mlp_2x100"] = PUBLISHED["mlp"]  # the same published MLP, against a deeper zoo MLP
MODELS = ("logistic", "mlp", "mlp_2x100", "cnn", "gru")


def gru_model(context, units: int = 6) -> keras.Model:
    """A bidirectional GRU over the sequence (image rows for images), then a
    linear softmax layer over all its outputs."""
    info = context.info
    keras.utils.set_random_seed(context.seed)
    inputs = keras.Input(info.input_shape, name="inputs")
    x = keras.layers.Reshape((info.input_shape[0], -1), name="sequence")(inputs)
    x = keras.layers.Bidirectional(keras.layers.GRU(units, return_sequences=True), name="gru")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(info.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="gru")


def build_model(key: str, context) -> keras.Model:
    if key == "gru":
        return gru_model(context)
    if key == "cnn":
        if context.info.modality == "signal":
            return common.build("mnist1d_paper_cnn", context)
        return common.build("small_cnn", context, weight_decay=0.0)
    if key == "mlp_2x100":
        return common.build("deep_mlp", context, hidden_units=(100, 100), name="mlp_2x100")
    return common.build({"logistic": "logistic_regression", "mlp": "mlp"}[key], context)


@register_experiment(
    "mnist1d",
    claim="MNIST-1D separates model families: logistic 32%, MLP 68%, CNN 94%, GRU 91% "
          "(human 96%) in the paper",
    dataset="mnist1d",
    quick=dict(models=("logistic", "mlp", "cnn"), steps=2000, batch_size=100,
               learning_rate=1e-2, record_every=250),
    full=dict(models=MODELS, steps=6000, batch_size=100, learning_rate=1e-2, record_every=250),
    datasets=("mnist1d",),
)
def mnist1d_table(context, *, models, steps, batch_size, learning_rate, record_every):
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise ValueError(f"Unknown model(s) {unknown} for the MNIST-1D table; "
                         f"expected some of {MODELS}.")
    x_train, y_train = context.arrays("train")
    x_validation, y_validation = context.arrays("validation")
    train = (np.concatenate([x_train, x_validation]),
             np.concatenate([y_train, y_validation]))
    test = context.arrays("test")
    published = context.dataset == "mnist1d"

    table, curves = [], {}
    for key in models:
        model = build_model(key, context)
        curve = AccuracyEveryNSteps(*test, every_n_steps=record_every)
        common.fit(model, train, epochs=1, steps_per_epoch=steps, batch_size=batch_size,
                   learning_rate=learning_rate, callbacks=[curve], seed=context.seed)
        curves[key] = {"steps": curve.steps, "test_accuracy": curve.accuracies}
        table.append({"model": key, "zoo_model": model.name, "params": model.count_params(),
                      "test_accuracy": curve.accuracies[-1],
                      "published": PUBLISHED[key] if published else None})
    if published:
        table.append({"model": "human", "zoo_model": "-", "params": None, "test_accuracy": None,
                      "published": PUBLISHED["human"]})
    _plot(table, curves, context)
    return {"training_examples": len(train[1]), "table": table, "curves": curves}


def _plot(table, curves, context) -> None:
    plt = common.pyplot()
    figure, (bars, lines) = plt.subplots(1, 2, figsize=(13, 4.6))
    rows = [row for row in table if row["model"] != "human"]
    positions = np.arange(len(rows))
    bars.bar(positions - 0.2, [100 * row["test_accuracy"] for row in rows], 0.4,
             label="this zoo")
    if any(row["published"] is not None for row in rows):
        bars.bar(positions + 0.2, [100 * (row["published"] or 0) for row in rows], 0.4,
                 label="published")
        bars.axhline(100 * PUBLISHED["human"], color="grey", linestyle=":", label="human (96%)")
    for position, row in zip(positions, rows):
        bars.annotate(f"{100 * row['test_accuracy']:.1f}", (position - 0.2, 100 * row["test_accuracy"]),
                      ha="center", va="bottom", fontsize=8)
    bars.set_xticks(positions, [f"{row['model']}\n{row['params']:,} params" for row in rows])
    bars.set(ylabel="test accuracy (%)", ylim=(0, 100), title=f"{context.dataset}: test accuracy")
    bars.legend(fontsize=8, loc="upper left")
    for key, curve in curves.items():
        lines.plot(curve["steps"], [100 * a for a in curve["test_accuracy"]], label=key)
    lines.set(xlabel="training steps", ylabel="test accuracy (%)", ylim=(0, 100),
              title="test accuracy while training")
    lines.legend(fontsize=8)
    for axis in (bars, lines):
        axis.grid(alpha=0.3)
    common.save_figure(figure, context.plot_path)
