"""Keras 3 layers whose backward passes are written out by hand, on the
TensorFlow and JAX backends.

Drop-in counterparts of ``keras.layers`` (same class names, arguments, weight
shapes and order): ``Dense``, ``Conv1D``, ``Conv2D``, ``MaxPooling1D``,
``MaxPooling2D``, ``BatchNormalization``, ``Dropout``, ``Activation``,
``Flatten``, ``Reshape``, ``AveragePooling1D/2D``,
``GlobalAveragePooling1D/2D``, ``Add``. Their math lives in
:mod:`custom_layers.ops`; :func:`custom_layers.testing.check_gradients` checks
a backward pass against autodiff and finite differences;
:class:`custom_layers.regularizers.L2` is weight decay's λ‖w‖² with its gradient,
:mod:`custom_layers.losses` the cross-entropies with theirs;
:func:`custom_layers.convert` swaps them into an existing Keras model.
"""

from importlib.metadata import PackageNotFoundError, version as _installed_version

from custom_layers.layers import *  # noqa: F401,F403 (the layer classes: layers.__all__)
from custom_layers import layers, losses, regularizers
from custom_layers.convert import UncoveredLayersWarning, convert

__all__ = [
    *layers.__all__,
    "UncoveredLayersWarning",
    "convert",
    "losses",
    "regularizers",
]
try:  # one version, pyproject.toml's: the deepzoo distribution holds the three packages
    __version__ = _installed_version("deepzoo")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "unknown (not installed)"
