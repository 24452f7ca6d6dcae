"""Weight decay's penalty λE_W with E_W = ‖w‖² (the lecture's E = E_D + λE_W),
forward and hand-written backward:

    λE_W = λ Σ_i w_i²          dλE_W/dw_i = 2λ w_i

so a step of gradient descent on E shrinks every weight by the factor
(1 − 2ηλ) before the data term moves it: the "decay" in weight decay.
"""

from __future__ import annotations

from keras import ops

from custom_layers.ops._gradient import custom_gradient


def l2_penalty(w, l2: float):
    """λ‖w‖² (a scalar); its gradient 2λw."""
    w = ops.convert_to_tensor(w)

    @custom_gradient
    def penalty(w):
        l2_w = ops.convert_to_tensor(l2, w.dtype)

        def grad(upstream):
            return upstream * (2.0 * l2_w) * w

        return l2_w * ops.sum(ops.square(w)), grad

    return penalty(w)
