"""The layers' computations as pure functions, each with a hand-written backward pass.

One module per derivation: ``dense``, ``conv`` (1-D and 2-D share the math),
``pooling``, ``average_pooling``, ``batch_norm``, ``dropout``, ``lora``,
``activations``, ``cross_entropy``, ``penalty``, ``reshaping``, ``merge``.
Every function here is written once against ``keras.ops`` with
``keras.ops.custom_gradient`` and is differentiable by the backend's autodiff
(``tf.GradientTape``, ``jax.grad``); the gradient it returns is the one
written in its module, not the autodiff of the forward. Where a backend has a
kernel for a derived quantity, the op takes it from
:mod:`custom_layers.backends`.
"""

from custom_layers.ops import activations
from custom_layers.ops.average_pooling import avg_pool1d, avg_pool2d, global_avg_pool
from custom_layers.ops.batch_norm import batch_norm_inference, batch_norm_training
from custom_layers.ops.conv import bias_add, conv1d, conv2d, explicit_padding
from custom_layers.ops.dense import dense
from custom_layers.ops.dropout import dropout
from custom_layers.ops.lora import lora_kernel
from custom_layers.ops.merge import add
from custom_layers.ops.penalty import l2_penalty
from custom_layers.ops.pooling import max_pool1d, max_pool2d
from custom_layers.ops.reshaping import concat, expand_dims, flatten, reshape, split, squeeze, transpose

__all__ = [
    "activations",
    "add",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm_inference",
    "batch_norm_training",
    "bias_add",
    "concat",
    "conv1d",
    "conv2d",
    "dense",
    "dropout",
    "expand_dims",
    "explicit_padding",
    "flatten",
    "global_avg_pool",
    "l2_penalty",
    "lora_kernel",
    "max_pool1d",
    "max_pool2d",
    "reshape",
    "split",
    "squeeze",
    "transpose",
]
