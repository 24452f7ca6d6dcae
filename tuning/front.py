"""The front of accuracy against cost: with ``objectives=("val_accuracy",
"macs")`` a search reports its non-dominated trials — those no other trial
beats in validation accuracy without costing more multiply-accumulates per
example (``zoo.count_flops``) — instead of collapsing the two into one score,
as Keras Tuner's list of objectives does (a weighted sum). ``pick`` chooses
which member is retrained: ``"best"`` (the most accurate) or
``"smallest-within:0.2"`` (the cheapest within 0.2 points of the most
accurate member).
"""

from __future__ import annotations

from typing import Any

OBJECTIVES = ("val_accuracy", "macs")
PICKS = "'best' or 'smallest-within:POINTS' (e.g. smallest-within:0.2)"


def check_objectives(objectives) -> tuple[str, ...]:
    """``objectives`` as a tuple of :data:`OBJECTIVES` names, val_accuracy
    among them (the oracle's score); ValueError naming the allowed ones."""
    names = tuple(objectives.split(",")) if isinstance(objectives, str) else tuple(objectives)
    names = tuple(name.strip() for name in names)
    unknown = [name for name in names if name not in OBJECTIVES]
    if unknown or "val_accuracy" not in names or len(set(names)) != len(names):
        raise ValueError(f"`objectives` must be val_accuracy, optionally with macs "
                         f"(of {', '.join(OBJECTIVES)}). Received: objectives={objectives!r}")
    return names


def parse_pick(pick: str) -> float | None:
    """The tolerance in points of ``"smallest-within:POINTS"``; None for ``"best"``."""
    if pick == "best":
        return None
    name, _, points = str(pick).partition(":")
    try:
        tolerance = float(points)
    except ValueError:
        tolerance = -1.0
    if name != "smallest-within" or not tolerance >= 0:
        raise ValueError(f"`pick` must be {PICKS}. Received: pick={pick!r}")
    return tolerance


def pareto_front(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The completed trials that no other completed trial dominates (at
    least as accurate and at most as costly, better in one), cheapest first."""
    done = [row for row in rows if row["status"] == "COMPLETED"
            and row.get("val_accuracy") is not None and row.get("macs") is not None]

    def dominated(row):
        return any(other["val_accuracy"] >= row["val_accuracy"] and other["macs"] <= row["macs"]
                   and (other["val_accuracy"] > row["val_accuracy"] or other["macs"] < row["macs"])
                   for other in done)

    return sorted((row for row in done if not dominated(row)),
                  key=lambda row: (row["macs"], -row["val_accuracy"]))


def pick_member(front: list[dict[str, Any]], pick: str) -> dict[str, Any]:
    """The front member ``pick`` chooses (module docstring)."""
    tolerance = parse_pick(pick)
    best = max(front, key=lambda row: row["val_accuracy"])
    if tolerance is None:
        return best
    return min((row for row in front if row["val_accuracy"] >= best["val_accuracy"] - tolerance / 100),
               key=lambda row: row["macs"])


def plot_front(rows: list[dict[str, Any]], front: list[dict[str, Any]], path, title: str,
               picked_trial_id: str | None = None) -> None:
    """Validation accuracy against MACs per example of every completed trial,
    the front drawn as a step line, the picked member ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.files import save_figure

    done = [row for row in rows if row.get("val_accuracy") is not None and row.get("macs")]
    figure, axis = plt.subplots(figsize=(7, 5))
    axis.scatter([row["macs"] for row in done], [row["val_accuracy"] for row in done],
                 color="lightgray", edgecolors="gray", label="trials")
    axis.step([row["macs"] for row in front], [row["val_accuracy"] for row in front], where="post",
              color="tab:blue", marker="o", label="front")
    picked = [row for row in front if row["trial_id"] == picked_trial_id]
    if picked:
        axis.scatter([picked[0]["macs"]], [picked[0]["val_accuracy"]], s=250, facecolors="none",
                     edgecolors="red", linewidths=1.5, label="picked")
    axis.set_xscale("log")
    axis.set(xlabel="multiply-accumulates per example (log)", ylabel="validation accuracy",
             title=title)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    save_figure(figure, path)
