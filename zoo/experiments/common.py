"""What the experiments share: the run context, in-memory data, a short fit,
an evaluation without tracing, figures and the printed table.

Experiments train on in-memory arrays (a split read once through
``zoo.datasets.load`` and kept), fed back as ``tf.data`` pipelines (numpy
batches on other backends); models come from the zoo registry and are
compiled and trained through ``zoo.training``'s engine, so the loss is
E = E_D + λE_W exactly as ``zoo train`` minimises it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo import datasets
from zoo.files import save_figure as atomic_save_figure


@dataclasses.dataclass
class Context:
    """One experiment run: where its files go and which data it reads."""

    name: str
    dataset: str
    seed: int
    quick: bool
    run_dir: Path
    data_dir: str | None = None

    @property
    def info(self) -> datasets.DatasetInfo:
        return datasets.info(self.dataset)

    @property
    def plot_path(self) -> Path:
        return self.run_dir / f"{self.name}.png"

    def arrays(self, split: str, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of a split in memory; ``size`` examples drawn at random
        (seeded), or all of them in the stored order."""
        x, y = load_arrays(self.dataset, split, self.data_dir)
        if size is None or size >= len(y):
            return x, y
        keep = np.random.default_rng(self.seed).permutation(len(y))[:size]
        return x[keep], y[keep]


@functools.lru_cache(maxsize=8)
def load_arrays(dataset: str, split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A whole split as numpy arrays (read once per process; treat as read-only)."""
    batches = datasets.load(dataset, split, batch_size=1024, shuffle=False, data_dir=data_dir,
                            cache=False)
    xs, ys = zip(*[(np.asarray(x), np.asarray(y)) for x, y in batches])
    return np.concatenate(xs), np.concatenate(ys)


def pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False,
             seed: int | None = None, repeat: bool = False):
    """Batches of in-memory ``(x, y)``, reshuffled every pass when ``shuffle``:
    a ``tf.data`` pipeline on TensorFlow, ``ArrayBatches`` on other backends."""
    import keras

    if keras.backend.backend() != "tensorflow":
        from zoo.datasets.arrays import ArrayBatches

        return ArrayBatches(x, y, batch_size, shuffle=shuffle, seed=seed, repeat=repeat)
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        data = data.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        data = data.repeat()
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


#: The experiments build their models as they were measured: every kernel
#: Glorot uniform, no batch norm in a dense head (the zoo's defaults before
#: He initialisation and head batch norm), so that their published figures hold.
MEASURED_WITH = {"kernel_initializer": "glorot_uniform", "head_batch_norm": False}


def build(model: str, context: Context, seed_offset: int = 0, **overrides):
    """A registry model for the context's dataset, initialised from the run's
    seed, with the initialisation the experiments were measured with
    (:data:`MEASURED_WITH`, unless ``overrides`` say otherwise)."""
    import keras

    from zoo.models.registry import check_overrides, get_builder

    check_overrides(model, overrides)  # as create_model, which cannot take a model `name`
    accepted = inspect.signature(get_builder(model)).parameters
    overrides = {**{key: value for key, value in MEASURED_WITH.items() if key in accepted},
                 **overrides}
    keras.utils.set_random_seed(context.seed + seed_offset)
    info = context.info
    return get_builder(model)(input_shape=info.input_shape, num_classes=info.num_classes,
                              **overrides)


def fit(model, train: tuple[np.ndarray, np.ndarray], *, epochs: int, batch_size: int,
        learning_rate: float, optimizer: str = "adam", validation=None, callbacks=(),
        seed: int = 0, steps_per_epoch: int | None = None,
        early_stopping_patience: int | None = None,
        monitor: str = "val_loss") -> dict[str, list[float]]:
    """Compiles and trains through ``zoo.training``'s engine (E = E_D + λE_W,
    constant step size, the λE_W log; with ``early_stopping_patience``, the
    engine's early stopping on ``monitor``, the best epoch's weights restored;
    a diverging loss is recorded, not stopped: some experiments show it);
    returns the Keras history (one list per metric)."""
    from zoo.training import compile_model, fit as engine_fit, make_optimizer, training_callbacks

    compile_model(model, make_optimizer(optimizer, learning_rate))
    data = pipeline(*train, batch_size, shuffle=True, seed=seed, repeat=steps_per_epoch is not None)
    validation_data = pipeline(*validation, 1000) if validation is not None else None
    history = engine_fit(model, data, validation_data, epochs=epochs,
                         steps_per_epoch=steps_per_epoch,
                         callbacks=training_callbacks(
                             stop_on_non_finite_loss=False, callbacks=list(callbacks),
                             early_stopping_patience=early_stopping_patience, monitor=monitor))
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> dict[str, float]:
    """Accuracy and data loss E_D (mean cross-entropy) in inference mode —
    plain forward passes, so nothing is traced."""
    probabilities = predict(model, x, batch_size)
    picked = np.clip(probabilities[np.arange(len(y)), y], 1e-7, 1.0)
    return {"accuracy": float(np.mean(probabilities.argmax(axis=1) == y)),
            "loss": float(-np.mean(np.log(picked)))}


def predict(model, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities, in inference mode (dropout off, BN moving statistics)."""
    return np.concatenate([np.asarray(model(x[i:i + batch_size], training=False))
                           for i in range(0, len(x), batch_size)])


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path) -> str:
    """Writes ``figure`` as a PNG atomically (temporary file, then rename); returns its name."""
    figure.tight_layout()
    return atomic_save_figure(figure, path, dpi=110).name


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of equal keys as an aligned plain-text table."""
    if not rows:
        return ""
    columns = list(rows[0])

    def cell(value):
        if value is None:
            return "-"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    cells = [[cell(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in cells]
    return "\n".join(lines)
