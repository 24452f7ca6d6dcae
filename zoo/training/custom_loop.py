"""Training across machines with ``tf.distribute.MultiWorkerMirroredStrategy``.

Keras 3's ``model.fit`` cannot run under MultiWorkerMirroredStrategy with the
TensorFlow backend (keras-team/keras#20585), so this module holds the plain
custom loop TensorFlow documents for it: the dataset is split across workers by
``strategy.experimental_distribute_dataset``, each replica computes
E = E_D + λE_W on its share (E_D averaged over the *global* batch with
``tf.nn.compute_average_loss``, the penalty scaled by
``tf.nn.scale_regularization_loss``), and the strategy all-reduces gradients so
every worker applies the same update and ends with the same weights.

The loop calls Keras callbacks where ``fit`` calls them (train begin, epoch
begin, batch end, epoch end, train end), so early stopping (Keras' rule:
stop once ``wait >= patience``, restore the best weights), the run state and
its resumption are the very ones of ``fit`` (``zoo.training.engine``).

Start one process per machine, each with the same cluster in ``TF_CONFIG`` and
its own task index:

    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                "task": {"type": "worker", "index": 0}}' zoo train deep_cnn --strategy multi-worker

Worker 0 (the chief) writes the run directory; worker i > 0 writes its copy to
``RUN_DIR/workers/i``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from zoo._compat import fit_start_epoch
from zoo.training.loss import data_loss


def worker_index() -> int:
    """This worker's task index from TF_CONFIG (0 when there is none)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    return int(config.get("task", {}).get("index", 0))


def worker_run_dir(run_dir: Path) -> Path:
    """The chief writes ``run_dir``; worker i > 0 writes ``run_dir/workers/i``."""
    index = worker_index()
    return run_dir if index == 0 else run_dir / "workers" / str(index)


def _shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


class _Sums:
    """Per-replica sums of E_D, correct predictions and examples, reduced over replicas."""

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy):
        self.model, self.strategy = model, strategy
        self.loss = data_loss(model, reduction="none")

    def replica(self, x, y, training: bool):
        probabilities = self.model(x, training=training)
        per_example = self.loss(y, probabilities)
        correct = tf.cast(tf.equal(tf.cast(y, tf.int64), tf.argmax(probabilities, -1)), tf.float32)
        return per_example, correct

    def reduce(self, values):
        return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in values]

    def evaluation_step(self):
        """A ``tf.function`` of a distributed batch: the reduced sums of E_D,
        correct predictions and examples, in inference mode."""
        @tf.function
        def evaluate(batch):
            def step(x, y):
                per_example, correct = self.replica(x, y, training=False)
                return tf.reduce_sum(per_example), tf.reduce_sum(correct), \
                    tf.cast(tf.size(correct), tf.float32)
            return self.reduce(self.strategy.run(step, args=batch))
        return evaluate

    def over(self, step_function, dataset: tf.data.Dataset, on_step=None) -> list[float]:
        """Sums of ``step_function``'s outputs over a distributed pass of ``dataset``."""
        totals = None
        for step, batch in enumerate(self.strategy.experimental_distribute_dataset(_shard_by_data(dataset))):
            values = [float(v) for v in step_function(batch)]
            totals = values if totals is None else [a + b for a, b in zip(totals, values)]
            if on_step is not None:
                on_step(step, totals)
        if totals is None:
            raise ValueError("The dataset yielded no batch for this worker.")
        return totals


def fit_custom_loop(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset | None,
    *,
    epochs: int,
    global_batch_size: int | None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = 0,
) -> keras.callbacks.History:
    """Trains a compiled ``model`` (built in ``strategy.scope()``) for the
    epochs from where ``callbacks`` resume it to ``epochs``; returns the
    History. The epoch logs have the keys ``fit`` writes (loss, data_loss,
    accuracy, val_*; ``weight_penalty`` comes from the engine's logger)."""
    if global_batch_size is None:
        raise ValueError("The multi-worker loop needs the global batch size.")
    optimizer = model.optimizer
    sums = _Sums(model, strategy)

    @tf.function
    def train_step(batch):
        def step(x, y):
            with tf.GradientTape() as tape:
                per_example, correct = sums.replica(x, y, training=True)
                data_loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
                penalty = (tf.nn.scale_regularization_loss(tf.add_n(model.losses))
                           if model.losses else tf.constant(0.0))
                loss = data_loss + penalty
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return tf.reduce_sum(per_example), tf.reduce_sum(correct), \
                tf.cast(tf.size(correct), tf.float32), penalty
        return sums.reduce(strategy.run(step, args=batch))

    evaluate_step = sums.evaluation_step()
    steps = int(train_data.cardinality())
    verbose = 2 if verbose == "auto" else verbose  # one line per epoch, as fit on a strategy
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*callbacks, history], add_progbar=verbose != 0, model=model, verbose=verbose,
        epochs=epochs, steps=steps if steps > 0 else None)
    model.stop_training = False
    with strategy.scope():  # a resumed run state builds the optimizer's variables here
        callback_list.on_train_begin()

    def on_train_batch_end(step, totals):
        loss_sum, _, count, _ = totals
        callback_list.on_train_batch_end(step, {"loss": loss_sum / count})

    for epoch in range(fit_start_epoch(model), epochs):
        callback_list.on_epoch_begin(epoch)
        loss_sum, correct, count, penalty_sum = sums.over(train_step, train_data, on_train_batch_end)
        penalty = penalty_sum / max(count / global_batch_size, 1.0)  # mean over steps
        logs = {"data_loss": loss_sum / count, "loss": loss_sum / count + penalty,
                "accuracy": correct / count}
        if validation_data is not None:
            val_loss_sum, val_correct, val_count = sums.over(evaluate_step, validation_data)
            logs.update(val_data_loss=val_loss_sum / val_count,
                        val_loss=val_loss_sum / val_count + penalty,
                        val_accuracy=val_correct / val_count)
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return history


def evaluate_custom_loop(model: keras.Model, strategy: tf.distribute.Strategy,
                         dataset: tf.data.Dataset) -> dict[str, float]:
    """Test loss E (with the penalty), E_D and accuracy of ``model`` over ``dataset``."""
    sums = _Sums(model, strategy)
    loss_sum, correct, count = sums.over(sums.evaluation_step(), dataset)
    penalty = float(sum(float(loss) for loss in model.losses)) if model.losses else 0.0
    return {"test_loss": loss_sum / count + penalty, "test_data_loss": loss_sum / count,
            "test_accuracy": correct / count}
