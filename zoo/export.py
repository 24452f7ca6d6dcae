"""Export for inference: TensorFlow SavedModel and ``.keras`` files, and prediction.

``.keras`` files load, evaluate and predict on every Keras backend; writing or
serving a SavedModel needs TensorFlow (imported only then).

A SavedModel written by :func:`export_savedmodel` needs neither this package
nor Keras to run:

    import tensorflow as tf
    served = tf.saved_model.load("exported/deep_cnn")
    probabilities = served.serve(images)      # float32, shape (batch, H, W, C)

Its ``serve`` signature has a free batch axis and the model's input shape and
dtype; it runs in inference mode (batch norm uses the moving statistics,
dropout is off). The layers' hand-written gradients are stored with it
(``experimental_custom_gradients``), so a loaded model can be fine-tuned.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from zoo import runs
from zoo.io import load_model

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _tensorflow(purpose: str):
    """TensorFlow, or an error that says ``purpose`` needs it and what works without."""
    try:
        import tensorflow as tf
    except ImportError:
        raise RuntimeError(f"{purpose} needs TensorFlow, which is not installed here; a run's "
                           "model.keras loads, evaluates and predicts on every Keras backend "
                           "without it.") from None
    return tf


def serving_signature(model: keras.Model):
    """The input spec of ``serve`` (a ``tf.TensorSpec``): the model's input
    shape, any batch size, float32."""
    tf = _tensorflow("A SavedModel signature")
    shape = model.inputs[0].shape
    return tf.TensorSpec((None, *shape[1:]), tf.float32, name="inputs")


def export_savedmodel(model: keras.Model, path: str | os.PathLike, replace: bool = False) -> Path:
    """Writes ``model`` as a SavedModel with a ``serve`` endpoint (inference mode)
    and the custom gradients kept; returns the path.

    It is written beside ``path`` first and moved into place, so an
    interrupted export leaves no half-written SavedModel. An existing,
    non-empty ``path`` is refused — unless ``replace`` and it holds a
    SavedModel, which is then replaced (re-running a search's export)."""
    tf = _tensorflow("Exporting a SavedModel")
    path = Path(path)
    exists = path.is_file() or (path.is_dir() and any(path.iterdir()))
    if exists and not (replace and (path / "saved_model.pb").exists()):
        raise FileExistsError(f"Export path {path} already exists and is not empty"
                              f"{' (nor a SavedModel to replace)' if replace else ''}"
                              f"{'' if replace else '; --overwrite (replace=True) replaces a SavedModel'}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serve",
            lambda inputs: model(inputs, training=False),
            input_signature=[serving_signature(model)],
        )
        archive.write_out(
            str(staging / "saved_model"),
            options=tf.saved_model.SaveOptions(experimental_custom_gradients=True),
            verbose=False,
        )
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging / "saved_model", path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def export_run(run_dir: str | os.PathLike, path: str | os.PathLike,
               replace: bool = False) -> Path:
    """Exports a finished run's ``model.keras`` as a SavedModel at ``path``
    (``replace``: an existing SavedModel there is replaced)."""
    return export_savedmodel(load_model(Path(run_dir) / runs.MODEL_FILE), path, replace=replace)


class Predictor:
    """Runs a ``.keras`` file, a run directory (its ``model.keras``), an
    exported SavedModel, or a registered model with its shipped weights
    (``zoo.models.weights``) on input arrays; ``weights_note`` says which
    weights a registered model uses."""

    def __init__(self, path: str | os.PathLike):
        self.weights_note = None
        path = Path(path)
        from zoo.models import list_models

        if (path.is_dir() and not (path / "saved_model.pb").exists()
                and (path / runs.MODEL_FILE).exists()):
            path = path / runs.MODEL_FILE  # a finished run, as zoo evaluate and zoo export take it

        if not path.exists() and str(path) in list_models():
            model, self.weights_note = _shipped_model(str(path))
            self.input_shape = tuple(model.inputs[0].shape[1:])
            self._predict = lambda x: model.predict(x, verbose=0)
        elif path.is_dir():
            if not (path / "saved_model.pb").exists():
                raise ValueError(f"{path} is not a SavedModel directory (no saved_model.pb).")
            tf = _tensorflow("Loading a SavedModel")
            self._served = tf.saved_model.load(str(path))
            if not hasattr(self._served, "serve"):
                raise ValueError(f"SavedModel {path} has no `serve` endpoint.")
            spec = self._served.serve.input_signature[0]
            self.input_shape = tuple(spec.shape[1:])
            self._predict = lambda x: self._served.serve(tf.constant(x)).numpy()
        else:
            model = load_model(path)
            self.input_shape = tuple(model.inputs[0].shape[1:])
            self._predict = lambda x: model.predict(x, verbose=0)

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Class probabilities for a batch (or one example) of inputs."""
        inputs = np.asarray(inputs)
        if not (np.issubdtype(inputs.dtype, np.integer) or np.issubdtype(inputs.dtype, np.floating)):
            raise ValueError(f"Inputs must be real numbers (int or float), received dtype {inputs.dtype}.")
        if inputs.shape == self.input_shape:
            inputs = inputs[None]
        if inputs.shape[1:] != self.input_shape:
            raise ValueError(
                f"Inputs have shape {inputs.shape}; expected (batch, "
                f"{', '.join(map(str, self.input_shape))}) or {self.input_shape} for one example."
            )
        if inputs.shape[0] == 0:
            raise ValueError(f"Inputs hold no examples (shape {inputs.shape}); expected a batch of "
                             f"at least one example of shape {self.input_shape}.")
        if not np.all(np.isfinite(inputs)):
            raise ValueError("Inputs contain NaN or infinite values.")
        return self._predict(inputs.astype(np.float32))


def _shipped_model(name: str):
    """The registered model ``name`` with its shipped weights, and a line
    saying which (the first dataset it has weights of)."""
    from zoo.models import create_model
    from zoo.models.weights import shipped

    available = shipped(name)
    if not available:
        raise ValueError(f"Model {name!r} has no shipped weights; predict with a trained run's "
                         "model.keras (zoo train) or an exported SavedModel.")
    dataset, entry = next(iter(available.items()))
    note = (f"using the shipped {dataset} weights of {name} (test accuracy "
            f"{entry['test_accuracy']:.4f}, SHA-256 {entry['sha256'][:12]}…)")
    return create_model(name, weights=dataset), note


def read_image(path: str | os.PathLike, input_shape: Sequence[int]) -> np.ndarray:
    """An image file as the model expects it: resized to (H, W), gray or RGB by
    the channel count, scaled to [0, 1] as in training (decoded and resized
    bilinearly by TensorFlow, or by Pillow where TensorFlow is not installed)."""
    height, width, channels = input_shape
    try:
        import tensorflow as tf
    except ImportError:
        return _read_image_with_pillow(path, height, width, channels)
    data = tf.io.read_file(str(path))
    try:
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    except tf.errors.InvalidArgumentError:
        raise ValueError(f"{path} is not a PNG or JPEG image.") from None
    image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, (height, width))
    return image.numpy()


def _read_image_with_pillow(path, height: int, width: int, channels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except UnidentifiedImageError:
        raise ValueError(f"{path} is not a PNG or JPEG image.") from None
    image = image.convert("L" if channels == 1 else "RGB").resize((width, height),
                                                                  Image.Resampling.BILINEAR)
    array = np.asarray(image, np.float32) / 255.0
    return array.reshape(height, width, channels)


def read_named_inputs(paths: Sequence[str | os.PathLike], input_shape: Sequence[int],
                      notes: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """``.npy`` arrays and image files stacked into one batch, and a name for each example (the file,
    with ``[i]`` for the i-th example of a batch file). ``notes`` collects
    what a user should know about the inputs: arrays outside [0, 1] (the
    models were trained on inputs scaled to it), and images drawn dark on
    light, which are inverted to MNIST's light-on-dark digits."""
    batches, names = [], []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"Input file {path} does not exist.")
        suffix = path.suffix.lower()
        if suffix == ".npy":
            try:
                array = np.load(path, allow_pickle=False)
            except ValueError as error:
                raise ValueError(f"{path} is not a readable .npy array: {error}") from None
            single = array.shape == tuple(input_shape)
            array = array[None] if single else array
            if notes is not None and array.size and np.issubdtype(array.dtype, np.number) and (
                    array.min() < 0 or array.max() > 1):
                notes.append(f"{path.name} holds values in [{array.min():g}, {array.max():g}]; "
                             "the models were trained on inputs in [0, 1] (divide 0-255 grey "
                             "levels by 255)")
            batches.append(array)
            names += [path.name] if single else [f"{path.name}[{i}]" for i in range(len(array))]
        elif suffix in IMAGE_SUFFIXES:
            if len(input_shape) != 3:
                raise ValueError(f"{path} is an image but the model expects inputs of shape "
                                 f"{tuple(input_shape)}.")
            image = read_image(path, input_shape)
            if input_shape[-1] == 1 and float(image.mean()) > 0.5:  # a light background
                image = 1.0 - image
                if notes is not None:
                    notes.append(f"{path.name} is drawn dark on light; inverted to the light-on-"
                                 "dark digits the models were trained on")
            batches.append(image[None])
            names.append(path.name)
        else:
            raise ValueError(f"Unsupported input file {path}: expected .npy, .png, .jpg or .jpeg.")
    shapes = {tuple(batch.shape[1:]) for batch in batches}
    if len(shapes) > 1:
        raise ValueError(
            f"Inputs have different shapes {sorted(shapes)}; expected {tuple(input_shape)}.")
    return np.concatenate(batches), names
