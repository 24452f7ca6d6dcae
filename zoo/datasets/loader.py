"""Loading datasets as batched ``tf.data`` pipelines through tensorflow-datasets
on TensorFlow, as numpy batches (:mod:`zoo.datasets.arrays`) on other backends.

On TensorFlow every dataset — the tfds catalogue ones (mnist, fashion_mnist, cifar10) and
the embedded offline ones (mnist1d, mnist_5k, tfds builders in this package) —
goes the same way: ``builder.download_and_prepare()`` once into ``data_dir``,
then ``builder.as_dataset()`` on later loads. TensorFlow, tfds and the
generators are imported only when a dataset is actually requested.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Optional, Union

from zoo.datasets.registry import (
    DEFAULT_VALIDATION_SPLIT,
    DOWNLOAD_PROBE_TIMEOUT,
    DatasetUnavailableError,
    _check_split,
    _source,
    info,
    offline_datasets,
    validation_size,
)

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf
    import tensorflow_datasets as tfds

PathLike = Union[str, "os.PathLike[str]"]

#: Default augmentation strengths (fractions, as keras' layers take them):
#: shifts of up to 10 % of the height/width, rotations of up to 0.05·2π = ±18°.
AUGMENT_TRANSLATION = 0.1
AUGMENT_ROTATION = 0.05


def get_builder(name: str, data_dir: Optional[PathLike] = None) -> "tfds.core.DatasetBuilder":
    """The tfds builder of ``name`` under ``data_dir``; prepares nothing.

    ``data_dir=None`` means tfds' default (``$TFDS_DATA_DIR`` or
    ``~/tensorflow_datasets``). ``builder.is_prepared()`` tells whether the
    dataset is already on disk there.
    """
    source = _source(name)
    data_dir = _data_dir(data_dir)
    if source.builder is not None:
        module_name, class_name = source.builder.split(":")
        builder_cls = getattr(importlib.import_module(module_name), class_name)
        return builder_cls(data_dir=data_dir)
    import tensorflow_datasets as tfds

    return tfds.builder(source.tfds_name, data_dir=data_dir)


def prepare(name: str, data_dir: Optional[PathLike] = None) -> "tfds.core.DatasetBuilder":
    """Make sure ``name`` is on disk under ``data_dir``; return its prepared builder.

    Offline datasets are generated (a few seconds, once); tfds datasets are
    downloaded. A download that cannot reach its server raises
    :class:`DatasetUnavailableError` within seconds rather than retrying for
    minutes. Concurrent processes preparing the same dataset wait for each
    other instead of building it twice.
    """
    source = _source(name)
    if source.builder is not None:
        # Embedded builders never touch the network (not even tfds' GCS mirror);
        # tfds' "Downloading and preparing dataset Unknown size", its progress bars
        # and its absl warnings about a folder not built yet would only mislead.
        with _quiet_tfds():
            return _prepare(name, data_dir, offline=True)
    return _prepare(name, data_dir, offline=False)


def _prepare(name: str, data_dir: Optional[PathLike], offline: bool):
    builder = get_builder(name, data_dir)
    if builder.is_prepared():
        return builder
    source = _source(name)
    with _build_lock(builder):
        builder = get_builder(name, data_dir)  # another process may have built it
        if builder.is_prepared():
            return builder
        import tensorflow_datasets as tfds

        if offline:
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(try_download_gcs=False))
            return builder
        _check_reachable(name, source.download_urls)
        try:
            builder.download_and_prepare()
        except _network_errors() as err:
            raise DatasetUnavailableError(_unavailable_message(name, err)) from err
    return builder


def load(
    name: str,
    split: str = "train",
    *,
    batch_size: int = 128,
    shuffle: Optional[bool] = None,
    seed: Optional[int] = None,
    data_dir: Optional[PathLike] = None,
    augment: bool = False,
    drop_remainder: bool = False,
    validation_split: float = DEFAULT_VALIDATION_SPLIT,
    cache: bool = True,
) -> "tf.data.Dataset":
    """A batched, prefetched ``tf.data.Dataset`` of ``(x, y)`` pairs; on a
    backend other than TensorFlow a ``keras.utils.PyDataset`` of numpy
    batches with the same splits, order and semantics
    (:class:`zoo.datasets.arrays.ArrayBatches`).

    Args:
        name: one of :func:`zoo.datasets.list_datasets`.
        split: ``"train"``, ``"validation"`` or ``"test"``. The validation
            split is the last ``validation_split`` fraction of the original
            training split in tfds' fixed order; ``"train"`` is the rest, so
            the two never overlap and ``"test"`` is never touched for early
            stopping. With ``validation_split=0``, ``"train"`` is the whole
            original training split and ``"validation"`` is an error.
        batch_size: examples per batch (≥ 1).
        shuffle: reshuffle every epoch; default True for ``"train"`` only.
        seed: seed of the shuffle and the augmentation (None: random).
        data_dir: where tfds keeps the prepared data (None: tfds' default,
            ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
        augment: random translations and rotations (and horizontal flips for
            CIFAR-10) of the images, with keras' preprocessing layers; image
            datasets and the ``"train"`` split only.
        drop_remainder: drop a last, smaller batch (needed under tf.distribute
            strategies with batch normalization).
        validation_split: fraction of the training split held out, in [0, 1).
        cache: keep the decoded split in memory after the first epoch.

    Returns:
        ``x`` float32 of shape ``(batch,) + info(name).input_shape`` — images
        scaled to [0, 1], MNIST-1D signals as generated (mean 0, std 1) — and
        ``y`` int32 labels in ``[0, num_classes)``.

    Raises:
        ValueError: unknown name or split, bad batch size or validation split,
            augmentation asked for where it does not apply.
        DatasetUnavailableError: a tfds dataset that is not on disk could not
            be downloaded.
    """
    meta = info(name)
    split = _check_split(split)
    from custom_layers.arguments import check_int  # here: importing this module stays light

    check_int(batch_size, "batch_size", minimum=1)
    check_int(seed, "seed", allow_none=True)
    n_val = validation_size(meta.num_train, validation_split)
    if split == "validation" and n_val == 0:
        raise ValueError(
            "split 'validation' needs validation_split > 0 "
            f"(got validation_split={validation_split!r})"
        )
    if augment:
        if meta.modality != "image":
            raise ValueError(
                f"augment=True applies to image datasets; {name!r} is a {meta.modality} dataset"
            )
        if split != "train":
            raise ValueError(f"augment=True applies to the 'train' split only, not {split!r}")
    if shuffle is None:
        shuffle = split == "train"

    import keras

    if keras.backend.backend() != "tensorflow":
        from zoo.datasets.arrays import load_arrays

        return load_arrays(name, split, n_val, split_arrays(name, data_dir),
                           batch_size=batch_size, shuffle=shuffle, seed=seed,
                           layers=augmentation(name, seed=seed) if augment else None,
                           drop_remainder=drop_remainder)
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = prepare(name, data_dir)
    num_train = builder.info.splits["train"].num_examples
    n_val = validation_size(num_train, validation_split)
    tfds_split, size = {
        "train": (f"train[:{num_train - n_val}]", num_train - n_val),
        "validation": (f"train[{num_train - n_val}:]", n_val),
        "test": ("test", builder.info.splits["test"].num_examples),
    }[split]

    ds = builder.as_dataset(
        split=tfds_split,
        as_supervised=True,
        shuffle_files=False,
        read_config=tfds.ReadConfig(try_autocache=False),
    )
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(size, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    scale = 1.0 / 255.0 if meta.modality == "image" else 1.0

    def normalise(x, y):
        x = tf.cast(x, tf.float32)
        if scale != 1.0:
            x = x * scale
        return x, tf.cast(y, tf.int32)

    ds = ds.map(normalise, num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        layers = augmentation(name, seed=seed)

        def random_transform(x, y):
            x = layers(x, training=True)
            return tf.clip_by_value(x, 0.0, 1.0), y

        ds = ds.map(random_transform, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def split_arrays(name: str, data_dir: Optional[PathLike] = None) -> dict:
    """``{"train": (x, y), "test": (x, y)}`` of ``name`` as stored (uint8
    images or float32 signals, integer labels) in tfds' order."""
    from zoo.datasets import embedded
    from zoo.datasets.arrays import check_loadable

    if _source(name).builder is not None:
        return embedded.split_arrays(name)
    check_loadable(name)
    import numpy as np
    import tensorflow_datasets as tfds

    builder = prepare(name, data_dir)
    return {split: tuple(np.asarray(array) for array in tfds.as_numpy(builder.as_dataset(
        split=split, batch_size=-1, as_supervised=True, shuffle_files=False)))
        for split in ("train", "test")}


def num_batches(data) -> int:
    """Batches per epoch of what :func:`load` returned (a ``tf.data.Dataset``
    of known cardinality or a ``keras.utils.PyDataset``)."""
    if hasattr(data, "num_batches"):
        return int(data.num_batches)
    return int(data.cardinality())


def augmentation(
    name: str,
    *,
    translation: float = AUGMENT_TRANSLATION,
    rotation: float = AUGMENT_ROTATION,
    seed: Optional[int] = None,
) -> "keras.Sequential":
    """The keras preprocessing layers ``load(..., augment=True)`` applies.

    "Artificial data augmentation": random shifts of up to ``translation`` of
    the height/width and rotations of up to ``rotation``·360°, filling with
    black (0); CIFAR-10 also gets random horizontal flips (digits do not: a
    mirrored digit is not a digit). Usable inside a model as well.
    """
    meta = info(name)
    if meta.modality != "image":
        raise ValueError(f"augmentation applies to image datasets; {name!r} is not one")
    import keras

    def layer_seed(i):
        return None if seed is None else seed + i

    layers = [
        keras.layers.RandomTranslation(
            translation, translation, fill_mode="constant", fill_value=0.0,
            seed=layer_seed(1), dtype="float32",
        ),
        keras.layers.RandomRotation(
            rotation, fill_mode="constant", fill_value=0.0, seed=layer_seed(2), dtype="float32"
        ),
    ]
    if _source(name).hflip:
        layers.insert(
            0, keras.layers.RandomFlip("horizontal", seed=layer_seed(3), dtype="float32")
        )
    # float32 whatever the global mixed-precision policy: the loader yields float32.
    return keras.Sequential(layers, name=f"{name}_augmentation")


# --------------------------------------------------------------------------- helpers


def _data_dir(data_dir: Optional[PathLike]) -> Optional[str]:
    if data_dir is None:
        return None
    return os.path.expanduser(os.fspath(data_dir))


@contextlib.contextmanager
def _build_lock(builder):
    """An exclusive inter-process lock on ``<data_dir>/<name>/.zoo-build.lock``."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield
        return
    lock_dir = os.path.dirname(os.fspath(builder.data_dir))
    if "://" in lock_dir:  # remote data_dir (e.g. gs://): tfds' own renames only
        yield
        return
    os.makedirs(lock_dir, exist_ok=True)
    with open(os.path.join(lock_dir, ".zoo-build.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _quiet_tfds():
    """tfds without its progress bars, its stdout notices and absl's warnings."""
    import absl.logging
    import tensorflow_datasets as tfds

    verbosity = absl.logging.get_verbosity()
    absl.logging.set_verbosity(absl.logging.ERROR)
    tfds.disable_progress_bar()
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            yield
    finally:
        tfds.enable_progress_bar()
        absl.logging.set_verbosity(verbosity)


def _network_errors() -> tuple:
    import socket
    import urllib.error

    errors = [ConnectionError, socket.timeout, urllib.error.URLError]
    try:
        import requests

        errors.append(requests.exceptions.RequestException)
    except ImportError:  # pragma: no cover - tfds depends on requests
        pass
    return tuple(errors)


def _check_reachable(name: str, urls) -> None:
    """Raise :class:`DatasetUnavailableError` unless every download host answers.

    tensorflow-datasets retries a failed download ten times with exponential
    backoff — over three minutes on a machine without network. One request per
    host with a short timeout (run in a thread, since name resolution itself
    can block) tells us in seconds. Any HTTP answer, even an error status,
    counts as reachable; proxies from the environment are honoured.
    """
    hosts = {}
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        hosts.setdefault(parts.netloc, f"{parts.scheme}://{parts.netloc}/")
    for url in hosts.values():
        error = _probe(url, DOWNLOAD_PROBE_TIMEOUT)
        if error is not None:
            raise DatasetUnavailableError(_unavailable_message(name, error))


def _probe(url: str, timeout: float) -> Optional[BaseException]:
    """None if ``url`` answers within ``timeout`` seconds, else the error."""
    import requests

    outcome = {}

    def request():
        try:
            requests.head(url, timeout=timeout, allow_redirects=False)
        except BaseException as err:  # noqa: BLE001 - reported to the caller
            outcome["error"] = err
        else:
            outcome["error"] = None

    thread = threading.Thread(target=request, name="zoo-download-probe", daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(timeout + 1.0)
    if "error" not in outcome:
        return TimeoutError(f"no answer from {url} within {time.monotonic() - start:.0f} s")
    return outcome["error"]


def _unavailable_message(name: str, error: BaseException) -> str:
    offline = ", ".join(offline_datasets())
    detail = str(error)
    if len(detail) > 300:
        detail = detail[:300] + "..."
    return (
        f"could not download dataset {name!r}: the download server did not answer "
        f"({type(error).__name__}: {detail}). This machine may be offline. Datasets that "
        f"work offline: {offline}. Or prepare {name!r} on a machine with internet "
        f"access (e.g. `python -c \"import zoo.datasets as d; d.prepare('{name}')\"`) "
        "and copy its tfds data_dir here."
    )
