"""Keras callbacks that watch a network while it trains; attach them to any
functional or Sequential model's ``fit``.

    probe = x_validation[:1000]
    watch = ActivationPercentiles("sigmoid_3", unit=0, every_n_steps=100, inputs=probe)
    model.fit(data, epochs=5, callbacks=[watch])
    watch.steps, watch.values          # steps and the (15, 50, 85)th percentiles at each

``ActivationPercentiles`` records what the Batch Normalization paper plots in
its Figure 1 (b, c): the {15, 50, 85}th percentiles of the input to one
sigmoid, over a fixed probe batch, as training goes on.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

from custom_layers.arguments import check_choice, check_int, invalid

WHERE = ("input", "output")


class _EveryNSteps(keras.callbacks.Callback):
    """Calls the subclass's ``_record`` (which appends the step to ``steps``)
    once before the first training step and after every n-th one, counting
    steps across ``fit`` calls."""

    def __init__(self, every_n_steps: int):
        super().__init__()
        self.every_n_steps = check_int(every_n_steps, "every_n_steps", minimum=1)
        self.steps: list[int] = []
        self._step = 0

    def on_train_begin(self, logs=None):
        if not self.steps:
            self._record()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self.every_n_steps == 0:
            self._record()


class ActivationPercentiles(_EveryNSteps):
    """Percentiles of one unit's activation over a probe batch, every n training steps.

    Args:
        layer_name: the layer to watch (``model.get_layer(layer_name)``).
        unit: which unit (last axis) of that layer's input or output; for
            convolutional feature maps all positions of the channel count.
        percentiles: in [0, 100]; default the paper's (15, 50, 85).
        every_n_steps: record after every n-th training step (and once
            before the first).
        inputs: the fixed probe batch fed to the model (an array or tensor).
        where: ``"input"`` (e.g. what a sigmoid receives) or ``"output"``.
        training: run the probe in training mode (batch normalization uses
            the probe's own statistics, as it does while training); the
            moving statistics this would update are put back afterwards.

    After training, ``steps`` is the list of global step numbers recorded
    (counted across ``fit`` calls) and ``values`` an array of shape
    ``(len(steps), len(percentiles))``.
    """

    def __init__(self, layer_name: str, unit: int = 0, percentiles: Sequence[float] = (15, 50, 85),
                 every_n_steps: int = 100, inputs=None, where: str = "input",
                 training: bool = False):
        super().__init__(every_n_steps)
        if not isinstance(layer_name, str) or not layer_name:
            raise invalid("layer_name", "a layer's name", layer_name)
        check_int(unit, "unit", minimum=0)
        try:
            percentiles = tuple(float(p) for p in percentiles)
        except (TypeError, ValueError):
            percentiles = ()
        if not percentiles or not all(0 <= p <= 100 for p in percentiles):
            raise invalid("percentiles", "numbers in [0, 100]", percentiles)
        if inputs is None:
            raise ValueError("`inputs` is required: the probe batch whose activations are measured.")
        if where not in WHERE:
            check_choice(where, WHERE, "where")
        self.layer_name = layer_name
        self.unit = int(unit)
        self.percentiles = percentiles
        self.inputs = inputs
        self.where = where
        self.training = bool(training)
        self._values: list[np.ndarray] = []
        self._probe = None

    @property
    def values(self) -> np.ndarray:
        """Recorded percentiles, one row per entry of ``steps``."""
        return np.array(self._values).reshape(len(self._values), len(self.percentiles))

    def on_train_begin(self, logs=None):
        self._probe = self._probe_model()
        super().on_train_begin(logs)

    def _probe_model(self) -> keras.Model:
        names = [layer.name for layer in self.model.layers]
        if self.layer_name not in names:
            raise ValueError(f"ActivationPercentiles: the model has no layer {self.layer_name!r}. "
                             f"Its layers: {', '.join(names)}.")
        layer = self.model.get_layer(self.layer_name)
        try:
            target = layer.input if self.where == "input" else layer.output
            inputs = self.model.inputs
            probe = keras.Model(inputs[0] if len(inputs) == 1 else inputs, target)
        except (AttributeError, ValueError, TypeError) as error:
            raise ValueError("ActivationPercentiles needs a functional or Sequential model whose "
                             f"layer {self.layer_name!r} is called once: {error}") from None
        units = probe.output.shape[-1]
        if self.unit >= units:
            raise invalid("unit", f"a unit of layer {self.layer_name!r}, which has {units} at its "
                          f"{self.where}", self.unit)
        return probe

    def _record(self) -> None:
        saved = [v.numpy() for v in self.model.non_trainable_variables] if self.training else []
        activations = np.asarray(self._probe(self.inputs, training=self.training))
        for variable, value in zip(self.model.non_trainable_variables, saved):
            variable.assign(value)
        self.steps.append(self._step)
        self._values.append(np.percentile(activations[..., self.unit].ravel(), self.percentiles))


class AccuracyEveryNSteps(_EveryNSteps):
    """Accuracy on a fixed set ``(inputs, labels)`` in inference mode, every n
    training steps (and once before the first): ``steps`` and ``accuracies``."""

    def __init__(self, inputs, labels, every_n_steps: int = 100, batch_size: int = 1000):
        super().__init__(every_n_steps)
        self.inputs = inputs
        self.labels = np.asarray(labels)
        self.batch_size = batch_size
        self.accuracies: list[float] = []

    def _record(self) -> None:
        from zoo.experiments.common import predict

        predictions = predict(self.model, self.inputs, self.batch_size).argmax(axis=1)
        self.steps.append(self._step)
        self.accuracies.append(float(np.mean(predictions == self.labels)))
