"""Cross-entropy losses whose gradients are written out
(:mod:`custom_layers.ops.cross_entropy`), drop-ins for Keras' in ``compile``."""

from __future__ import annotations

import keras

from custom_layers.arguments import not_implemented_unless_default
from custom_layers.ops.cross_entropy import cross_entropy, sparse_cross_entropy


@keras.saving.register_keras_serializable(package="custom_layers")
class SparseCategoricalCrossentropy(keras.losses.Loss):
    """E_D for integer labels: −log p_label per example, averaged by Keras'
    reduction; dE/dz = p − t from logits. Same arguments and config as
    ``keras.losses.SparseCategoricalCrossentropy`` (``ignore_class`` None only)."""

    def __init__(self, from_logits=False, ignore_class=None,
                 reduction="sum_over_batch_size", name="sparse_categorical_crossentropy",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        not_implemented_unless_default("custom_layers.losses.SparseCategoricalCrossentropy",
                                       "ignored classes", ignore_class=(ignore_class, None))
        self.from_logits = bool(from_logits)
        self.ignore_class = ignore_class

    def call(self, y_true, y_pred):
        return sparse_cross_entropy(y_true, y_pred, self.from_logits)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction,
                "from_logits": self.from_logits, "ignore_class": self.ignore_class}


@keras.saving.register_keras_serializable(package="custom_layers")
class CategoricalCrossentropy(keras.losses.Loss):
    """E_D for one-hot (or soft) targets: −Σ t log p per example; dE/dz = p − t
    from logits. Same arguments and config as ``keras.losses.CategoricalCrossentropy``
    (``label_smoothing`` 0 and ``axis`` −1 only)."""

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        not_implemented_unless_default("custom_layers.losses.CategoricalCrossentropy",
                                       "label smoothing or another class axis",
                                       label_smoothing=(label_smoothing, 0.0), axis=(axis, -1))
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.axis = axis

    def call(self, y_true, y_pred):
        return cross_entropy(y_true, y_pred, self.from_logits)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


#: Keras' names of the losses above (as ``compile(loss=...)`` takes them).
LOSSES = {"sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
          "categorical_crossentropy": CategoricalCrossentropy}


def get(identifier) -> keras.losses.Loss:
    """The loss for ``identifier`` — Keras' name ("sparse_categorical_crossentropy",
    "categorical_crossentropy") or class name — as an instance with its default
    arguments; an instance of ours passes through. An unknown name lists the
    ones whose backward is written out here."""
    if isinstance(identifier, (SparseCategoricalCrossentropy, CategoricalCrossentropy)):
        return identifier
    by_class_name = {cls.__name__: cls for cls in LOSSES.values()}
    if isinstance(identifier, str) and (identifier in LOSSES or identifier in by_class_name):
        return (LOSSES.get(identifier) or by_class_name[identifier])()
    raise ValueError(f"Unknown loss {identifier!r}: custom_layers derives the backward pass of "
                     f"{', '.join(LOSSES)} (or their class names "
                     f"{', '.join(by_class_name)}).")
