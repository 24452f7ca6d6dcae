"""What every benchmark's JSON records about the machine, and how it is written."""

from __future__ import annotations

import os
import platform
from typing import Any


def environment() -> dict[str, Any]:
    """Library versions and the hardware a benchmark ran on."""
    import keras
    import tensorflow as tf

    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
    }


def write_report(report: dict[str, Any], path: str | os.PathLike) -> None:
    """Writes ``report`` as JSON to ``path`` (its folder created), atomically."""
    from zoo.io import atomic_write_json

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_json(report, path)
