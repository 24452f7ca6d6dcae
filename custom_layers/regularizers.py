"""Weight penalties whose gradients are written out (:mod:`custom_layers.ops.penalty`)."""

from __future__ import annotations

import math

import keras

from custom_layers.arguments import invalid
from custom_layers.ops.penalty import l2_penalty


@keras.saving.register_keras_serializable(package="custom_layers")
class L2(keras.regularizers.Regularizer):
    """λ‖w‖², the lecture's weight decay term λE_W with E_W = ‖w‖² (not
    ½‖w‖²), with gradient 2λw; a drop-in for ``keras.regularizers.L2``
    (same value, same ``{"l2": λ}`` config)."""

    def __init__(self, l2=0.01):
        if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not math.isfinite(l2) \
                or l2 < 0:
            raise invalid("l2", "a finite number >= 0", l2)
        self.l2 = float(l2)

    def __call__(self, x):
        return l2_penalty(x, self.l2)

    def get_config(self):
        return {"l2": self.l2}
