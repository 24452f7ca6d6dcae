"""Datasets as numpy arrays fed to ``fit`` the Keras 3 way, on any backend.

On a backend other than TensorFlow, :func:`zoo.datasets.load` returns an
:class:`ArrayBatches` (a ``keras.utils.PyDataset``) instead of a ``tf.data``
pipeline, with the same semantics: the same splits in the same order (the
embedded datasets straight from their packages, :mod:`zoo.datasets.embedded`;
tfds downloads through tfds, which needs TensorFlow), images scaled to
[0, 1], int32 labels, a new seeded shuffle every epoch, Keras' augmentation
layers applied per batch.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import keras
import numpy as np

from zoo.datasets.registry import DatasetUnavailableError, _source, info, offline_datasets
from zoo.datasets.sources import RAW_SOURCES, raw_source


class DatasetNeedsTensorFlowError(DatasetUnavailableError):
    """A dataset read through tensorflow-datasets on a machine without TensorFlow."""


def check_loadable(name: str) -> None:
    """Raises :class:`DatasetNeedsTensorFlowError` (naming the datasets that
    need none) if ``name`` is read through tensorflow-datasets and TensorFlow
    cannot be imported here."""
    if _source(name).builder is not None or raw_source(name) is not None:
        return
    try:
        import tensorflow_datasets  # noqa: F401
    except ImportError:
        raise DatasetNeedsTensorFlowError(
            f"dataset {name!r} is read through tensorflow-datasets, which needs TensorFlow, and "
            "TensorFlow is not installed here. Datasets that need no TensorFlow: "
            f"{', '.join(offline_datasets() + sorted(RAW_SOURCES))}.") from None


class ArrayBatches(keras.utils.PyDataset):
    """Batches of ``(x, y)`` from arrays for ``model.fit``/``evaluate``:
    reshuffled at the start of every epoch from a seeded generator when
    ``shuffle``, ``x`` converted by ``transform`` per batch (scaling,
    augmentation). Served in this process, in order: seeded runs repeat.
    ``repeat`` makes it endless (``fit`` then needs ``steps_per_epoch``), a
    new shuffle at each pass over the arrays."""

    def __init__(self, x, y, batch_size: int, *, shuffle: bool = False,
                 seed: Optional[int] = None, drop_remainder: bool = False,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None,
                 repeat: bool = False):
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_remainder = drop_remainder
        self.transform = transform
        self.repeat = repeat
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(len(x)) if shuffle else np.arange(len(x))

    @property
    def batches_per_pass(self) -> int:
        whole = len(self.x) / self.batch_size
        return math.floor(whole) if self.drop_remainder else math.ceil(whole)

    @property
    def num_batches(self) -> Optional[int]:
        return None if self.repeat else self.batches_per_pass

    def __len__(self) -> int:
        if self.repeat:
            raise TypeError("an endless (repeat=True) ArrayBatches has no length")
        return self.batches_per_pass

    def __getitem__(self, index: int):
        if self.repeat:
            if index and index % self.batches_per_pass == 0:
                self._reshuffle()
            index %= self.batches_per_pass
        elif not 0 <= index < self.batches_per_pass:
            raise IndexError(f"batch {index} of {self.batches_per_pass}")
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        x = self.x[rows]
        return (x if self.transform is None else self.transform(x)), self.y[rows]

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]

    def _reshuffle(self):
        if self.shuffle:
            self._order = self._rng.permutation(len(self.x))

    def on_epoch_end(self):
        if not self.repeat:
            self._reshuffle()


def load_arrays(name: str, split: str, n_val: int,
                splits: dict[str, tuple[np.ndarray, np.ndarray]], *, batch_size: int,
                shuffle: bool, seed: Optional[int], layers=None, drop_remainder: bool = False):
    """The split of ``name`` as :class:`ArrayBatches`, cut from ``splits``
    (``zoo.datasets.loader.split_arrays``): "validation" is the last ``n_val``
    training examples, "train" the rest; ``layers`` (Keras' augmentation
    layers) transform each training batch. Other arguments as
    :func:`zoo.datasets.load`'s, already checked."""
    meta = info(name)
    x, y = splits["test" if split == "test" else "train"]
    if split != "test":
        cut = len(x) - n_val
        x, y = (x[:cut], y[:cut]) if split == "train" else (x[cut:], y[cut:])
    y = y.astype(np.int32)
    scale = np.float32(1.0 / 255.0) if meta.modality == "image" else None

    def transform(batch: np.ndarray) -> np.ndarray:
        batch = batch.astype(np.float32)
        if scale is not None:
            batch = batch * scale
        if layers is not None:
            batch = keras.ops.convert_to_numpy(
                keras.ops.clip(layers(batch, training=True), 0.0, 1.0))
        return batch

    return ArrayBatches(x, y, batch_size, shuffle=shuffle, seed=seed,
                        drop_remainder=drop_remainder, transform=transform)
