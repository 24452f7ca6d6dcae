"""The experiment registry and runner: ``@register_experiment``,
``list_experiments``, ``run``.

An experiment is a function ``(context, **settings) -> dict`` in its own
module. It registers two sets of settings — ``quick`` (a few minutes on two
CPU cores) and ``full`` — and, on a dataset where a paper's own settings
apply, those that differ there (``on``); it may name the only datasets its
claim is made on (``datasets``). It saves its figure to ``context.plot_path``
and returns its numbers, with a ``"table"`` of rows to print. ``run`` adds what
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
    datasets: tuple[str, ...] | None = None
    on: dict[str, dict[str, dict[str, Any]]] = dataclasses.field(default_factory=dict)

    def settings(self, dataset: str, quick: bool) -> dict[str, Any]:
        """The settings of a run on ``dataset``: the mode's, updated by those
        the experiment has for that dataset (``on``)."""
        mode = "quick" if quick else "full"
        return {**(self.quick if quick else self.full), **self.on.get(dataset, {}).get(mode, {})}


_REGISTRY: dict[str, Experiment] = {}


def register_experiment(name: str, *, claim: str, dataset: str, quick: dict, full: dict,
                        datasets: tuple[str, ...] | None = None,
                        on: dict[str, dict[str, dict]] | None = None):
    """Registers the decorated function as experiment ``name``; ``dataset`` is
    its default, ``quick`` and ``full`` its settings in the two modes (the
    same keys); ``datasets`` the only ones it can use (None: any);
    ``on[DATASET]["quick" | "full"]`` the settings that differ on a dataset."""
    if set(quick) != set(full):
        raise ValueError(f"Experiment {name!r}: quick and full settings differ in their keys.")
    for where, modes in (on or {}).items():
        for mode, settings in modes.items():
            if mode not in ("quick", "full") or set(settings) - set(full):
                raise ValueError(f"Experiment {name!r}: on[{where!r}] sets settings of 'quick' "
                                 f"or 'full' only, among {', '.join(full)}.")

    def decorator(function):
        if name in _REGISTRY:
            raise ValueError(f"An experiment named {name!r} is already registered.")
        _REGISTRY[name] = Experiment(name, claim, function, dataset, dict(quick), dict(full),
                                     tuple(datasets) if datasets else None, dict(on or {}))
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


def check_dataset(name: str, dataset: str) -> None:
    """ValueError naming the datasets experiment ``name`` can use, when ``dataset`` is not one."""
    experiment = get_experiment(name)
    if experiment.datasets is not None and dataset not in experiment.datasets:
        raise ValueError(f"Experiment {name!r} cannot use dataset {dataset!r}: its claim is made "
                         f"on {', '.join(experiment.datasets)}; pass one of those.")


RESULTS_FILE = "results.json"


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
    from zoo import datasets, runs
    from zoo.experiments.common import Context, format_table
    from zoo.training.engine import check_verbose
    from zoo.training.precision import announce, choose_precision, precision_scope

    experiment = get_experiment(name)
    check_int(seed, "seed", minimum=0)
    verbose = check_verbose(verbose) != 0
    dataset = experiment.dataset if dataset is None else dataset
    datasets.info(dataset)  # unknown names: ValueError listing the valid ones
    check_dataset(name, dataset)
    unknown = sorted(set(settings) - set(experiment.full))
    if unknown:
        raise ValueError(f"Unknown setting(s) {', '.join(unknown)} for experiment {name!r}. "
                         f"Valid settings: {', '.join(experiment.full)}.")
    chosen = {**experiment.settings(dataset, quick), **settings}
    precision = choose_precision(precision)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(name)
    # locked as zoo train's run directories; nothing left if it fails in a new directory
    directory = runs.RunDirectory(run_dir, "Experiment directory", finished_file=RESULTS_FILE)
    record = {"experiment": name, "dataset": dataset, "quick": quick, "seed": seed,
              "settings": chosen, "precision": precision.policy}
    with directory.open(_plain(record), resumable=False):
        context = Context(name=name, dataset=dataset, seed=seed, quick=quick, run_dir=directory.path,
                          data_dir=None if data_dir is None else str(data_dir))
        announce(precision, verbose)
        started = time.perf_counter()
        with precision_scope(precision.policy):
            measured = experiment.function(context, **chosen)
        results = _plain({
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
        })
        directory.finish(results)  # the record of what ran, then its results
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
