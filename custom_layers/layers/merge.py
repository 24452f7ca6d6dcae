"""``Add``: y = x_1 + … + x_n, a drop-in for ``keras.layers.Add`` (:mod:`custom_layers.ops.merge`)."""

from __future__ import annotations

import keras

from custom_layers import ops
from custom_layers.arguments import build_at_init


@keras.saving.register_keras_serializable(package="custom_layers")
class Add(keras.layers.Layer):
    """Adds a list of inputs of broadcastable shapes (the residual connection
    of a ResNet block); the output's mask is the AND of the inputs' masks."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        build_at_init(self)

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or not inputs:
            raise ValueError("A merge layer should be called on a list of inputs. "
                             f"Received: inputs={inputs} (not a list of tensors)")
        return ops.add(inputs)

    def compute_output_shape(self, input_shape):
        return broadcast_shapes(input_shape)

    def compute_mask(self, inputs, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        masks = [m for m in mask if m is not None]
        combined = masks[0]
        for m in masks[1:]:
            combined = keras.ops.logical_and(combined, m)
        return combined


def broadcast_shapes(shapes) -> tuple:
    """The shape the given shapes broadcast to (None where unknown); Keras'
    error for shapes that do not broadcast."""
    rank = max(len(shape) for shape in shapes)
    result = []
    for sizes in zip(*[(1,) * (rank - len(shape)) + tuple(shape) for shape in shapes]):
        known = {size for size in sizes if size is not None and size != 1}
        if len(known) > 1:
            raise ValueError(f"Inputs have incompatible shapes. Received shapes {list(shapes)}")
        if known:
            result.append(known.pop())
        elif None in sizes:
            result.append(None)
        else:
            result.append(1)
    return tuple(result)
