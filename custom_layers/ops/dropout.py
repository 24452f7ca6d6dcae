"""Inverted dropout, forward and hand-written backward.

During training each unit is kept with probability 1 − r (the mask m is 1
where kept, 0 where dropped) and the kept units are scaled up, so that the
expected activation equals the one seen at test time and inference is the
identity ("consistent o/p in testing"):

    y = x ⊙ m / (1 − r)

The backward pass multiplies by the same mask: dE/dx = dE/dy ⊙ m / (1 − r).
At r = 1 every unit is dropped: y = 0 and dE/dx = 0 (the scale m/(1 − r) is
taken as 0, as Keras does, rather than 0/0).
The mask is an input of the op (drawn by the layer from its seed generator),
so the forward and backward passes see the very same units dropped.
"""

from __future__ import annotations

from keras import ops

from custom_layers.ops._gradient import custom_gradient


def dropout(x, keep_mask, rate: float):
    """y = x ⊙ m / (1 − r); dE/dx = dE/dy ⊙ m / (1 − r). ``keep_mask`` is 0/1
    (or bool) and broadcasts against ``x`` (dropout's ``noise_shape``)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"Invalid dropout rate: expected 0 <= rate <= 1, received rate={rate}.")
    scale = 0.0 if rate == 1.0 else 1.0 / (1.0 - rate)

    @custom_gradient
    def forward(x):
        scaled_mask = ops.cast(keep_mask, x.dtype) * ops.convert_to_tensor(scale, x.dtype)
        y = x * scaled_mask

        def grad(upstream):
            return upstream * scaled_mask

        return y, grad

    return forward(x)
