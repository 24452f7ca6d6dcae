"""The experiment registry and runner: ``@register_experiment``,
``list_experiments``, ``run``.

An experiment is a function ``(context, **settings) -> dict`` in its own
module. It registers two sets of settings — ``quick`` (a few minutes on two
CPU cores) and ``full`` — saves its figure to ``context.plot_path`` and
returns its numbers, with a ``"table"`` of rows to print. ``run`` adds what
was run (dataset, seed, settings, wall time) and writes ``results.json``.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from pathlib import Path
from typing import Any, Callable

# Lecture order; importing a module registers its experiment.
_MODULES = ("depth", "vanishing_gradients", "weight_decay", "early_stopping", "batch_norm",
            "dropout", "params", "mnist1d_table")


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    claim: str
    function: Callable[..., dict]
    dataset: str
    quick: dict[str, Any]
    full: dict[str, Any]


_REGISTRY: dict[str, Experiment] = {}


def register_experiment(name: str, *, claim: str, dataset: str, quick: dict, full: dict):
    """Registers the decorated function as experiment ``name``; ``dataset`` is
    its default, ``quick`` and ``full`` its settings in the two modes (the
    same keys)."""
    if set(quick) != set(full):
        raise ValueError(f"Experiment {name!r}: quick and full settings differ in their keys.")

    def decorator(function):
        if name in _REGISTRY:
            raise ValueError(f"An experiment named {name!r} is already registered.")
        _REGISTRY[name] = Experiment(name, claim, function, dataset, dict(quick), dict(full))
        return function

    return decorator


def _import_experiments() -> None:
    for module in _MODULES:
        importlib.import_module(f"zoo.experiments.{module}")


def list_experiments() -> list[str]:
    """Names of the experiments, in the lecture's order."""
    _import_experiments()
    return list(_REGISTRY)


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; ValueError lists the valid names."""
    _import_experiments()
    if name not in _REGISTRY:
        from custom_layers.arguments import did_you_mean

        raise ValueError(f"Unknown experiment {name!r}.{did_you_mean(name, _REGISTRY)} "
                         "Available experiments: "
                         f"{', '.join(_REGISTRY)}.")
    return _REGISTRY[name]


def default_run_dir(name: str) -> Path:
    """``./runs/reproduce-<name>`` under the current directory."""
    return Path.cwd() / "runs" / f"reproduce-{name}"


def run(name: str, run_dir=None, quick: bool = False, dataset: str | None = None, seed: int = 0,
        data_dir=None, precision: str = "auto", verbose: int | str = 1, **settings) -> dict:
    """Runs experiment ``name`` and returns its results (also written to
    ``run_dir/results.json``, beside the plot ``run_dir/<name>.png``).

    Args:
        name: one of :func:`list_experiments`.
        run_dir: where to write; default ``./runs/reproduce-<name>``.
        quick: the few-minutes settings instead of the full ones.
        dataset: any ``zoo.datasets`` name; default the experiment's own
            (an embedded offline one).
        seed: seeds the data subsets, initialisations and shuffles.
        data_dir: tensorflow-datasets data directory (default tfds').
        precision: the dtype policy the experiment's models are built under:
            "auto" (the fastest the device computes natively), "float32",
            "mixed_bfloat16" or "mixed_float16" (``zoo.training.precision``).
        verbose: 0 prints nothing; otherwise the precision and the results
            table ("auto", 1, 2: ``zoo.train``'s values).
        settings: overrides of individual settings (e.g. ``epochs=3``);
            unknown ones raise ValueError listing the valid ones.
    """
    from custom_layers.arguments import check_int
    from zoo import datasets
    from zoo.experiments.common import Context, format_table
    from zoo.io import atomic_write_json
    from zoo.training.engine import check_verbose
    from zoo.training.precision import announce, choose_precision, precision_scope

    experiment = get_experiment(name)
    check_int(seed, "seed", minimum=0)
    verbose = check_verbose(verbose) != 0
    dataset = experiment.dataset if dataset is None else dataset
    datasets.info(dataset)  # unknown names: ValueError listing the valid ones
    unknown = sorted(set(settings) - set(experiment.full))
    if unknown:
        raise ValueError(f"Unknown setting(s) {', '.join(unknown)} for experiment {name!r}. "
                         f"Valid settings: {', '.join(experiment.full)}.")
    chosen = {**(experiment.quick if quick else experiment.full), **settings}
    precision = choose_precision(precision)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(name)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"Cannot create the run directory {run_dir}: {error.strerror}.") from None

    context = Context(name=name, dataset=dataset, seed=seed, quick=quick, run_dir=run_dir,
                      data_dir=None if data_dir is None else str(data_dir))
    announce(precision, verbose)
    started = time.perf_counter()
    with precision_scope(precision.policy):
        measured = experiment.function(context, **chosen)
    results = {
        "experiment": name,
        "claim": experiment.claim,
        "dataset": dataset,
        "quick": quick,
        "seed": seed,
        "settings": chosen,
        "precision": precision.policy,
        "precision_reason": precision.reason,
        "plot": context.plot_path.name,
        **measured,
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    results = _plain(results)
    atomic_write_json(results, run_dir / "results.json")
    if verbose:
        print(f"{name}: {experiment.claim}")
        for key, rows in results.items():
            if key.endswith("table") and rows:
                print(format_table(rows))
        print(f"plot and results.json in {run_dir} ({results['wall_time_s']:.0f} s)")
    return results


def _plain(value):
    """``value`` with numpy scalars and arrays (and tuples) turned into JSON's types."""
    import numpy as np

    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value
