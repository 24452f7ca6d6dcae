"""Early stopping: stop training when the validation loss no longer improves.

One MLP is trained on a small training subset with Keras' ``EarlyStopping``
(monitor ``val_loss``, ``restore_best_weights=True``), and the same network
from the same initialisation and data order again for all epochs without it,
to show what stopping avoided: the training loss keeps falling while the
validation loss turns up (overfitting).
"""

from __future__ import annotations

import numpy as np

from zoo.experiments import common
from zoo.experiments.registry import register_experiment


@register_experiment(
    "early-stopping",
    claim="Early stopping halts training where the validation loss stops improving, "
          "before the net overfits",
    dataset="mnist_5k",
    quick=dict(hidden_units=(512, 512), train_size=1000, epochs=30, patience=5, batch_size=64,
               learning_rate=1e-3),
    full=dict(hidden_units=(512, 512), train_size=1000, epochs=80, patience=10, batch_size=64,
              learning_rate=1e-3),
)
def early_stopping(context, *, hidden_units, train_size, epochs, patience, batch_size,
                   learning_rate):
    train = context.arrays("train", train_size)
    validation = context.arrays("validation")
    test = context.arrays("test")
    settings = dict(validation=validation, epochs=epochs, batch_size=batch_size,
                    learning_rate=learning_rate, seed=context.seed)

    stopped_model = common.build("deep_mlp", context, hidden_units=tuple(hidden_units))
    stopped = common.fit(stopped_model, train, early_stopping_patience=patience, **settings)
    full_model = common.build("deep_mlp", context, hidden_units=tuple(hidden_units))
    full = common.fit(full_model, train, **settings)

    # 0-based; the first epoch of least validation loss, whose weights EarlyStopping restored
    picked = int(np.argmin(stopped["val_loss"]))
    stopped_evaluation = common.evaluate(stopped_model, *test)
    full_evaluation = common.evaluate(full_model, *test)
    results = {
        "picked_epoch": picked + 1,
        "epochs_run_with_early_stopping": len(stopped["loss"]),
        "epochs_without": len(full["loss"]),
        "best_validation_loss": stopped["val_loss"][picked],
        "final_validation_loss_without": full["val_loss"][-1],
        "min_validation_loss_without": min(full["val_loss"]),
        "final_train_loss_without": full["loss"][-1],
        "test_accuracy_early_stopped": stopped_evaluation["accuracy"],
        "test_accuracy_without": full_evaluation["accuracy"],
        "test_loss_early_stopped": stopped_evaluation["loss"],
        "test_loss_without": full_evaluation["loss"],
        "history_early_stopped": {k: stopped[k] for k in ("loss", "val_loss", "accuracy", "val_accuracy")},
        "history_without": {k: full[k] for k in ("loss", "val_loss", "accuracy", "val_accuracy")},
    }
    results["table"] = [
        {"run": "early stopping", "epochs": results["epochs_run_with_early_stopping"],
         "weights_from_epoch": picked + 1, "validation_loss": results["best_validation_loss"],
         "test_loss": stopped_evaluation["loss"], "test_accuracy": stopped_evaluation["accuracy"]},
        {"run": "no early stopping", "epochs": epochs, "weights_from_epoch": epochs,
         "validation_loss": full["val_loss"][-1], "test_loss": full_evaluation["loss"],
         "test_accuracy": full_evaluation["accuracy"]},
    ]
    _plot(results, context)
    return results


def _plot(results, context) -> None:
    plt = common.pyplot()
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(13, 4.8))
    full, stopped = results["history_without"], results["history_early_stopped"]
    picked, last = results["picked_epoch"], results["epochs_run_with_early_stopping"]
    for axis, key in ((loss, "loss"), (accuracy, "accuracy")):
        all_epochs = range(1, len(full[key]) + 1)
        run_epochs = range(1, len(stopped[key]) + 1)
        axis.plot(all_epochs, full[key], "--", color="tab:blue", alpha=0.45,
                  label=f"training {key}, without early stopping")
        axis.plot(all_epochs, full[f"val_{key}"], "--", color="tab:orange", alpha=0.45,
                  label=f"validation {key}, without early stopping")
        axis.plot(run_epochs, stopped[key], "-", color="tab:blue", label=f"training {key}")
        axis.plot(run_epochs, stopped[f"val_{key}"], "-", color="tab:orange",
                  label=f"validation {key}")
        axis.axvline(picked, color="green", label=f"EarlyStopping picks epoch {picked}")
        if last > picked:
            axis.axvspan(picked, last, color="green", alpha=0.08,
                         label=f"patience: {last - picked} epochs without improvement")
        axis.set(xlabel="epoch")
        axis.grid(alpha=0.3)
    loss.plot([picked], [results["best_validation_loss"]], "o", color="green")
    loss.set(ylabel="loss (cross-entropy)", yscale="log",
             title="monitored: validation loss (weights of the picked epoch restored)")
    loss.legend(fontsize=8)
    accuracy.set(ylabel="accuracy", title=f"test accuracy {results['test_accuracy_early_stopped']:.3f} "
                                          f"(stopped) vs {results['test_accuracy_without']:.3f} (all epochs)")
    low = min(min(full["val_accuracy"]), min(stopped["val_accuracy"]))
    accuracy.set_ylim(max(0.0, low - 0.05), 1.005)
    accuracy.legend(fontsize=8, loc="lower right")
    figure.suptitle(f"Early stopping on {context.dataset}")
    common.save_figure(figure, context.plot_path)
