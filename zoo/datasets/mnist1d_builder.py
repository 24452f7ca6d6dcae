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

import numpy as np
import tensorflow_datasets as tfds

from zoo.datasets.embedded import MNIST1D_SIGNAL_LENGTH as SIGNAL_LENGTH
from zoo.datasets.embedded import NUM_CLASSES
from zoo.datasets.embedded import InMemorySplits, mnist1d_arrays

_CITATION = """\
@misc{greydanus2020scaling,
  title={Scaling down Deep Learning},
  author={Greydanus, Sam},
  year={2020},
  eprint={2011.14439},
  archivePrefix={arXiv},
}
"""


class Mnist1d(InMemorySplits, tfds.core.GeneratorBasedBuilder):
    """MNIST-1D: 4,000 train / 1,000 test signals of length 40, 10 classes."""

    name = "mnist1d"
    arrays = staticmethod(mnist1d_arrays)
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

    @staticmethod
    def example(signal, label) -> dict:
        return {"signal": np.asarray(signal, np.float32).reshape(SIGNAL_LENGTH, 1), "label": int(label)}
