"""Watching the gradients while a model trains.

:class:`GradientStatistics` is a Keras callback. Every ``every`` training
steps it records, per layer of ``custom_layers``:

- ``output_gradient_norm`` ‖dE/dy‖ — the gradient arriving at the layer's
  output, as the backward pass hands it to the layer (a tap in the backward
  pass itself, not a second autodiff pass);
- ``weight_gradient_norm`` ‖dE/dW‖ over the layer's trainable weights — the
  gradient the optimizer receives (E = E_D + λE_W);
- ``update_ratio`` ‖ΔW‖/‖W‖ of that step's update (a healthy step moves the
  weights by about 1e-3 of their size);
- ``dead_fraction`` for ReLU layers: the fraction of units (channels) whose
  output is 0 for every example and position of the batch;
- with ``per_example=True``, for Dense and Conv layers, the norm of each
  example's share of dE/dW (BackPACK's ``BatchL2Grad``), from the layer's own
  input x and output gradient g: a Dense kernel's dE/dW = Σ_n x_n g_nᵀ, so
  ‖dE/dW_n‖ = ‖x_n‖·‖g_n‖; a convolution's is Σ_p patch_n,p g_n,pᵀ over its
  output positions p. Their mean and maximum go to the table, all of them to
  ``per_example_norms``.

The rows go to ``DIRECTORY/gradients.csv`` (written as they are recorded and
kept across an interrupted and resumed run), scalars and histograms to
TensorBoard (``DIRECTORY/logs/gradients``), and a picture of the curves to
``DIRECTORY/gradients.png`` (drawn when training ends, from all the rows).
The steps in between run fit's own compiled step, untouched: they cost
nothing.

The softmax under a cross-entropy of this package (or Keras') passes the
fused dE/dz = p − t to its input, so the backward pass never reaches its
output and its ``output_gradient_norm`` stays empty. A Dense or Conv layer
with an ``activation=`` inside reports dE/dy after the activation and has no
per-example norms: give it an ``Activation`` layer of its own.
"""

from __future__ import annotations

import csv
import importlib
import math
import os
import warnings
from pathlib import Path

import keras
import numpy as np

from custom_layers import _compat
from custom_layers.arguments import check_int
from custom_layers.backends import require
from custom_layers.layers import Conv1D, Conv2D, Dense
from custom_layers.ops import activations

COLUMNS = ("step", "epoch", "layer", "class", "output_gradient_norm", "weight_gradient_norm",
           "update_ratio", "dead_fraction", "per_example_norm_mean", "per_example_norm_max")


class _TensorFlow:
    """TensorFlow, imported at first use: the statistics are recorded in a
    TensorFlow training step, and ``split_layers`` serves every backend."""

    def __getattr__(self, name):
        return getattr(importlib.import_module("tensorflow"), name)


tf = _TensorFlow()


class UnobservedLayersWarning(UserWarning):
    """GradientStatistics cannot observe some layers of the model (not ``custom_layers``')."""


