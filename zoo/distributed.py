"""Training across machines with ``tf.distribute.MultiWorkerMirroredStrategy``.

Keras 3's ``model.fit`` cannot run under MultiWorkerMirroredStrategy with the
TensorFlow backend (keras-team/keras#20585), so this module holds the plain
custom loop TensorFlow documents for it: the dataset is split across workers by
``strategy.experimental_distribute_dataset``, each replica computes
E = E_D + λE_W on its share (E_D averaged over the *global* batch with
``tf.nn.compute_average_loss``, the penalty scaled by
``tf.nn.scale_regularization_loss``), and the strategy all-reduces gradients so
every worker applies the same update and ends with the same weights.

Start one process per machine, each with the same cluster in ``TF_CONFIG`` and
its own task index:

    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                "task": {"type": "worker", "index": 0}}' zoo train deep_cnn --strategy multi-worker

Worker 0 (the chief) writes the run directory; worker i > 0 writes its copy to
``RUN_DIR/workers/i``. Interrupted runs resume from the last completed epoch
(a ``tf.train.CheckpointManager`` per worker).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import keras
import tensorflow as tf


def worker_index() -> int:
    """This worker's task index from TF_CONFIG (0 when there is none)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    return int(config.get("task", {}).get("index", 0))


def worker_run_dir(run_dir: Path) -> Path:
    """The chief writes ``run_dir``; worker i > 0 writes ``run_dir/workers/i``."""
    index = worker_index()
    return run_dir if index == 0 else run_dir / "workers" / str(index)


class HistoryWriter(keras.callbacks.Callback):
    """Appends each epoch's logs as a row of a CSV file (the columns of
    ``keras.callbacks.CSVLogger``), so an interrupted run keeps its history."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch, **{k: v for k, v in (logs or {}).items() if k != "epoch"}}
        new_file = not self.path.exists()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new_file:
                writer.writeheader()
            writer.writerow(row)


def _shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def fit_custom_loop(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset,
    epochs: int,
    global_batch_size: int,
    patience: int,
    checkpoint_dir: Path,
    callbacks: list[keras.callbacks.Callback] = (),
) -> list[dict[str, float]]:
    """Trains a compiled ``model`` (built in ``strategy.scope()``) with early
    stopping on the validation loss; returns one dict of logs per epoch run.

    ``callbacks`` get ``on_epoch_end(epoch, logs)`` with the same keys as
    ``fit`` writes (loss, data_loss, weight_penalty, accuracy, val_*).
    """
    optimizer = model.optimizer
    loss_function = keras.losses.SparseCategoricalCrossentropy(reduction="none")
    with strategy.scope():
        completed_epochs = tf.Variable(0, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=completed_epochs)
    manager = tf.train.CheckpointManager(checkpoint, str(checkpoint_dir), max_to_keep=1)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)

    def replica_sums(x, y, training):
        probabilities = model(x, training=training)
        per_example = loss_function(y, probabilities)
        correct = tf.cast(tf.equal(tf.cast(y, tf.int64), tf.argmax(probabilities, -1)), tf.float32)
        return per_example, correct

    @tf.function
    def train_step(batch):
        def step(x, y):
            with tf.GradientTape() as tape:
                per_example, correct = replica_sums(x, y, training=True)
                data_loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
                penalty = (tf.nn.scale_regularization_loss(tf.add_n(model.losses))
                           if model.losses else tf.constant(0.0))
                loss = data_loss + penalty
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return tf.reduce_sum(per_example), tf.reduce_sum(correct), \
                tf.cast(tf.size(correct), tf.float32), penalty
        sums = strategy.run(step, args=batch)
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in sums]

    @tf.function
    def evaluate_step(batch):
        def step(x, y):
            per_example, correct = replica_sums(x, y, training=False)
            return tf.reduce_sum(per_example), tf.reduce_sum(correct), \
                tf.cast(tf.size(correct), tf.float32)
        sums = strategy.run(step, args=batch)
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in sums]

    def run_epoch(step_function, dataset):
        totals = None
        for batch in strategy.experimental_distribute_dataset(_shard_by_data(dataset)):
            values = [float(v) for v in step_function(batch)]
            totals = values if totals is None else [a + b for a, b in zip(totals, values)]
        return totals

    history = []
    best_loss, best_weights, waited = float("inf"), None, 0
    for callback in callbacks:
        callback.set_model(model)
    for epoch in range(int(completed_epochs.numpy()), epochs):
        loss_sum, correct, count, penalty = run_epoch(train_step, train_data)
        val_loss_sum, val_correct, val_count = run_epoch(evaluate_step, validation_data)
        penalty = penalty / max(count / global_batch_size, 1.0)  # mean over steps, summed replicas
        logs = {
            "epoch": float(epoch),
            "data_loss": loss_sum / count,
            "weight_penalty": penalty,
            "loss": loss_sum / count + penalty,
            "accuracy": correct / count,
            "val_data_loss": val_loss_sum / val_count,
            "val_loss": val_loss_sum / val_count + penalty,
            "val_accuracy": val_correct / val_count,
        }
        history.append(logs)
        for callback in callbacks:
            callback.on_epoch_end(epoch, dict(logs))
        completed_epochs.assign(epoch + 1)
        manager.save()
        if logs["val_loss"] < best_loss:
            best_loss, best_weights, waited = logs["val_loss"], model.get_weights(), 0
        else:
            waited += 1
            if waited > patience:
                break
    if best_weights is not None:
        model.set_weights(best_weights)
    return history


def evaluate_custom_loop(model: keras.Model, strategy: tf.distribute.Strategy,
                         dataset: tf.data.Dataset) -> dict[str, float]:
    """Test loss E (with the penalty), E_D and accuracy of ``model`` over ``dataset``."""
    loss_function = keras.losses.SparseCategoricalCrossentropy(reduction="none")

    @tf.function
    def step(batch):
        def replica(x, y):
            probabilities = model(x, training=False)
            correct = tf.equal(tf.cast(y, tf.int64), tf.argmax(probabilities, -1))
            return tf.reduce_sum(loss_function(y, probabilities)), \
                tf.reduce_sum(tf.cast(correct, tf.float32)), tf.cast(tf.size(correct), tf.float32)
        sums = strategy.run(replica, args=batch)
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in sums]

    totals = [0.0, 0.0, 0.0]
    for batch in strategy.experimental_distribute_dataset(_shard_by_data(dataset)):
        totals = [a + float(b) for a, b in zip(totals, step(batch))]
    loss_sum, correct, count = totals
    penalty = float(sum(float(loss) for loss in model.losses)) if model.losses else 0.0
    return {"test_loss": loss_sum / count + penalty, "test_data_loss": loss_sum / count,
            "test_accuracy": correct / count}
