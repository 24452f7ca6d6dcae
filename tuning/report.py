"""What a search reports: the trial table (rows, and as aligned text) and
the plot of validation accuracy over (λ, dropout rate)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras_tuner

from tuning.search_space import DROPOUT_RATE, LEARNING_RATE, WEIGHT_DECAY, WIDTH, SearchSpace, trial_values
from tuning.tuners import read_trial_record
from zoo.files import save_figure


def _read_record(project_dir: Path, trial_id: str) -> dict[str, Any]:
    return read_trial_record(project_dir / f"trial_{trial_id}")


def trial_number(trial_id: str) -> int | str:
    """The number Keras Tuner prints for a trial ("Search: Running Trial #N"):
    its id, counted from 1. The table and the results use it."""
    return int(trial_id) + 1 if str(trial_id).isdigit() else trial_id


def trial_table(search_tuner: keras_tuner.Tuner) -> list[dict[str, Any]]:
    """One row per trial of the search (chief or single process): Keras
    Tuner's id (its ``trial_ID`` directory) and number (as its log prints it), status,
    λ, dropout rate, learning rate, best val accuracy, best epoch, epoch budget,
    which tuner ran it and its wall time."""
    project_dir = Path(search_tuner.project_dir)
    rows = []
    for trial_id, trial in sorted(search_tuner.oracle.trials.items(),
                                  key=lambda item: (len(item[0]), item[0])):  # "9" < "10"
        values = trial.hyperparameters.values
        record = _read_record(project_dir, trial_id)
        history = record.get("val_accuracy_history") or []
        pruned = record.get("pruned_at_epoch") is not None and trial.status == "STOPPED"
        score = trial.score if not pruned else max(history)  # a pruned trial is not scored
        rows.append({
            "trial_id": trial_id,
            "trial": trial_number(trial_id),
            "status": "PRUNED" if pruned else trial.status,
            **trial_values(values),
            "val_accuracy": None if score is None or math.isnan(score) else float(score),
            "epochs_run": len(history) if history else None,
            "best_epoch": None if trial.best_step is None else int(trial.best_step) + 1,
            "epochs": values.get("tuner/epochs"),
            "continues_trial": (None if values.get("tuner/trial_id") is None
                                else trial_number(values["tuner/trial_id"])),
            "tuner_id": record.get("tuner_id"),
            "wall_time_s": record.get("wall_time_s"),
        })
    return rows


def format_trial_table(trials: list[dict[str, Any]], best_trial_id: str | None = None) -> str:
    """The trial table as aligned text: trial, λ, dropout, (learning rate,
    Hyperband's epoch budget,) val accuracy, status and the tuner that ran it."""
    with_learning_rate = any(row.get(LEARNING_RATE) is not None for row in trials)
    with_epochs = any(row.get("epochs") is not None for row in trials)
    columns = [("trial", 6, lambda row: f"#{trial_number(row['trial_id'])}"),
               ("λ", 9, lambda row: f"{row[WEIGHT_DECAY]:.2e}" if row[WEIGHT_DECAY] else "0"),
               ("dropout", 7, lambda row: f"{row[DROPOUT_RATE]:.3f}")]
    if with_learning_rate:
        columns.append(("lr", 9, lambda row: _format(row.get(LEARNING_RATE), ".2e")))
    if with_epochs:
        columns.append(("epochs", 6, lambda row: _format(row.get("epochs"), "d")))
    if any(row.get(WIDTH) is not None for row in trials):
        columns.append(("width", 6, lambda row: _format(row.get(WIDTH), ".3g")))
    if any(row.get("macs") is not None for row in trials):
        columns.append(("MACs", 11, lambda row: _format(row.get("macs"), ",d")))
    columns += [("val acc", 7, lambda row: _format(row["val_accuracy"], ".4f")),
                ("status", -9, lambda row: row["status"]),
                ("tuner", -8, lambda row: row.get("tuner_id") or "")]

    def line(cells):
        return "  ".join(f"{cell:<{-width}}" if width < 0 else f"{cell:>{width}}"
                         for cell, (_, width, _) in zip(cells, columns))

    lines = [line([name for name, _, _ in columns]).rstrip()]
    for row in trials:
        text = line([render(row) for _, _, render in columns]).rstrip()
        lines.append(text + ("  <- best" if row["trial_id"] == best_trial_id else ""))
    return "\n".join(lines)


def _format(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def plot_search(trials: list[dict[str, Any]], search_space: SearchSpace, path: Path,
                title: str, best_trial_id: str | None = None) -> None:
    """Validation accuracy of each completed trial over (λ, dropout rate), as a
    PNG; λ on a symmetric-log axis so that λ = 0 has its place."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [row for row in trials if row["val_accuracy"] is not None]
    figure, axis = plt.subplots(figsize=(7, 5))
    if done:
        points = axis.scatter([row[WEIGHT_DECAY] for row in done], [row[DROPOUT_RATE] for row in done],
                              c=[row["val_accuracy"] for row in done], cmap="viridis", s=60,
                              edgecolors="black", linewidths=0.5)
        figure.colorbar(points, ax=axis, label="validation accuracy")
        best = [row for row in done if row["trial_id"] == best_trial_id]
        if best:
            axis.scatter([best[0][WEIGHT_DECAY]], [best[0][DROPOUT_RATE]], marker="*", s=300,
                         facecolors="none", edgecolors="red", linewidths=1.5, label="best")
            axis.legend(loc="best")
    low, high = search_space.weight_decay
    axis.set_xscale("symlog", linthresh=low)
    axis.set_xlim(-0.5 * low if search_space.include_zero_weight_decay else low * 0.8, high * 1.25)
    axis.set_ylim(search_space.dropout_rate[0] - 0.02, search_space.dropout_rate[1] + 0.02)
    axis.set(xlabel="weight decay λ (symlog; 0 = none)", ylabel="dropout rate", title=title)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    save_figure(figure, path)