def split_layers(model: keras.Model) -> tuple[list[keras.layers.Layer], list[str]]:
    """The layers of ``model`` (nested models searched) that are custom_layers',
    and the names of the others (input layers aside)."""
    observed, unobserved = [], []
    stack = list(reversed(model.layers))
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.Model):
            stack.extend(reversed(layer.layers))
        elif type(layer).__module__.startswith("custom_layers."):
            observed.append(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            unobserved.append(f"{layer.name} ({type(layer).__name__})")
    return observed, unobserved


def _is_relu(layer) -> bool:
    return getattr(layer, "activation", None) is activations.relu


def _per_example_reason(layer) -> str | None:
    """Why ``layer``'s per-example kernel gradients are not computed (None: they are)."""
    if not isinstance(layer, (Dense, Conv1D, Conv2D)):
        return "not a Dense or Conv layer"
    if layer.activation not in (None, activations.linear):
        return "an activation inside the layer"
    if getattr(layer, "lora_enabled", False):
        return "LoRA"
    if isinstance(layer, (Conv1D, Conv2D)) and (
            layer.groups != 1 or layer.data_format != "channels_last"):
        return "groups or channels_first"
    return None


def per_example_kernel_norms(layer, inputs: tf.Tensor, output_gradient: tf.Tensor) -> tf.Tensor:
    """‖dE/dW_n‖ of each example's share of a Dense or Conv kernel's gradient,
    from the layer input x and the gradient g at its (pre-activation) output.

    Dense on (N, I) inputs: dE/dW = Σ_n x_n g_nᵀ, so ‖x_n g_nᵀ‖ = ‖x_n‖‖g_n‖.
    Dense on longer inputs and convolutions: dE/dW_n = Σ_p u_n,p g_n,pᵀ over
    positions p (u: the input value, or the input patch a conv window sees),
    computed per example and normed.
    """
    x = tf.cast(inputs, tf.float32)
    g = tf.cast(output_gradient, tf.float32)
    batch = tf.shape(g)[0]
    if isinstance(layer, Dense):
        if x.shape.rank == 2:
            return tf.norm(x, axis=1) * tf.norm(g, axis=1)
        x = tf.reshape(x, [batch, -1, tf.shape(x)[-1]])
        g = tf.reshape(g, [batch, -1, tf.shape(g)[-1]])
        return tf.norm(tf.einsum("npi,npj->nij", x, g), axis=[1, 2])
    kernel_size, strides = layer.kernel_size, layer.strides
    dilation, padding = layer.dilation_rate, layer.padding
    if isinstance(layer, Conv1D):  # a height-1 image
        x, g = x[:, None], g[:, None]
        kernel_size, strides, dilation = (1, *kernel_size), (1, *strides), (1, *dilation)
    if padding == "causal":
        x = tf.pad(x, [[0, 0], [0, 0], [(kernel_size[1] - 1) * dilation[1], 0], [0, 0]])
        padding = "valid"
    patches = tf.image.extract_patches(
        x, sizes=[1, *kernel_size, 1], strides=[1, *strides, 1], rates=[1, *dilation, 1],
        padding=padding.upper())
    return tf.norm(tf.einsum("npqk,npqf->nkf", patches, g), axis=[1, 2])


class _Probe:
    """One layer's recording variables and the taps that fill them, hooked
    into the layer's ``call`` while attached."""

    def __init__(self, layer, per_example: bool):
        self.layer = layer
        self.output_gradient_norm = tf.Variable(math.nan, trainable=False)
        self.dead_fraction = tf.Variable(math.nan, trainable=False) if _is_relu(layer) else None
        self.per_example_reason = _per_example_reason(layer) if per_example else "not asked"
        self.per_example = (tf.Variable(tf.zeros([0]), shape=tf.TensorShape([None]),
                                        trainable=False)
                            if self.per_example_reason is None else None)
        self.original_call = layer.call
        self._had_own_call = "call" in vars(layer)

    def attach(self):
        self.layer.call = self.call

    def detach(self):
        if self._had_own_call:
            self.layer.call = self.original_call
        else:
            vars(self.layer).pop("call", None)

    def reset(self):
        self.output_gradient_norm.assign(math.nan)
        if self.dead_fraction is not None:
            self.dead_fraction.assign(math.nan)

    def call(self, *args, **kwargs):
        outputs = self.original_call(*args, **kwargs)
        if not isinstance(outputs, tf.Tensor) or not outputs.dtype.is_floating:
            return outputs
        inputs = args[0] if args else kwargs.get("inputs")
        return self.tap(inputs, outputs)

    def tap(self, inputs, outputs):
        """``outputs`` unchanged, with the recording hooked into the forward
        (dead units) and into the backward pass (the upstream gradient)."""
        if self.dead_fraction is not None:
            self._record_dead_units(outputs)

        @tf.custom_gradient
        def identity(y):
            def grad(upstream):
                self._record_backward(inputs, upstream)
                return tf.identity(upstream)

            return tf.identity(y), grad

        tapped = identity(outputs)
        logits = _compat.attached_logits(outputs)
        if logits is not None:  # keep the softmax's logits for the fused cross-entropy
            _compat.attach_logits(tapped, logits)
        return tapped

    def _record_dead_units(self, outputs):
        silent = tf.reduce_all(outputs <= 0, axis=list(range(outputs.shape.rank - 1)))
        self.dead_fraction.assign(tf.reduce_mean(tf.cast(silent, tf.float32)))

    def _record_backward(self, inputs, upstream):
        self.output_gradient_norm.assign(tf.norm(tf.cast(upstream, tf.float32)))
        if self.per_example is not None:
            self.per_example.assign(per_example_kernel_norms(self.layer, inputs, upstream))


class GradientStatistics(keras.callbacks.Callback):
    """Records per-layer gradient statistics every ``every`` training steps
    (module docstring) into ``directory``: gradients.csv, logs/gradients
    (TensorBoard) and gradients.png.

    Args:
        directory: where the files go (a run directory); None keeps the
            records in memory only (``rows``, ``per_example_norms``).
        every: record every N-th step (N ≥ 1), counted by the optimizer's
            steps, so a resumed run records the same steps.
        first_steps: record only among the first N steps (N ≥ 1); the
            later ones all run fit's own step. None (default): every step.
        per_example: also compute per-example kernel-gradient norms for
            Dense and Conv layers.

    The model's layers of ``custom_layers`` are observed; other layers are
    named in an ``UnobservedLayersWarning``, and a model with none raises a
    ValueError. The recorded steps run a second compiled training step, traced
    with the taps hooked into the layers' calls and the optimizer; the other
    steps run fit's own, untouched (XLA-compiled if the model is; the
    recording step runs in graph mode). Works with ``model.fit``.
    """

    #: Every how many steps a step is recorded, unless told otherwise.
    DEFAULT_EVERY = 100

    def __init__(self, directory: str | Path | None = None, every: int = DEFAULT_EVERY,
                 per_example: bool = False, first_steps: int | None = None):
        super().__init__()
        require("GradientStatistics (it swaps a second, tapped TensorFlow training step into "
                "fit for the recorded steps)", "tensorflow")
        self.every = check_int(every, "every", minimum=1)
        self.first_steps = None if first_steps is None else check_int(first_steps, "first_steps",
                                                                      minimum=1)
        self.directory = None if directory is None else Path(directory)
        self.per_example = bool(per_example)
        self.rows: list[dict] = []
        self.per_example_norms: dict[str, np.ndarray] = {}
        self._probes: list[_Probe] = []
        self._weight_gradients: dict[str, tf.Variable] = {}
        self._plain_step = self._recording_step = None
        self._optimizer_had_own = False
        self._step = 0
        self._epoch = 0
        self._recording = False
        self._weights_before: dict[str, list[np.ndarray]] = {}
        self._writer = None
        self._restore_optimizer = None

    # -- hooking in and out

    def on_train_begin(self, logs=None):
        observed, unobserved = split_layers(self.model)
        if not observed:
            raise ValueError(
                "GradientStatistics observes layers of custom_layers, and this model has none: "
                f"{', '.join(unobserved) or 'no layers'}. Build it from custom_layers or "
                "convert it with custom_layers.convert(model).")
        if unobserved:
            warnings.warn(f"GradientStatistics cannot observe {len(unobserved)} layer(s) that are "
                          f"not custom_layers': {', '.join(unobserved)}.",
                          UnobservedLayersWarning, stacklevel=2)
        with self.model.distribute_strategy.scope():
            self._probes = [_Probe(layer, self.per_example) for layer in observed]
            self._weight_gradients = {
                weight.path: tf.Variable(tf.zeros(weight.shape, tf.float32), trainable=False)
                for layer in observed for weight in layer.trainable_weights}
        # Two compiled steps: fit's own, and one traced with the taps hooked in
        # (on its first call, a recorded step), swapped in for the recorded steps.
        # The recording step runs without XLA: the per-example norms' length
        # (the batch size) is not known when the step is compiled.
        self._plain_step = self.model.train_function
        self._recording_step = _compat.traced_train_function(self.model)
        self._step = int(self.model.optimizer.iterations.numpy())
        self._resume_table()

    def on_train_end(self, logs=None):
        self._unhook()
        if self._plain_step is not None:
            _compat.use_train_function(self.model, self._plain_step)
        self._plain_step = self._recording_step = None
        self._plot()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _hook(self):
        for probe in self._probes:
            probe.attach()
        optimizer = self.model.optimizer
        gradients_of = self._weight_gradients
        scale = getattr(optimizer, "dynamic_scale", None)  # a LossScaleOptimizer's

        def observe(pairs):
            for gradient, weight in pairs:
                target = gradients_of.get(getattr(weight, "path", None))
                if target is not None and gradient is not None:
                    value = tf.cast(tf.convert_to_tensor(gradient), tf.float32)
                    target.assign(value if scale is None else value / tf.cast(scale, tf.float32))

        self._restore_optimizer = _compat.observe_gradients(optimizer, observe)

    def _unhook(self):
        for probe in self._probes:
            probe.detach()
        if self._restore_optimizer is not None:
            self._restore_optimizer()
            self._restore_optimizer = None

    # -- each step

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._recording = self._step % self.every == 0 and (
            self.first_steps is None or self._step < self.first_steps)
        if self._recording:
            for probe in self._probes:
                probe.reset()
            self._weights_before = {probe.layer.name: [w.numpy() for w in probe.layer.trainable_weights]
                                    for probe in self._probes}
            self._hook()
            _compat.use_train_function(self.model, self._recording_step)

    def on_train_batch_end(self, batch, logs=None):
        if self._recording:
            self._unhook()
            _compat.use_train_function(self.model, self._plain_step)
            self._record(self._step)
            self._recording = False
        self._step += 1

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is not None:
            self._writer.flush()

    # -- the records

    def _record(self, step: int):
        rows = []
        for probe in self._probes:
            layer = probe.layer
            weights = layer.trainable_weights
            row = {"step": step, "epoch": self._epoch + 1, "layer": layer.name,
                   "class": type(layer).__name__,
                   "output_gradient_norm": float(probe.output_gradient_norm.numpy())}
            if weights:
                gradients = [self._weight_gradients[w.path].numpy() for w in weights]
                before = self._weights_before[layer.name]
                after = [w.numpy() for w in weights]
                size = math.sqrt(sum(float(np.sum(np.square(b, dtype=np.float64))) for b in before))
                moved = math.sqrt(sum(float(np.sum(np.square(a.astype(np.float64) - b)))
                                      for a, b in zip(after, before)))
                row["weight_gradient_norm"] = math.sqrt(
                    sum(float(np.sum(np.square(g, dtype=np.float64))) for g in gradients))
                row["update_ratio"] = moved / size if size > 0 else math.nan
                self._histograms(step, layer, weights, gradients)
            if probe.dead_fraction is not None:
                row["dead_fraction"] = float(probe.dead_fraction.numpy())
            if probe.per_example is not None:
                norms = probe.per_example.numpy()
                self.per_example_norms[layer.name] = norms
                if norms.size:
                    row["per_example_norm_mean"] = float(norms.mean())
                    row["per_example_norm_max"] = float(norms.max())
            rows.append({column: row.get(column, "") for column in COLUMNS})
        self.rows.extend(rows)
        self._write(step, rows)

    def _resume_table(self):
        """Keeps the rows of steps already trained (a resumed run) and drops
        those of steps that will run again."""
        self.rows = []
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / "gradients.csv"
        if path.exists():
            with path.open(newline="") as file:
                self.rows = [row for row in csv.DictReader(file) if int(row["step"]) < self._step]
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)

    def _write(self, step: int, rows: list[dict]):
        if self.directory is None:
            return
        with (self.directory / "gradients.csv").open("a", newline="") as file:
            csv.DictWriter(file, COLUMNS).writerows(rows)
        writer = self._summary_writer()
        with writer.as_default(step=step):
            for row in rows:
                for column in COLUMNS[4:]:
                    if row[column] != "" and not math.isnan(row[column]):
                        tf.summary.scalar(f"{row['layer']}/{column}", row[column])

    def _histograms(self, step, layer, weights, gradients):
        if self.directory is None:
            return
        with self._summary_writer().as_default(step=step):
            for weight, gradient in zip(weights, gradients):
                tf.summary.histogram(f"{layer.name}/gradient/{weight.name}", gradient)
            norms = self.per_example_norms.get(layer.name)
            if norms is not None and norms.size:
                tf.summary.histogram(f"{layer.name}/per_example_norm", norms)

    def _summary_writer(self):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.directory / "logs" / "gradients"))
        return self._writer

    def _plot(self):
        if self.directory is not None and self.rows:
            plot_gradient_statistics(self.rows, self.directory / "gradients.png",
                                     title=f"Gradient statistics of {self.model.name}, "
                                           f"every {self.every} steps")


