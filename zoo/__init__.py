"""deepzoo: deep MLP and CNN models built from layers with hand-written gradients.

    from zoo import deep_cnn, create_model, list_models, train

Attributes are imported on first use, so ``import zoo`` stays fast.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "deep_mlp": "zoo.models",
    "deep_cnn": "zoo.models",
    "cnn1d": "zoo.models",
    "lenet5": "zoo.models",
    "resnet": "zoo.models",
    "resnet20": "zoo.models",
    "count_flops": "zoo.flops",
    "create_model": "zoo.models",
    "list_models": "zoo.models",
    "train": "zoo.training",
    "TrainConfig": "zoo.training",
    "evaluate_run": "zoo.training",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name == "__version__":  # pyproject.toml's, as installed
        from zoo.commands import version

        return version()
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
