"""tensorflow-datasets' own MNIST and Fashion-MNIST builders, fed verified raw files.

tfds' ``mnist`` and ``fashion_mnist`` builders download their four ``.gz``
files and check them against the ``.gz`` checksums tfds records. The
subclasses here replace only that download: their ``_split_generators``
hands tfds' own ``_generate_examples`` the decompressed bytes of raw files
already checked by :func:`zoo.datasets.sources.verified_bytes` (which also
accepts recompressed ``.gz``, as Debian ships Fashion-MNIST). Everything else
— features, version, the examples' keys and hence their stored order, the
folder ``DATA_DIR/mnist/3.0.1`` — is tfds', so ``tfds.builder("mnist")``
reads what they prepare.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from zoo.datasets.idx import parse_idx
from zoo.datasets.sources import RAW_SOURCES, RawFiles, verified_bytes


class _FromRawFiles:
    """Mixin: ``_split_generators`` reads ``self.raw_files`` (a
    :class:`~zoo.datasets.sources.RawFiles`, set before ``download_and_prepare``),
    verified and decompressed into the folder ``self.scratch``, instead of downloading."""

    raw_files: RawFiles
    scratch: Path

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: the files are here
        files, decompressed, counts = self.raw_files, {}, {}
        for raw in RAW_SOURCES[files.name].files:
            data = verified_bytes(files.name, raw, files.paths[raw.name])
            path = Path(self.scratch) / raw.names[1]
            path.write_bytes(data)
            decompressed[raw.split, raw.kind] = str(path)
            counts[raw.split, raw.kind] = len(parse_idx(data, str(files.paths[raw.name])))
        return [
            tfds.core.SplitGenerator(name=split, gen_kwargs=dict(
                num_examples=counts[split, "images"],
                data_path=decompressed[split, "images"],
                label_path=decompressed[split, "labels"]))
            for split in ("train", "test")]


class Mnist(_FromRawFiles, tfds.image_classification.MNIST, skip_registration=True):
    """tfds' ``mnist`` (3.0.1), prepared from verified raw files."""

    name = "mnist"


class FashionMnist(_FromRawFiles, tfds.image_classification.FashionMNIST, skip_registration=True):
    """tfds' ``fashion_mnist`` (3.0.1), prepared from verified raw files."""

    name = "fashion_mnist"


BUILDERS = {"mnist": Mnist, "fashion_mnist": FashionMnist}
