"""Deep 2-D convolutional networks: blocks of Conv2D → BatchNorm → ReLU, then max pooling."""

from __future__ import annotations

from typing import Sequence

import keras

from zoo.models._common import check_units, dense_head, start_model
from zoo.models.registry import register_model, register_preset


@register_model(recipe={"mnist": {"epochs": 4}, "fashion_mnist": {"epochs": 6}})
def deep_cnn(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    filters: Sequence[int] = (32, 64),
    convs_per_block: int = 2,
    kernel_size: int = 3,
    dense_units: Sequence[int] = (128,),
    batch_norm: bool = True,
    dropout_rate: float = 0.5,
    weight_decay: float = 1e-4,
    head_batch_norm: bool | None = None,
    kernel_initializer: str | None = None,
    layers: str = "custom",
    name: str | None = None,
) -> keras.Model:
    """A VGG-style image classifier: per entry of ``filters`` one block of
    ``convs_per_block`` × [Conv2D(3×3, same) → (BatchNorm) → ReLU], then 2×2
    max pooling (skipped once the feature map is a single pixel); then
    Flatten → Dense(dense_units) → (BatchNorm) → ReLU → Dropout → softmax
    (``head_batch_norm``: None follows ``batch_norm``).

    Weight sharing: a conv kernel has k·k·C_in·C_out weights however large the
    image. Kernels carry λ‖w‖² (``custom_layers.regularizers.L2``; Keras'
    ``L2`` for Keras' layers). The ReLU layers' kernels start He normal
    (He et al. 2015), the classifier's Glorot uniform;
    ``kernel_initializer`` (a Keras initializer or name) replaces He's.
    """
    build = start_model(input_shape, 3, "(28, 28, 1)", num_classes=num_classes,
                        dropout_rate=dropout_rate, weight_decay=weight_decay, layers=layers,
                        kernel_initializer=kernel_initializer, batch_norm=batch_norm)
    filters = check_units(filters, "filters")
    dense_units = check_units(dense_units, "dense_units", allow_empty=True)
    check_units((convs_per_block, kernel_size), "convs_per_block and kernel_size")

    inputs = keras.Input(build.input_shape, name="inputs")
    x = inputs
    height, width = build.input_shape[:2]
    for block, block_filters in enumerate(filters, start=1):
        for conv in range(1, convs_per_block + 1):
            tag = f"{block}_{conv}"
            x = build.nn.Conv2D(block_filters, kernel_size, padding="same", name=f"conv_{tag}",
                                **build.kernel())(x)
            x = build.normalize_and_activate(x, tag)
        if min(height, width) >= 2:
            x = build.nn.MaxPooling2D(2, name=f"max_pool_{block}")(x)
            height, width = height // 2, width // 2
    x = dense_head(x, build, dense_units, dropout_rate,
                   batch_norm if head_batch_norm is None else head_batch_norm)
    return keras.Model(inputs, build.classifier(x, num_classes), name=name or f"deep_cnn_{layers}")


small_cnn = register_preset(
    "small_cnn", deep_cnn,
    "A one-block CNN (16 filters, one conv, no hidden dense layer): quick to train, for demos and tests.",
    filters=(16,), convs_per_block=1, dense_units=(), dropout_rate=0.0,
)
