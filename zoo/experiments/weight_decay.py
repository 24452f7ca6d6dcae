"""Weight decay, E(w) = E_D(w) + λE_W(w) with E_W = ‖w‖²: training and
validation accuracy against λ. λ = 0 follows the training data too closely
(a train–validation gap: overfit), a large λ cannot fit it (underfit), a small
λ is the best compromise. Each net trains for a fixed number of epochs on a
small training subset, without early stopping, so λ alone regularises.

The default data is MNIST-1D, on which an MLP overfits 1,000 examples badly;
on the 5,000 MNIST digits (``dataset="mnist_5k"``) the accuracy of small λ
barely moves — only the validation loss shows the compromise there."""

from __future__ import annotations

import math

import numpy as np

from custom_layers.arguments import invalid
from zoo.experiments import common
from zoo.experiments.registry import register_experiment


@register_experiment(
    "weight-decay",
    claim="Weight decay E = E_D + λ‖w‖²: λ = 0 overfits, a large λ underfits, a small λ is best",
    dataset="mnist1d",
    quick=dict(weight_decays=(0, 1e-4, 1e-3, 1e-2, 1e-1), hidden_units=(256, 256),
               train_size=1000, epochs=40, batch_size=64, learning_rate=3e-3),
    full=dict(weight_decays=(0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
              hidden_units=(256, 256), train_size=1000, epochs=100, batch_size=64,
              learning_rate=3e-3),
)
def weight_decay(context, *, weight_decays, hidden_units, train_size, epochs, batch_size,
                 learning_rate):
    if not weight_decays or any(not value >= 0 for value in weight_decays):
        raise invalid("weight_decays", "numbers >= 0", weight_decays)
    train = context.arrays("train", train_size)
    validation = context.arrays("validation")
    test = context.arrays("test")

    table = []
    for penalty_weight in sorted(weight_decays):
        model = common.build("deep_mlp", context, hidden_units=tuple(hidden_units),
                             weight_decay=float(penalty_weight))
        common.fit(model, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                   seed=context.seed)
        on_train, on_validation = common.evaluate(model, *train), common.evaluate(model, *validation)
        table.append({
            "weight_decay": float(penalty_weight),
            "train_accuracy": on_train["accuracy"],
            "validation_accuracy": on_validation["accuracy"],
            "gap": on_train["accuracy"] - on_validation["accuracy"],
            "test_accuracy": common.evaluate(model, *test)["accuracy"],
            "train_data_loss": on_train["loss"],
            "validation_data_loss": on_validation["loss"],
            "weight_penalty": float(sum(float(loss) for loss in model.losses)),  # λ‖w‖²
        })

    best = max(table, key=lambda row: row["validation_accuracy"])
    _plot(table, best, context, f"MLP {tuple(hidden_units)}, {len(train[1])} {context.dataset} "
                                f"examples, {epochs} epochs")
    return {"best_weight_decay": best["weight_decay"],
            "best_validation_accuracy": best["validation_accuracy"],
            "best_test_accuracy": best["test_accuracy"], "table": table}


def _positions(values) -> tuple[list[float], list[str]]:
    """x positions on a log10 axis; λ = 0 sits one decade left of the smallest λ > 0."""
    logs = [math.log10(v) for v in values if v > 0]
    zero_at = (min(logs) if logs else 0.0) - 1.0
    positions = [math.log10(v) if v > 0 else zero_at for v in values]
    labels = [f"{v:g}" if v > 0 else "0" for v in values]
    return positions, labels


def _plot(table, best, context, title: str) -> None:
    plt = common.pyplot()
    figure, (accuracy, loss) = plt.subplots(1, 2, figsize=(13, 4.8))
    positions, labels = _positions([row["weight_decay"] for row in table])
    best_x = positions[table.index(best)]
    for axis, key, name in ((accuracy, "accuracy", "accuracy"), (loss, "data_loss", "data loss E_D")):
        train = np.array([row[f"train_{key}"] for row in table])
        validation = np.array([row[f"validation_{key}"] for row in table])
        axis.plot(positions, train, "o-", label=f"train {name}")
        axis.plot(positions, validation, "s-", label=f"validation {name}")
        axis.fill_between(positions, validation, train, alpha=0.15, label="train–validation gap")
        axis.axvline(best_x, color="green", linestyle="--", label=f"best λ = {best['weight_decay']:g}")
        axis.set_xticks(positions, labels, rotation=45)
        axis.set(xlabel="λ (E = E_D + λ‖w‖²)", ylabel=name)
        axis.grid(alpha=0.3)
    train = [row["train_accuracy"] for row in table]
    accuracy.annotate("overfit:\ntrain–validation gap", (positions[0], train[0]),
                      textcoords="offset points", xytext=(8, -40), fontsize=9)
    accuracy.annotate("underfit", (positions[-1], train[-1]), textcoords="offset points",
                      xytext=(-50, 12), fontsize=9)
    accuracy.set_title(f"best λ = {best['weight_decay']:g}: validation accuracy "
                       f"{best['validation_accuracy']:.3f}")
    accuracy.legend(loc="lower left", fontsize=8)
    loss.set_yscale("log")
    loss.set_title("data loss E_D (cross-entropy)")
    loss.legend(loc="upper center", fontsize=8)
    figure.suptitle(f"Weight decay: {title}")
    common.save_figure(figure, context.plot_path)
