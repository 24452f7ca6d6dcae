"""Cross-entropy E_D for a classifier, forward and hand-written backward.

For an example with class scores z (logits), p = softmax(z) and target
distribution t (one-hot for a class label), E_n = −Σ_j t_j log p_j =
logsumexp(z) − Σ_j t_j z_j, and softmax and cross-entropy fused give

    dE_n/dz = p − t

(the mean over a batch of N divides it by N: Keras' reduction). From
probabilities p instead (a softmax already applied), Keras renormalises and
clips them, q = clip(p/S, ε, 1 − ε) with S = Σ_j p_j and ε = 1e-7, and
E_n = −Σ_j t_j log q_j, so

    dE_n/dp_j = Σ_k t_k / S − t_j / p_j      (0 for a clipped q_j)

which, through the softmax's backward, is again p − t. Probabilities that
come from a softmax of this package (or Keras') carry their logits where the
backend's tensors can (TensorFlow's graph tensors); the loss then uses them
(from_logits), as Keras' loss does, so its gradient is the fused p − t even
where probabilities saturate and clipping would zero it.
"""

from __future__ import annotations

from keras import ops

from custom_layers._compat import attached_logits
from custom_layers.ops._gradient import custom_gradient

EPSILON = 1e-7  # keras.backend.epsilon(), Keras' clip of probabilities


def cross_entropy(targets, outputs, from_logits: bool):
    """Per-example E_n for target distributions ``targets`` (same shape as
    ``outputs``, classes on the last axis); gradients for ``outputs`` only."""
    outputs, from_logits = _logits_if_known(outputs, from_logits)
    targets = ops.cast(targets, outputs.dtype)

    @custom_gradient
    def forward(outputs):
        if from_logits:
            log_p = ops.log_softmax(outputs, axis=-1)
            loss = -ops.sum(targets * log_p, axis=-1)

            def grad(upstream):
                return ops.expand_dims(upstream, -1) * (
                    ops.exp(log_p) * ops.sum(targets, axis=-1, keepdims=True) - targets)
        else:
            total = ops.sum(outputs, axis=-1, keepdims=True)  # S
            normalised = outputs / total
            clipped = ops.clip(normalised, EPSILON, 1.0 - EPSILON)
            loss = -ops.sum(targets * ops.log(clipped), axis=-1)

            def grad(upstream):
                inside = ops.cast(ops.logical_and(normalised >= EPSILON,
                                                  normalised <= 1.0 - EPSILON), outputs.dtype)
                # dE/dp_j = Σ_k t_k·1[q_k inside]/S − t_j·1[q_j inside]/p_j
                counted = targets * inside
                gradient = ops.sum(counted, axis=-1, keepdims=True) / total - counted / outputs
                return ops.expand_dims(upstream, -1) * gradient

        return loss, grad

    return forward(outputs)


def _logits_if_known(outputs, from_logits: bool):
    """The logits of softmax probabilities that carry them (``custom_layers._compat.attached_logits``)."""
    logits = attached_logits(outputs)
    if not from_logits and logits is not None:
        return logits, True
    return outputs, from_logits


def sparse_cross_entropy(labels, outputs, from_logits: bool):
    """Per-example E_n for integer class ``labels`` (t = one-hot of the label)."""
    labels = ops.cast(ops.reshape(labels, ops.shape(outputs)[:-1]), "int32")
    return cross_entropy(ops.one_hot(labels, outputs.shape[-1], dtype=outputs.dtype),
                         outputs, from_logits)
