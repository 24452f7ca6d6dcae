"""Shared fixture of the tuning tests: an offline MNIST-1D, built once per
module before any test (or subprocess) reads it."""

import pytest

from zoo import datasets


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A tfds data_dir with MNIST-1D prepared, before any subprocess needs it."""
    directory = str(tmp_path_factory.mktemp("tensorflow_datasets"))
    datasets.prepare("mnist1d", data_dir=directory)
    return directory
