"""Workarounds for upstream behaviour that the zoo needs, in one place.

The only module of ``zoo`` that reaches into Keras' private state. Each
workaround names the upstream problem and checks the internals it relies on,
raising :class:`UpstreamChanged` when they have moved;
``tests/zoo/test_compat.py`` pins them to the installed Keras.
"""

from __future__ import annotations

import keras

from custom_layers._compat import UpstreamChanged  # noqa: F401  (one class for every package)


# ----------------------------------------------------------------------------
# A callback cannot move the epoch a running fit() starts from.
#
# Keras 3 has no public way for a callback's on_train_begin to make fit()
# continue a run at a later epoch; its own BackupAndRestore assigns
# ``model._initial_epoch``, which the TensorFlow trainer's fit() reads right
# after on_train_begin (keras/src/callbacks/backup_and_restore.py,
# keras/src/backend/tensorflow/trainer.py). The run state of ``zoo.training``
# resumes the same way, and the custom multi-worker loop reads it back.


def _check_trainer(model: keras.Model) -> None:
    if not hasattr(model, "_initial_epoch"):
        raise UpstreamChanged("keras.Model has no `_initial_epoch` any more: a resumed fit() "
                              "cannot start at its next epoch (see keras BackupAndRestore).")


def start_fit_at_epoch(model: keras.Model, epoch: int) -> None:
    """Makes the ``fit`` now starting (called from ``on_train_begin``) run
    from ``epoch`` (0-based), as ``keras.callbacks.BackupAndRestore`` does."""
    _check_trainer(model)
    model._initial_epoch = int(epoch)


def fit_start_epoch(model: keras.Model, initial_epoch: int = 0) -> int:
    """The epoch a fit starts from after ``on_train_begin``: the one a
    callback set with :func:`start_fit_at_epoch`, else ``initial_epoch``."""
    _check_trainer(model)
    return model._initial_epoch or initial_epoch


# ----------------------------------------------------------------------------
# tensorflow-datasets leaves an empty temporary folder per builder it makes.
#
# DatasetInfo.initialize_from_bucket (tensorflow_datasets/core/dataset_info.py)
# makes a ``tmp…tfds`` folder with tempfile.mkdtemp before it asks whether the
# GCS bucket (disabled by default) holds the dataset's info files, and returns
# without removing it when it does not: every builder of an unprepared dataset
# (``zoo info``, ``zoo datasets``, a first ``prepare``) left one behind.


def no_empty_tfds_folders() -> None:
    """Makes tfds ask the bucket first and make its folder only when there is
    something to copy into it (once per process)."""
    from tensorflow_datasets.core import dataset_info
    from tensorflow_datasets.core.utils import gcs_utils

    info_class = dataset_info.DatasetInfo
    original = getattr(info_class, "initialize_from_bucket", None)
    if original is None or not hasattr(gcs_utils, "gcs_dataset_info_files"):
        raise UpstreamChanged("tensorflow_datasets' DatasetInfo.initialize_from_bucket or "
                              "gcs_utils.gcs_dataset_info_files moved: the workaround for its "
                              "empty temporary folders needs a look.")
    if getattr(original, "asks_the_bucket_first", False):
        return

    def initialize_from_bucket(self) -> None:
        if not gcs_utils.gcs_dataset_info_files(self.full_name):
            return  # nothing in the bucket: what tfds does, without the folder
        original(self)

    initialize_from_bucket.asks_the_bucket_first = True
    info_class.initialize_from_bucket = initialize_from_bucket
