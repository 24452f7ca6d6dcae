"""The zoo's results table, in timm's spirit: every registered model trained
on its own embedded dataset with ``zoo train``'s defaults, over seeds.

Per model and seed one ``zoo.train`` run (its defaults: epochs, batch size,
learning rate, cosine schedule, early stopping; precision "auto"). Each
finished run is recorded at once in ``results/runs/DATASET/MODEL-seedN.json``,
so an interrupted table resumes where it stopped. Per dataset the table
``results/results-DATASET.csv`` has one row per model: parameters and
multiply-accumulates per example (``zoo.count_flops``), test accuracy mean
and standard deviation over the seeds, training examples per second (the
median of the runs' ``metrics.json``), inference examples per second (a
SavedModel serving batches of 256, the median of 20 calls after 3 warm-ups),
the precision and the machine.

With ``--ship-weights`` the run of best validation accuracy of each model
becomes its shipped weights (``zoo/weights``, ``zoo.models.weights``): the
weights file, its SHA-256 and the test accuracy it gives, evaluated again
in float32 at batch 256 as the tests evaluate it. A model whose weights
would take the shipped total past ``--weights-budget-mb`` ships none.

    python -m benchmarks.results [--models lenet5 resnet20] [--seeds 3] [--ship-weights]
"""

from __future__ import annotations

import csv
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.report import environment
from zoo.commands import Parser
from zoo.vocabulary import positive_int, positive_float

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
COLUMNS = ("model", "dataset", "parameters", "macs", "test_accuracy_mean", "test_accuracy_std",
           "seeds", "train_examples_per_second", "inference_examples_per_second", "precision",
           "machine")
INFERENCE_BATCH = 256


def parse_args(argv=None):
    parser = Parser(prog="python -m benchmarks.results",
                    description="Train every zoo model on its own dataset over seeds; write the "
                                "results CSVs (and the shipped weights).")
    parser.add_argument("--models", nargs="+", default=None, help="default: every registered model")
    parser.add_argument("--dataset", default=None,
                        help="train every model on this dataset (default: each model's own); "
                             "models that cannot be built for it are left out")
    parser.add_argument("--seeds", type=positive_int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="default: zoo train's (a smaller number is a smoke run)")
    parser.add_argument("--out", default=str(RESULTS), help="default: results/")
    parser.add_argument("--ship-weights", action="store_true",
                        help="store the best run's weights in zoo/weights")
    parser.add_argument("--weights-budget-mb", type=positive_float, default=16.0)
    parser.add_argument("--readme", action="store_true",
                        help="print the README's table from the CSVs, train nothing")
    parser.add_argument("--cards", action="store_true",
                        help="rewrite the shipped weights' model cards from the recorded runs, "
                             "train nothing")
    return parser.parse_args(argv)