def plot_gradient_statistics(rows: list[dict], path: str | Path, title: str | None = None) -> None:
    """The table's curves per layer against the step: ‖dE/dy‖, ‖dE/dW‖ and
    ‖ΔW‖/‖W‖ on log scales, and the dead fraction of ReLU layers. Every
    recorded step is a marker; layers differ by colour (tab20), line style and
    marker; a picture of fewer than 5 steps per layer says so. Written to a
    temporary file beside ``path`` and renamed over it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("output_gradient_norm", "‖dE/dy‖ at the layer's output", True),
              ("weight_gradient_norm", "‖dE/dW‖", True),
              ("update_ratio", "‖ΔW‖ / ‖W‖ per step", True),
              ("dead_fraction", "dead ReLU units (fraction)", False))
    layers = list(dict.fromkeys(row["layer"] for row in rows))
    styles, markers = ("-", "--", "-.", ":"), "osD^vP*Xh<>p"
    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    for axis, (column, panel_title, log) in zip(axes.flat, panels):
        for index, layer in enumerate(layers):
            points = [(float(row["step"]), float(row[column])) for row in rows
                      if row["layer"] == layer and row[column] not in ("", None)
                      and math.isfinite(float(row[column])) and (not log or float(row[column]) > 0)]
            if points:
                steps, values = zip(*points)
                axis.plot(steps, values, label=layer, color=plt.cm.tab20(index % 20),
                          linestyle=styles[index // 20 % len(styles)],
                          marker=markers[index % len(markers)], markersize=4)
        axis.set(title=panel_title, xlabel="training step")
        if log and axis.lines:
            axis.set_yscale("log")
    steps_per_layer = min((sum(row["layer"] == layer for row in rows) for layer in layers),
                          default=0)
    heading = title or "Gradient statistics per layer"
    if steps_per_layer < 5:
        heading += (f"\nonly {steps_per_layer} recorded step(s) per layer: record more often "
                    "(a smaller `every`) to see a trend")
    figure.suptitle(heading)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes.flat[1].get_legend_handles_labels()
    figure.legend(handles, labels, loc="center right", fontsize="small")
    figure.tight_layout(rect=(0, 0, 0.85, 0.93))
    save_figure(figure, path)


def save_figure(figure, path: str | Path, dpi: int = 100) -> Path:
    """Writes a matplotlib ``figure`` to ``path`` atomically (a temporary file
    beside it, then a rename), closes it and returns the path: a reader sees
    the old picture or the new one, never half of one."""
    import matplotlib.pyplot as plt

    path = Path(path)
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        figure.savefig(temporary, dpi=dpi)
        os.replace(temporary, path)
    finally:
        plt.close(figure)
        temporary.unlink(missing_ok=True)
    return path
