"""Weight decay's penalty λE_W with E_W = ‖w‖² (the lecture's E = E_D + λE_W),
forward and hand-written backward:

    λE_W = λ Σ_i w_i²          dλE_W/dw_i = 2λ w_i

so a step of gradient descent on E shrinks every weight by the factor
(1 − 2ηλ) before the data term moves it: the "decay" in weight decay.
"""

from __future__ import annotations

import tensorflow as tf


def l2_penalty(w: tf.Tensor, l2: float) -> tf.Tensor:
    """λ‖w‖² (a scalar); its gradient 2λw."""
    w = tf.convert_to_tensor(w)

    @tf.custom_gradient
    def penalty(w):
        l2_w = tf.constant(l2, w.dtype)

        def grad(upstream):
            return upstream * (2.0 * l2_w) * w

        return l2_w * tf.reduce_sum(tf.square(w)), grad

    return penalty(w)