def machine() -> str:
    """The CPU (or GPUs) and its widest vector extension, in a few words."""
    info = environment()
    gpus = info.get("gpus") or []
    if gpus:
        return f"{len(gpus)} GPU(s)"
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            name = next(line.split(":", 1)[1].strip() for line in handle
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = [flag for flag in ("amx_bf16", "avx512_bf16", "avx512f", "avx2")
             if flag in info["cpu_flags"]]
    return f"{name}, {info['cpu_count']} cores, {flags[0] if flags else 'no AVX2'}"


def record_path(out: Path, dataset: str, model: str, seed: int) -> Path:
    return out / "runs" / dataset / f"{model}-seed{seed}.json"


def training_settings(model: str, dataset: str, epochs: int | None) -> dict[str, Any]:
    """What a run of ``model`` on ``dataset`` trains with: its recipe, else the
    dataset's defaults (``zoo.models.training_recipe``), ``epochs`` if given."""
    from zoo.models.registry import RECIPE_FIELDS
    from zoo.training import TrainConfig

    config = TrainConfig(model, dataset=dataset, epochs=epochs)
    return {name: getattr(config, name) for name in RECIPE_FIELDS}


def train_command(model: str, dataset: str, seed: int, training: dict[str, Any]) -> str:
    """The ``zoo train`` command line that makes a run of ``train_one``, every
    recipe setting spelled out (``training``: :func:`training_settings`)."""
    flags = [f"--{name.replace('_', '-')} {value}" for name, value in training.items()
             if not isinstance(value, bool)]
    flags += [f"--{'' if value else 'no-'}{name}" for name, value in training.items()
              if isinstance(value, bool)]
    return " ".join([f"zoo train {model} --dataset {dataset} --seed {seed}", *flags])


def preset_of(model: str, models: list[str]) -> str | None:
    """The preset among ``models`` that is ``model``'s default network, when
    ``model`` is a family whose defaults are one of its presets (``resnet``
    is ``resnet20``): its row is the preset's runs."""
    from zoo.datasets import list_datasets
    from zoo.models.registry import model_arguments, training_recipe

    def defaults(name):
        return {key: value for key, value in model_arguments(name).items() if key != "name"}

    def recipes(name):
        return {dataset: training_recipe(name, dataset) for dataset in list_datasets()}

    if model_arguments(model).get("name") is not None:  # a preset names its network
        return None
    return next((other for other in models if other != model
                 and model_arguments(other).get("name") is not None
                 and defaults(other) == defaults(model)
                 and recipes(other) == recipes(model)), None)


def train_one(model: str, dataset: str, seed: int, epochs: int | None,
              scratch: Path) -> dict[str, Any]:
    """One ``zoo.train`` run with the defaults, in ``scratch/DATASET/MODEL-seedN``:
    an interrupted run resumes there and a finished one with the same
    settings is read, not trained again; its record."""
    import keras

    from zoo import runs
    from zoo.training import RunFinishedError, RunSettingsChangedError, train

    settings = {} if epochs is None else {"epochs": epochs}
    training = training_settings(model, dataset, epochs)
    run_dir = scratch / dataset / f"{model}-seed{seed}"
    if runs.is_finished(run_dir):
        recorded = json.loads((run_dir / runs.SETTINGS_FILE).read_text())
        if any(recorded.get(key) != value for key, value in {"seed": seed, **training}.items()):
            shutil.rmtree(run_dir)  # trained with other settings
    options = dict(dataset=dataset, run_dir=run_dir, seed=seed, verbose=0, **settings)
    try:
        metrics = train(model, **options).metrics
    except RunFinishedError:  # trained by an earlier call, not yet recorded
        metrics = json.loads((run_dir / runs.FINISHED_FILE).read_text())
    except RunSettingsChangedError:  # an unfinished run of other settings
        metrics = train(model, overwrite=True, **options).metrics
    history = runs.read_history(run_dir / runs.HISTORY_FILE)
    record = {
        "model": model, "dataset": metrics["dataset"], "seed": seed, "training": training,
        "command": train_command(model, dataset, seed, training),
        "backend": keras.backend.backend(), "keras_version": keras.__version__,
        "tensorflow_version": _tensorflow_version(),
        "test_accuracy": metrics["test_accuracy"],
        "best_val_accuracy": max((row.get("val_accuracy", 0.0) for row in history), default=None),
        "epochs_run": metrics["epochs_run"],
        "train_examples_per_second": metrics["train_examples_per_second"],
        "precision": metrics["precision"], "wall_time_s": metrics["wall_time_s"],
        "model_file": _from_root(run_dir / runs.MODEL_FILE),  # kept in results/.runs
    }
    keras.backend.clear_session()
    return record


def _tensorflow_version() -> str | None:
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf.__version__


def _from_root(path: Path) -> str:
    """``path`` relative to the repository when inside it (records hold no machine paths)."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def inference_rate(model_file: str | Path) -> float:
    """Examples per second of the exported SavedModel on batches of 256."""
    import numpy as np
    import tensorflow as tf

    from zoo.export import export_savedmodel
    from zoo.io import load_model

    model = load_model(model_file)
    with tempfile.TemporaryDirectory() as scratch:
        path = export_savedmodel(model, Path(scratch) / "saved_model")
        serve = tf.saved_model.load(str(path)).signatures["serve"]
        shape = (INFERENCE_BATCH, *model.input_shape[1:])
        batch = tf.constant(np.random.default_rng(0).random(shape, np.float32))
        for _ in range(3):
            serve(batch)
        seconds = []
        for _ in range(20):
            started = time.perf_counter()
            serve(batch)
            seconds.append(time.perf_counter() - started)
    return INFERENCE_BATCH / statistics.median(seconds)


def write_tables(out: Path, rows: list[dict[str, Any]]) -> list[Path]:
    """One CSV per dataset, models sorted by name."""
    from zoo.files import atomic_path

    written = []
    for dataset in sorted({row["dataset"] for row in rows}):
        path = out / f"results-{dataset}.csv"
        ours = sorted((row for row in rows if row["dataset"] == dataset), key=lambda row: row["model"])
        with atomic_path(path) as temporary, temporary.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, COLUMNS)
            writer.writeheader()
            writer.writerows(ours)
        written.append(path)
    return written


def accuracy_spread(records: list[dict[str, Any]]) -> tuple[float, float | None]:
    """Mean and standard deviation (None for one seed) of the records' test
    accuracies, to 4 places: a table row's and a model card's figures."""
    accuracies = [record["test_accuracy"] for record in records]
    std = round(statistics.stdev(accuracies), 4) if len(accuracies) > 1 else None
    return round(statistics.mean(accuracies), 4), std


def summarise(model: str, records: list[dict[str, Any]], machine_name: str) -> dict[str, Any]:
    from zoo.flops import count_flops
    from zoo.models import create_model

    count = count_flops(create_model(model))
    mean, std = accuracy_spread(records)
    rates = [record["train_examples_per_second"] for record in records
             if record["train_examples_per_second"]]
    return {
        "model": model, "dataset": records[0]["dataset"], "parameters": count.parameters,
        "macs": count.macs, "test_accuracy_mean": mean,
        "test_accuracy_std": "" if std is None else std,
        "seeds": len(records),
        "train_examples_per_second": round(statistics.median(rates)) if rates else "",
        "inference_examples_per_second": round(records[0]["inference_examples_per_second"]),
        "precision": records[0]["precision"], "machine": machine_name,
    }


def weights_card(run: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """The model card of the weights of ``run``, one of the seeds' ``records``
    of its table row (``zoo.models.weights.CARD_FIELDS``)."""
    mean, std = accuracy_spread(records)
    return {"run_test_accuracy": run["test_accuracy"],
            "table_test_accuracy": {"mean": mean, "std": std, "seeds": len(records)},
            "command": train_command(run["model"], run["dataset"], run["seed"], run["training"]),
            **{key: run.get(key) for key in ("backend", "precision", "keras_version",
                                             "tensorflow_version")}}


def refresh_cards(out: Path) -> list[str]:
    """Rewrites the model card of every shipped weights file from the runs
    recorded in ``out`` (its seed's run and its table row); the file, its
    SHA-256, shapes and evaluated test accuracy stay as they are."""
    from zoo.flops import count_flops
    from zoo.files import atomic_write_json
    from zoo.models import create_model
    from zoo.models import weights

    records = weights.manifest()
    done = []
    for model, entries in records.items():
        count = count_flops(create_model(model))
        for dataset, entry in entries.items():
            runs = sorted((json.loads(path.read_text()) for path in
                           (out / "runs" / dataset).glob(f"{model}-seed*.json")),
                          key=lambda record: record["seed"])
            run = next((record for record in runs if record["seed"] == entry["seed"]), None)
            if run is None:
                done.append(f"{model} on {dataset}: no recorded run of seed {entry['seed']}; card kept")
                continue
            entry.update(parameters=count.parameters, macs=count.macs, **weights_card(run, runs))
            done.append(f"{model} on {dataset}: card written")
    atomic_write_json(records, weights.MANIFEST)
    return done


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.readme:
        print(readme_table(Path(args.out)))
        return 0
    if args.cards:
        for line in refresh_cards(Path(args.out)):
            print(line, file=sys.stderr)
        return 0
    from zoo.commands import import_tensorflow_quietly

    import_tensorflow_quietly()
    from zoo.files import atomic_write_json
    from zoo.models import datasets_for, default_dataset, list_models

    out = Path(args.out)
    models = args.models or list_models()
    if args.dataset is not None:
        from zoo.datasets import info

        info(args.dataset)  # unknown names: ValueError listing the datasets
        models = [model for model in models if args.dataset in datasets_for(model)]
    machine_name = machine()
    scratch = out / ".runs"  # the runs' directories, kept until their model's table row is done
    for model in models:
        dataset = args.dataset or default_dataset(model)
        if preset_of(model, list_models()):
            continue  # its row is its preset's runs (recorded_rows)
        training = training_settings(model, dataset, args.epochs)
        records = []
        for seed in range(args.seeds):
            path = record_path(out, dataset, model, seed)
            if path.exists():
                record = json.loads(path.read_text())
                if record.get("training") == training:
                    records.append(record)
                    continue
                print(f"{model} seed {seed}: recorded with {record.get('training')}, the defaults "
                      f"are now {training}: replacing it", file=sys.stderr, flush=True)
            record = train_one(model, dataset, seed, args.epochs, scratch)
            if seed == 0:
                record["inference_examples_per_second"] = inference_rate(ROOT / record["model_file"])
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(record, path)
            records.append(record)
            print(f"{model} seed {seed}: test accuracy {record['test_accuracy']:.4f} "
                  f"({record['epochs_run']} epochs, {record['wall_time_s']:.0f} s)",
                  file=sys.stderr, flush=True)
        if args.ship_weights:
            from zoo.models.shipping import ship_weights

            best = max(records, key=lambda record: (record["best_val_accuracy"] or 0.0,
                                                    -record["seed"]))
            ship_weights(model, dataset, ROOT / best["model_file"], seed=best["seed"],
                         budget_mb=args.weights_budget_mb, card=weights_card(best, records))
        for table in write_tables(out, recorded_rows(out, machine_name)):
            print(f"wrote {table}", file=sys.stderr, flush=True)
    return 0


def readme_table(out: Path = RESULTS) -> str:
    """The README's results tables, generated from the results CSVs: test
    accuracy by model and dataset, then one row per model and dataset."""
    rows = []
    for path in sorted(out.glob("results-*.csv")):
        with path.open(newline="") as handle:
            rows += list(csv.DictReader(handle))
    from zoo.datasets import list_datasets

    datasets = [name for name in list_datasets() if any(row["dataset"] == name for row in rows)]

    def accuracy(row):
        std = f" ± {float(row['test_accuracy_std']) * 100:.2f}" if row["test_accuracy_std"] else ""
        return f"{float(row['test_accuracy_mean']) * 100:.2f}{std} %"

    by_model: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_model.setdefault(row["model"], {})[row["dataset"]] = row
    lines = [f"| model | parameters | MACs | {' | '.join(datasets)} |",
             f"|---|---:|---:|{'---:|' * len(datasets)}"]
    for model, cells in sorted(by_model.items()):
        first = next(iter(cells.values()))
        lines.append(f"| `{model}` | {int(first['parameters']):,} | {int(first['macs']) / 1e6:.2f} M | "
                     + " | ".join(accuracy(cells[name]) if name in cells else "—" for name in datasets)
                     + " |")
    lines += ["", "| model | dataset | parameters | MACs | test accuracy | seeds | train ex/s | "
              "inference ex/s | precision |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    rows.sort(key=lambda row: (datasets.index(row["dataset"]), row["model"]))
    for row in rows:
        lines.append(
            f"| `{row['model']}` | {row['dataset']} | {int(row['parameters']):,} | "
            f"{int(row['macs']) / 1e6:.2f} M | {accuracy(row)} | "
            f"{row['seeds']} | {row['train_examples_per_second']} | "
            f"{row['inference_examples_per_second']} | {row['precision']} |")
    lines.append("")
    lines.append(f"Measured on: {'; '.join(sorted({row['machine'] for row in rows}))}.")
    return "\n".join(lines)


def recorded_rows(out: Path, machine_name: str) -> list[dict[str, Any]]:
    """A table row for every model and dataset with recorded runs, this call's or earlier ones'."""
    from zoo.models import list_models

    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in sorted((out / "runs").glob("*/*-seed*.json")):
        record = json.loads(path.read_text())
        grouped.setdefault((record["dataset"], record["model"]), []).append(record)
    for dataset in {dataset for dataset, _ in grouped}:
        trained = [model for data, model in grouped if data == dataset]
        for model in list_models():  # a family whose default is a preset: the preset's runs
            preset = preset_of(model, trained)
            if (dataset, model) not in grouped and preset is not None:
                grouped[dataset, model] = [{**record, "model": model}
                                           for record in grouped[dataset, preset]]
    return [summarise(model, sorted(records, key=lambda record: record["seed"]), machine_name)
            for (_, model), records in sorted(grouped.items())]


if __name__ == "__main__":
    sys.exit(main())
