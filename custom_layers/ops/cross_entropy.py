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
come from a softmax of this package (or Keras') carry their logits; the
loss then uses them (from_logits), as Keras' loss does, so its gradient is
the fused p − t even where probabilities saturate and clipping would zero it.
"""

from __future__ import annotations

import tensorflow as tf

EPSILON = 1e-7  # keras.backend.epsilon(), Keras' clip of probabilities


def cross_entropy(targets: tf.Tensor, outputs: tf.Tensor, from_logits: bool) -> tf.Tensor:
    """Per-example E_n for target distributions ``targets`` (same shape as
    ``outputs``, classes on the last axis); gradients for ``outputs`` only."""
    outputs, from_logits = _logits_if_known(outputs, from_logits)
    targets = tf.cast(targets, outputs.dtype)

    @tf.custom_gradient
    def forward(outputs):
        if from_logits:
            log_p = tf.nn.log_softmax(outputs, axis=-1)
            loss = -tf.reduce_sum(targets * log_p, axis=-1)

            def grad(upstream):
                return upstream[..., None] * (tf.exp(log_p) * tf.reduce_sum(
                    targets, axis=-1, keepdims=True) - targets)
        else:
            total = tf.reduce_sum(outputs, axis=-1, keepdims=True)  # S
            normalised = outputs / total
            clipped = tf.clip_by_value(normalised, EPSILON, 1.0 - EPSILON)
            loss = -tf.reduce_sum(targets * tf.math.log(clipped), axis=-1)

            def grad(upstream):
                inside = tf.cast((normalised >= EPSILON) & (normalised <= 1.0 - EPSILON),
                                 outputs.dtype)
                # dE/dp_j = Σ_k t_k·1[q_k inside]/S − t_j·1[q_j inside]/p_j
                counted = targets * inside
                gradient = (tf.reduce_sum(counted, axis=-1, keepdims=True) / total
                            - counted / outputs)
                return upstream[..., None] * gradient

        return loss, grad

    return forward(outputs)


def _logits_if_known(outputs, from_logits: bool):
    """The logits of softmax probabilities that carry them (``_keras_logits``)."""
    logits = getattr(outputs, "_keras_logits", None)
    if not from_logits and logits is not None:
        return logits, True
    return outputs, from_logits


def sparse_cross_entropy(labels: tf.Tensor, outputs: tf.Tensor, from_logits: bool) -> tf.Tensor:
    """Per-example E_n for integer class ``labels`` (t = one-hot of the label)."""
    labels = tf.cast(tf.reshape(labels, tf.shape(outputs)[:-1]), tf.int32)
    return cross_entropy(tf.one_hot(labels, tf.shape(outputs)[-1], dtype=outputs.dtype),
                         outputs, from_logits)
