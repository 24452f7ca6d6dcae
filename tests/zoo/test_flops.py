"""zoo.count_flops: parameters and multiply-accumulates per example, equal to
counts made by hand from each layer's shapes."""

import keras
import pytest

import custom_layers
from zoo import count_flops, create_model


def conv(positions, kernel, in_channels, filters):
    """MACs of a convolution: per output position, kernel × C_in × C_out."""
    return positions * kernel * in_channels * filters


def test_deep_cnn_by_hand():
    # 28×28 → two 3×3 convs of 32 (same) → pool → two of 64 at 14×14 → pool → 7×7×64 → 128 (BN) → 10
    by_hand = (conv(28 * 28, 9, 1, 32) + conv(28 * 28, 9, 32, 32)
               + conv(14 * 14, 9, 32, 64) + conv(14 * 14, 9, 64, 64)
               + 2 * 28 * 28 * 32 + 2 * 14 * 14 * 64   # four batch norms, one MAC per element
               + 7 * 7 * 64 * 128 + 128 + 128 * 10)  # dense head, its batch norm, classifier
    count = count_flops(create_model("deep_cnn"))
    assert count.macs == by_hand == 18_767_232
    assert count.training_macs == 3 * by_hand and count.flops == 2 * by_hand
    assert count.parameters == create_model("deep_cnn").count_params()


def test_lenet5_by_hand():
    # 28×28 → conv 5×5×6 (same) → pool 14×14 → conv 5×5×16 (valid) 10×10 → pool 5×5 → 120 → 84 → 10
    by_hand = conv(28 * 28, 25, 1, 6) + conv(10 * 10, 25, 6, 16) + 400 * 120 + 120 * 84 + 84 * 10
    count = count_flops(create_model("lenet5"))
    assert (count.macs, count.parameters) == (by_hand, 61_706)
    assert by_hand == 416_520


def test_resnet20_by_hand():
    stem = conv(28 * 28, 9, 1, 16) + 28 * 28 * 16
    stage1 = 3 * (2 * conv(28 * 28, 9, 16, 16) + 2 * 28 * 28 * 16)
    stage2 = (conv(14 * 14, 9, 16, 32) + conv(14 * 14, 9, 32, 32) + conv(14 * 14, 1, 16, 32)
              + 3 * 14 * 14 * 32                   # the block's two batch norms and the shortcut's
              + 2 * (2 * conv(14 * 14, 9, 32, 32) + 2 * 14 * 14 * 32))
    stage3 = (conv(7 * 7, 9, 32, 64) + conv(7 * 7, 9, 64, 64) + conv(7 * 7, 1, 32, 64)
              + 3 * 7 * 7 * 64
              + 2 * (2 * conv(7 * 7, 9, 64, 64) + 2 * 7 * 7 * 64))
    by_hand = stem + stage1 + stage2 + stage3 + 64 * 10  # global average pooling: no MACs
    count = count_flops(create_model("resnet20"))
    assert count.macs == by_hand == 31_175_616
    assert 0.27e6 <= count.parameters < 0.28e6


def test_keras_layers_count_alike_and_unknown_layers_with_weights_are_refused():
    custom, builtin = (create_model("lenet5", layers=layers) for layers in ("custom", "keras"))
    assert count_flops(custom).by_layer == count_flops(builtin).by_layer
    strided = keras.Sequential([keras.Input((9, 9, 2)),
                                custom_layers.Conv2D(4, 3, strides=2, groups=2, data_format="channels_last")])
    assert count_flops(strided).macs == conv(4 * 4, 9, 2 // 2, 4)
    odd = keras.Sequential([keras.Input((5,)), keras.layers.Embedding(10, 3)])
    with pytest.raises(ValueError, match="does not know the arithmetic of layer .*Embedding"):
        count_flops(odd)
    with pytest.raises(TypeError, match="takes a keras.Model"):
        count_flops("deep_cnn")
