"""tensorflow-datasets builder for MNIST-1D, generated offline.

MNIST-1D (Greydanus, 2020; https://github.com/greydanus/mnist1d) is made by
the ``mnist1d`` package from ten hand-drawn 1-D templates with its default
arguments (5,000 samples, 80/20 train/test split, length 40, seed 42), which
reproduce the published pickle exactly. Nothing is downloaded: the builder
calls ``mnist1d.data.make_dataset`` and writes the result as a tfds dataset.
The signals are already standardised by the generator (mean 0, std 1 over the
whole set), so they are stored as float32 of shape (40, 1), ready for Conv1D.
"""

from __future__ import annotations

import random

import numpy as np
import tensorflow_datasets as tfds

SIGNAL_LENGTH = 40
NUM_CLASSES = 10

_CITATION = """\
@misc{greydanus2020scaling,
  title={Scaling down Deep Learning},
  author={Greydanus, Sam},
  year={2020},
  eprint={2011.14439},
  archivePrefix={arXiv},
}
"""


def generate_arrays():
    """MNIST-1D as numpy arrays: ``(x_train, y_train, x_test, y_test)``.

    Runs the generator with the package's default arguments. ``make_dataset``
    reseeds Python's and numpy's global random generators; their state is put
    back afterwards so building the dataset does not disturb the caller.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (data["x"], data["y"], data["x_test"], data["y_test"])
    x_train, y_train, x_test, y_test = arrays
    if (
        x_train.ndim != 2
        or x_train.shape[1] != SIGNAL_LENGTH
        or x_test.shape[1:] != x_train.shape[1:]
        or len(x_train) != len(y_train)
        or len(x_test) != len(y_test)
    ):
        raise RuntimeError(
            "mnist1d.data.make_dataset returned unexpected shapes: "
            f"x {x_train.shape}, y {y_train.shape}, x_test {x_test.shape}, "
            f"y_test {y_test.shape}; expected (N, {SIGNAL_LENGTH}) signals"
        )
    return arrays


class Mnist1d(tfds.core.GeneratorBasedBuilder):
    """MNIST-1D: 4,000 train / 1,000 test signals of length 40, 10 classes."""

    name = "mnist1d"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "mnist1d.data.make_dataset(get_dataset_args()), seed 42."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "signal": tfds.features.Tensor(
                        shape=(SIGNAL_LENGTH, 1), dtype=np.float32
                    ),
                    "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
                }
            ),
            supervised_keys=("signal", "label"),
            homepage="https://github.com/greydanus/mnist1d",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        x_train, y_train, x_test, y_test = generate_arrays()
        return {
            "train": self._generate_examples(x_train, y_train),
            "test": self._generate_examples(x_test, y_test),
        }

    def _generate_examples(self, xs, ys):
        for i, (x, y) in enumerate(zip(xs, ys)):
            yield i, {
                "signal": np.asarray(x, np.float32).reshape(SIGNAL_LENGTH, 1),
                "label": int(y),
            }
