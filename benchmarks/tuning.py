"""Search of λ and the dropout rate of a zoo model (cnn1d on MNIST-1D), against the untuned model.

    python -m benchmarks.tuning --out tuning_hyperband.json                  # ~13 min on 2 idle CPU cores
    python -m benchmarks.tuning --tuner bayesian --max-trials 20 --out tuning_bayesian.json
    python -m benchmarks.tuning --out tuning_quick.json --quick              # a few minutes: the script works

1. ``tuning.tune`` runs Keras Tuner's Hyperband (max_epochs 27, factor 3, one
   iteration: 70 trials in rounds of 1, 3, 9 and 27 epochs) — or, with
   ``--tuner bayesian``, ``--max-trials`` trials of Bayesian optimisation that
   each train the full max_epochs — over λ ∈ {0} ∪ [1e-6, 1e-2] (log) and
   dropout ∈ [0, 0.7] of the full ``cnn1d`` (custom layers), trained as
   ``zoo train`` trains on MNIST-1D (Adam 3e-3 decaying along a cosine over
   max_epochs, batch 100, early stopping), scoring trials by validation
   accuracy. The search must fit in ``--budget-minutes`` (20) on two CPU
   cores: the JSON records the wall time and ``within_budget``.
2. The best (λ, dropout) and two untuned baselines — λ = 0 with dropout 0, and
   the registry defaults of cnn1d (λ = 5e-4, dropout 0.3) — are each trained
   from scratch the same way (``tuning.train_and_evaluate``, a ``zoo.train`` run: up to
   max_epochs, early stopping on validation loss, best epoch restored) with the same
   seeds, and evaluated on the test split, which the search never saw.
3. Reported: trials per hour of the search, test accuracies (per seed and
   mean), the tuned-minus-untuned gap, and whether the chosen λ is neither the
   smallest nor the largest λ the search tried (and strictly inside the range).

With ``--pruners none median asha`` it measures the pruners instead: the same
seeded random search (``--max-trials`` trials of ``--max-epochs`` epochs)
once per pruner, recording the trial-epochs trained, the trials pruned, the
best validation accuracy and the wall time, each against the unpruned search:

    python -m benchmarks.tuning --pruners none median asha --max-trials 30 --max-epochs 9 \
        --out tuning_pruners.json

With ``--front`` it measures the front of accuracy against cost instead: a
random search of λ, the dropout rate and the width (``--width-range``,
multipliers of the model's filters and units) with the objectives
val_accuracy and MACs; the front's cheapest member within ``--within`` points
(0.5) of its best and the default model are trained from scratch with the same
seeds and compared on the test split, with their MACs:

    python -m benchmarks.tuning --front --model deep_cnn --dataset fashion_mnist \
        --max-trials 30 --max-epochs 6 --out tuning_front.json

Every mode takes ``--model`` and ``--dataset`` (default: cnn1d on MNIST-1D).

With ``--time-budget 10m`` it measures the budget instead: a random search of
cnn1d with far more trials than fit, given the budget, then its best retrained
and exported; it records how far past the budget the search ended, against
the longest epoch of its trials (the budget ends a running trial at its next
epoch), and the retraining's and export's times:

    python -m benchmarks.tuning --time-budget 10m --out tuning_budget.json
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

from zoo.commands import Parser
from zoo.vocabulary import int_at_least, positive_float, positive_int

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FULL = dict(max_epochs=27, seeds=(0, 1, 2))
QUICK = dict(max_epochs=3, seeds=(0,))
SCHEDULE = "cosine"  # as zoo train: the step size decays to 0 over max_epochs
SEARCH_SEED = 1  # Keras Tuner takes a seed of 0 for "no seed"


def summarise(runs: list[dict]) -> dict:
    accuracies = [run["test_accuracy"] for run in runs]
    return {
        "runs": runs,
        "test_accuracy_mean": round(statistics.fmean(accuracies), 4),
        "test_accuracy_std": round(statistics.stdev(accuracies), 4) if len(accuracies) > 1 else None,
    }


def lambda_position(best_lambda: float, trials: list[dict], low: float, high: float) -> dict:
    """Where the chosen λ lies among the values the search tried and in the range."""
    tried = sorted({row["weight_decay"] for row in trials if row["val_accuracy"] is not None})
    return {
        "chosen": best_lambda,
        "range": [low, high],
        "zero_allowed": True,
        "tried_distinct": len(tried),
        "smallest_tried": tried[0],
        "largest_tried": tried[-1],
        "rank_among_tried": tried.index(best_lambda) + 1,
        "neither_smallest_nor_largest_tried": tried[0] < best_lambda < tried[-1],
        "strictly_inside_range": low < best_lambda < high,
        "is_zero": best_lambda == 0.0,
    }


def measure_budget(args) -> int:
    """A random search of ``--model`` on ``--dataset`` given ``--time-budget``,
    its best retrained and exported (module docstring)."""
    import keras_tuner

    from benchmarks.report import environment, write_report
    from tuning import tune
    from tuning.budget import parse_duration
    from zoo import datasets

    budget = parse_duration(args.time_budget)
    max_epochs = args.max_epochs or 9
    datasets.prepare(args.dataset, data_dir=args.data_dir)
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or scratch
        started = time.perf_counter()
        result = tune(args.model, args.dataset, tuner="random", time_budget=budget, epochs=max_epochs,
                      max_trials=1000, seed=SEARCH_SEED, overwrite=True, data_dir=args.data_dir,
                      verbose=0, run_dir=os.path.join(workdir, f"{args.model}-random-budget"),
                      export_dir=os.path.join(workdir, "exported"))
        total = time.perf_counter() - started
        results = json.loads(result.results_path.read_text())
        exported = os.path.isdir(os.path.join(workdir, "exported"))
        final = json.loads(open(os.path.join(result.project_dir, "final", "metrics.json")).read())
    epoch_seconds = [row["wall_time_s"] / row["epochs_run"] for row in results["trials"]
                     if row.get("wall_time_s") and row.get("epochs_run")]
    over = results["search_wall_time_s"] - budget
    report = {"benchmark": "tuning_budget", "model": args.model, "dataset": args.dataset,
              "tuner": "random",
              "max_epochs": max_epochs, "time_budget_s": budget,
              "search_wall_time_s": results["search_wall_time_s"], "seconds_past_budget": round(over, 1),
              "longest_trial_epoch_s": round(max(epoch_seconds), 1),
              "ended_within_one_epoch": over <= max(epoch_seconds),
              "stopped_by_budget": results["stopped_by_budget"], "trials": results["num_trials"],
              "best_val_accuracy": round(results["best_val_accuracy"], 4),
              "retrained": final["epochs_run"] > 0,
              "retrained_test_accuracy": round(results["test_accuracy"], 4),
              "retraining_wall_time_s": final["wall_time_s"], "exported": exported,
              "total_wall_time_s": round(total, 1),
              **environment(), "keras_tuner": keras_tuner.__version__}
    write_report(report, args.out)
    print(f"search {results['search_wall_time_s']:.0f} s for a budget of {budget:.0f} s "
          f"({over:+.1f} s; longest epoch {max(epoch_seconds):.1f} s), {results['num_trials']} trials, "
          f"retrained test accuracy {results['test_accuracy']:.4f}; wrote {args.out}")
    return 0


def measure_front(args) -> int:
    """The front of validation accuracy against MACs (module docstring): a
    random search of λ, the dropout rate and the width of ``--model`` on
    ``--dataset`` with the objectives val_accuracy and macs; then the front's
    cheapest member within ``--within`` points of its best and the default
    model (width 1, its own λ and dropout rate), each trained from scratch
    with the same seeds and evaluated on the test split, which the search
    never saw."""
    import keras_tuner

    from benchmarks.report import environment, write_report
    from tuning import SearchConfig, SearchSpace, train_and_evaluate, tune
    from zoo import count_flops, create_model, datasets
    from zoo.models import model_arguments
    from zoo.training import TrainConfig

    max_epochs = args.max_epochs or 9
    seeds = tuple(args.seeds) if args.seeds else FULL["seeds"]
    datasets.prepare(args.dataset, data_dir=args.data_dir)
    space = SearchSpace(width=tuple(args.width_range))
    training = TrainConfig(args.model, args.dataset, epochs=max_epochs, seed=SEARCH_SEED,
                           batch_size=args.batch_size)
    config = SearchConfig(training, "random", space, objectives=("val_accuracy", "macs"))
    defaults = model_arguments(args.model)
    default_macs = count_flops(create_model(args.model)).macs
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or scratch
        result = tune(config, max_trials=args.max_trials, pick=f"smallest-within:{args.within}",
                      retrain=False, overwrite=True, data_dir=args.data_dir, verbose=0,
                      run_dir=os.path.join(workdir, f"{args.model}-{args.dataset}-front"))
        results = json.loads(result.results_path.read_text())
        picked = result.best_hyperparameters
        configurations = {
            "front_pick": {key: picked[key] for key in ("weight_decay", "dropout_rate", "width")},
            "default": {"weight_decay": defaults["weight_decay"],
                        "dropout_rate": defaults["dropout_rate"]},
        }
        comparison = {}
        for name, values in configurations.items():
            runs = []
            for seed in seeds:
                trained = train_and_evaluate(config, values, seed=seed, data_dir=args.data_dir,
                                             overwrite=True, verbose=0,
                                             run_dir=os.path.join(workdir, f"{name}-{seed}"))
                runs.append({"seed": seed, "test_accuracy": round(trained.metrics["test_accuracy"], 4),
                             "epochs_run": trained.metrics["epochs_run"]})
                print(f"{name:<10} seed {seed}: test accuracy {trained.metrics['test_accuracy']:.4f}",
                      flush=True)
            macs = count_flops(trained.model).macs
            comparison[name] = {"values": values, "macs": macs,
                                "default_macs_over_these": round(default_macs / macs, 2),
                                **summarise(runs)}
    gap = 100 * (comparison["front_pick"]["test_accuracy_mean"] - comparison["default"]["test_accuracy_mean"])
    report = {"benchmark": "tuning_front", "model": args.model, "dataset": args.dataset,
              "tuner": "random", "max_trials": args.max_trials, "max_epochs": max_epochs,
              "search_seed": SEARCH_SEED, "search_space": space.to_dict(), "pick_within_points": args.within,
              "default_macs": default_macs, "search_wall_time_s": results["search_wall_time_s"],
              "front": results["front"], "picked_trial_id": result.best_trial_id,
              "comparison": comparison, "front_pick_minus_default_points": round(gap, 2),
              "seeds": list(seeds), **environment(), "keras_tuner": keras_tuner.__version__}
    write_report(report, args.out)
    cheaper = comparison["front_pick"]["default_macs_over_these"]
    print(f"front of {len(results['front'])} members; the pick is {cheaper}x cheaper than the "
          f"default, {gap:+.2f} points on test; wrote {args.out}")
    return 0


def compare_pruners(args) -> int:
    """The same seeded random search of ``--model`` on ``--dataset`` once per
    pruner (module docstring); each against the first pruner given (``none``)."""
    import keras_tuner

    from benchmarks.report import environment, write_report
    from tuning import tune
    from zoo import datasets

    max_epochs = args.max_epochs or 9
    datasets.prepare(args.dataset, data_dir=args.data_dir)
    searches = {}
    with tempfile.TemporaryDirectory() as scratch:
        for pruner in args.pruners:
            result = tune(args.model, args.dataset, tuner="random", pruner=pruner, epochs=max_epochs,
                          max_trials=args.max_trials, seed=SEARCH_SEED, retrain=False, overwrite=True,
                          data_dir=args.data_dir, verbose=0,
                          run_dir=os.path.join(args.workdir or scratch, f"{args.model}-random-{pruner}"))
            results = json.loads(result.results_path.read_text())
            searches[pruner] = {
                "trial_epochs": results["trial_epochs"], "trials": results["num_trials"],
                "pruned_trials": results["num_pruned_trials"],
                "best_val_accuracy": round(results["best_val_accuracy"], 4),
                "best_hyperparameters": results["best_hyperparameters"],
                "search_wall_time_s": results["search_wall_time_s"],
            }
            print(f"{pruner:<7} {results['trial_epochs']} trial-epochs, "
                  f"{results['num_pruned_trials']} pruned, best val accuracy "
                  f"{results['best_val_accuracy']:.4f}, {results['search_wall_time_s']:.0f} s", flush=True)
    base = searches[args.pruners[0]]
    for search in searches.values():
        search["fewer_trial_epochs_percent"] = round(
            100 * (1 - search["trial_epochs"] / base["trial_epochs"]), 1)
        search["best_val_accuracy_minus_unpruned_points"] = round(
            100 * (search["best_val_accuracy"] - base["best_val_accuracy"]), 2)
    write_report({"benchmark": "tuning_pruners", "model": args.model, "dataset": args.dataset,
                  "tuner": "random", "max_trials": args.max_trials, "max_epochs": max_epochs,
                  "search_seed": SEARCH_SEED, "compared_with": args.pruners[0],
                  "searches": searches, **environment(), "keras_tuner": keras_tuner.__version__},
                 args.out)
    print(f"wrote {args.out}")
    return 0


def main(argv=None) -> int:
    if not __package__:  # as a script, `import tuning` would find this file
        print("tuning benchmark: error: run it as `python -m benchmarks.tuning`", file=sys.stderr)
        return 2
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--quick", action="store_true",
                        help="max_epochs 3 (6 trials), one seed: checks that the script runs")
    parser.add_argument("--max-epochs", type=positive_int, default=None, help="Hyperband's largest budget")
    parser.add_argument("--seeds", type=int_at_least(0), nargs="+", default=None,
                        help="seeds of the final comparison (default 0 1 2; --quick: 0)")
    parser.add_argument("--budget-minutes", type=positive_float, default=20.0)
    parser.add_argument("--tuner", choices=("hyperband", "bayesian", "random"), default="hyperband",
                        help="hyperband (default) or, for comparison, a tuner whose trials all "
                             "train the full max_epochs")
    parser.add_argument("--max-trials", type=positive_int, default=20, help="trials of bayesian/random")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="default: zoo train's for the dataset (100 on mnist1d)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--workdir", default=None, help="keep the tuning project here (default: a temp dir)")
    parser.add_argument("--pruners", nargs="+", choices=("none", "median", "asha"), default=None,
                        help="compare these pruners on one seeded random search instead")
    parser.add_argument("--time-budget", default=None,
                        help="measure a search given this budget (600, 10m, 1h) instead")
    parser.add_argument("--front", action="store_true",
                        help="measure the front of validation accuracy against MACs instead")
    parser.add_argument("--width-range", nargs=2, type=positive_float, default=(0.25, 1.0),
                        metavar=("LO", "HI"), help="--front: the width multipliers searched")
    parser.add_argument("--within", type=positive_float, default=0.5,
                        help="--front: retrain the cheapest member within these points of the best")
    parser.add_argument("--model", default="cnn1d", help="the zoo model searched (default: cnn1d)")
    parser.add_argument("--dataset", default=None, help="default: the model's own")
    args = parser.parse_args(argv)
    if args.dataset is None:
        from zoo.models import default_dataset

        args.dataset = default_dataset(args.model)
    if args.front:
        return measure_front(args)
    if args.pruners:
        return compare_pruners(args)
    if args.time_budget:
        return measure_budget(args)
    preset = QUICK if args.quick else FULL
    max_epochs = args.max_epochs or preset["max_epochs"]
    seeds = tuple(args.seeds) if args.seeds else preset["seeds"]

    import keras_tuner

    from benchmarks.report import environment, write_report
    from tuning import SearchConfig, SearchSpace, train_and_evaluate, tune
    from zoo import datasets
    from zoo.models import model_arguments
    from zoo.training import TrainConfig, training_defaults

    dataset_defaults = training_defaults(args.dataset)
    batch_size = args.batch_size or dataset_defaults["batch_size"]
    learning_rate = dataset_defaults["learning_rate"]

    space = SearchSpace(weight_decay=(1e-6, 1e-2), include_zero_weight_decay=True,
                        dropout_rate=(0.0, 0.7))
    training = TrainConfig(args.model, args.dataset, epochs=max_epochs, batch_size=batch_size,
                           learning_rate=learning_rate, learning_rate_schedule=SCHEDULE,
                           seed=SEARCH_SEED)
    config = SearchConfig(training, args.tuner, space)
    defaults = model_arguments(args.model)
    baselines = {
        "no_regularization": {"weight_decay": 0.0, "dropout_rate": 0.0},
        "model_defaults": {"weight_decay": defaults["weight_decay"],
                           "dropout_rate": defaults["dropout_rate"]},
    }
    datasets.prepare(args.dataset, data_dir=args.data_dir)
    started = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or scratch
        result = tune(config, max_trials=args.max_trials if args.tuner != "hyperband" else None,
                      data_dir=args.data_dir,
                      run_dir=os.path.join(workdir, f"{args.model}-{args.dataset}-{args.tuner}"),
                      overwrite=True, retrain=False, verbose=0)
        results = json.loads(result.results_path.read_text())
    search_seconds = results["search_wall_time_s"]
    completed = results["num_completed_trials"]
    best = result.best_hyperparameters
    print(f"search: {completed} trials in {search_seconds:.0f} s; best λ = {best['weight_decay']:.3g}, "
          f"dropout = {best['dropout_rate']:.3f}, val accuracy {result.best_val_accuracy:.4f}", flush=True)

    configurations = {"tuned": {"weight_decay": best["weight_decay"],
                                "dropout_rate": best["dropout_rate"]}, **baselines}
    comparison = {}
    for name, values in configurations.items():
        runs = []
        for seed in seeds:
            begun = time.time()
            with tempfile.TemporaryDirectory() as run_dir:
                trained = train_and_evaluate(config, values, run_dir=run_dir, seed=seed,
                                             data_dir=args.data_dir, overwrite=True)
            metrics = {key: trained.metrics[key] for key in ("test_loss", "test_accuracy", "epochs_run")}
            runs.append({"seed": seed, **{key: round(value, 4) for key, value in metrics.items()},
                         "wall_time_s": round(time.time() - begun, 1)})
            print(f"{name:<18} seed {seed}: test accuracy {metrics['test_accuracy']:.4f} "
                  f"({metrics['epochs_run']} epochs)", flush=True)
        comparison[name] = {"values": values, **summarise(runs)}

    tuned = comparison["tuned"]["test_accuracy_mean"]
    report = {
        "benchmark": "tuning",
        "quick": args.quick,
        "model": args.model,
        "search_seed": SEARCH_SEED,
        "dataset": args.dataset,
        "tuner": args.tuner,
        "max_trials": results["max_trials"],
        "max_epochs": max_epochs,
        "hyperband_factor": 3,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "learning_rate_schedule": SCHEDULE,
        "early_stopping_patience": training.early_stopping_patience,
        "search_space": space.to_dict(),
        "seeds": list(seeds),
        "search": {
            "wall_time_s": search_seconds,
            "budget_s": args.budget_minutes * 60,
            "within_budget": search_seconds <= args.budget_minutes * 60,
            "trials": results["num_trials"],
            "completed_trials": completed,
            "trials_per_hour": round(completed / search_seconds * 3600, 1),
            "best_trial_id": results["best_trial_id"],
            "best_hyperparameters": best,
            "best_val_accuracy": round(result.best_val_accuracy, 4),
            "best_checkpoint_test_accuracy": round(results["test_accuracy"], 4),
        },
        "comparison": comparison,
        "tuned_minus_no_regularization_points": round(
            100 * (tuned - comparison["no_regularization"]["test_accuracy_mean"]), 2),
        "tuned_minus_model_defaults_points": round(
            100 * (tuned - comparison["model_defaults"]["test_accuracy_mean"]), 2),
        "weight_decay_position": lambda_position(best["weight_decay"], results["trials"],
                                                 *space.weight_decay),
        "trials": [{key: row[key] for key in ("trial_id", "weight_decay", "dropout_rate", "epochs",
                                              "continues_trial", "val_accuracy", "wall_time_s")}
                   for row in results["trials"]],
        **environment(),
        "keras_tuner": keras_tuner.__version__,
        "total_seconds": round(time.time() - started, 1),
    }
    write_report(report, args.out)
    print(f"trials per hour {report['search']['trials_per_hour']}; tuned {tuned:.4f} vs "
          f"λ=0/dropout 0 {comparison['no_regularization']['test_accuracy_mean']:.4f} vs defaults "
          f"{comparison['model_defaults']['test_accuracy_mean']:.4f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
