"""What every benchmark's JSON records about the machine, and how it is written."""

from __future__ import annotations

import os
import platform
from typing import Any


def environment() -> dict[str, Any]:
    """Library versions, the Keras backend and the hardware a benchmark ran on
    (the CPU's vector and matrix flags among it)."""
    import keras

    info = {
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": _vector_flags(),
    }
    if keras.backend.backend() == "jax":
        import jax

        info["jax"] = jax.__version__
        info["gpus"] = [str(device) for device in jax.devices() if device.platform == "gpu"]
    else:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["gpus"] = [device.name for device in tf.config.list_physical_devices("GPU")]
    return info


def _vector_flags() -> list[str]:
    """The CPU's AVX/AMX flags from /proc/cpuinfo (what bfloat16 and float32 speed hang on)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return sorted(flag for flag in line.split(":", 1)[1].split()
                                  if flag.startswith(("avx", "amx", "fma")))
    except OSError:
        pass
    return []


def write_report(report: dict[str, Any], path: str | os.PathLike) -> None:
    """Writes ``report`` as JSON to ``path`` (its folder created), atomically."""
    from zoo.files import atomic_write_json

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_json(report, path)
