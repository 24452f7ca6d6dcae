"""1-D convolutional networks for sequences and signals (e.g. MNIST-1D, length 40)."""

from __future__ import annotations

from typing import Sequence

import keras

from custom_layers.arguments import invalid
from zoo.models._common import check_units, dense_head, start_model
from zoo.models.registry import register_model, register_preset


def _per_block(value, blocks: int, name: str) -> tuple[int, ...]:
    values = (value,) * blocks if isinstance(value, int) else tuple(value)
    if len(values) != blocks:
        raise invalid(name, f"an int or one value per block ({blocks})", value)
    return check_units(values, name)


@register_model
def cnn1d(
    input_shape: Sequence[int] = (40, 1),
    num_classes: int = 10,
    filters: Sequence[int] = (64, 128, 128),
    kernel_sizes: int | Sequence[int] = 5,
    strides: int | Sequence[int] = 1,
    pooling: bool = True,
    dense_units: Sequence[int] = (256,),
    batch_norm: bool = True,
    dropout_rate: float = 0.3,
    weight_decay: float = 5e-4,
    head_batch_norm: bool | None = None,
    kernel_initializer: str | None = None,
    layers: str = "custom",
    name: str | None = None,
) -> keras.Model:
    """Per entry of ``filters`` one block Conv1D(k, stride, same) → (BatchNorm)
    → ReLU → (MaxPooling1D(2) if ``pooling``), then Flatten → Dense(dense_units)
    → (BatchNorm) → ReLU → Dropout → softmax (``head_batch_norm``: None follows
    ``batch_norm``). Kernels carry λ‖w‖²
    (``custom_layers.regularizers.L2``; Keras' ``L2`` for Keras' layers); a
    1-D kernel has k·N weights per input channel, shared along the whole
    sequence. The ReLU layers' kernels start He normal (He et al. 2015), the
    classifier's Glorot uniform; ``kernel_initializer`` replaces He's.
    """
    build = start_model(input_shape, 2, "(40, 1)", num_classes=num_classes,
                        dropout_rate=dropout_rate, weight_decay=weight_decay, layers=layers,
                        kernel_initializer=kernel_initializer, batch_norm=batch_norm)
    filters = check_units(filters, "filters")
    kernel_sizes = _per_block(kernel_sizes, len(filters), "kernel_sizes")
    strides = _per_block(strides, len(filters), "strides")
    dense_units = check_units(dense_units, "dense_units", allow_empty=True)

    inputs = keras.Input(build.input_shape, name="inputs")
    x = inputs
    length = build.input_shape[0]
    for block, (block_filters, kernel, stride) in enumerate(zip(filters, kernel_sizes, strides), 1):
        x = build.nn.Conv1D(block_filters, kernel, strides=stride, padding="same",
                            name=f"conv_{block}", **build.kernel())(x)
        length = -(-length // stride)
        x = build.normalize_and_activate(x, block)
        if pooling and length >= 2:
            x = build.nn.MaxPooling1D(2, name=f"max_pool_{block}")(x)
            length //= 2
    x = dense_head(x, build, dense_units, dropout_rate,
                   batch_norm if head_batch_norm is None else head_batch_norm)
    return keras.Model(inputs, build.classifier(x, num_classes), name=name or f"cnn1d_{layers}")


mnist1d_paper_cnn = register_preset(
    "mnist1d_paper_cnn", cnn1d,
    """The MNIST-1D paper's CNN (Greydanus 2020): three Conv1D layers of 25 channels,
    kernels 5/3/3, stride 2, ReLU, then a linear classifier; 94% test accuracy there.""",
    filters=(25, 25, 25), kernel_sizes=(5, 3, 3), strides=2, pooling=False,
    dense_units=(), batch_norm=False, dropout_rate=0.0, weight_decay=0.0,
)
