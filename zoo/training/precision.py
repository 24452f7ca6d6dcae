"""Which floating-point precision a training runs in, and why.

``precision="auto"`` (the default of ``zoo train``, ``zoo tune`` and ``zoo
reproduce``) picks the fastest Keras dtype policy the device computes
natively:

- a GPU of compute capability ≥ 8.0 (Ampere and newer): ``mixed_bfloat16``;
- a GPU of compute capability ≥ 7.0 (tensor cores, Volta/Turing):
  ``mixed_float16`` (Keras wraps the optimizer in a ``LossScaleOptimizer``);
- a CPU with AMX-BF16 or AVX512-BF16 (oneDNN's bfloat16 kernels):
  ``mixed_bfloat16``;
- anything else: ``float32``.

Under a mixed policy the layers compute in the half type and keep float32
weights; batch-norm statistics and the softmax stay float32. A mixed policy
asked for on a device without native support still runs — the backend
emulates it, slowly — and says so once (:class:`EmulatedPrecisionWarning`).
The GPU's compute capability comes from the backend (TensorFlow's device
details, JAX's CUDA device); the GPU rules follow the vendors' specifications.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import keras

from custom_layers.arguments import check_choice
from zoo.vocabulary import PRECISIONS

POLICIES = PRECISIONS[1:]
CPU_BFLOAT16_FLAGS = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX512-BF16"}
CPU_FLOAT16_FLAGS = {"amx_fp16": "AMX-FP16", "avx512_fp16": "AVX512-FP16"}


class EmulatedPrecisionWarning(UserWarning):
    """A mixed precision was asked for on a device that does not compute it natively."""


@dataclass(frozen=True)
class Device:
    """What decides the precision: the GPUs' compute capabilities (empty
    without a GPU) and the CPU's feature flags (as in ``/proc/cpuinfo``)."""

    gpu_compute_capabilities: tuple[tuple[int, int], ...] = ()
    cpu_flags: frozenset[str] = frozenset()

    def describe(self) -> str:
        if self.gpu_compute_capabilities:
            major, minor = min(self.gpu_compute_capabilities)
            return f"GPU of compute capability {major}.{minor}"
        return "CPU"


@dataclass(frozen=True)
class Precision:
    """A chosen dtype policy, whether the device computes it natively, and why."""

    policy: str
    native: bool
    reason: str

    def __str__(self) -> str:
        return f"{self.policy} ({self.reason})"


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo``; empty where that file
    does not exist (macOS, Windows), which counts as no half-precision support."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def gpu_compute_capabilities() -> tuple[tuple[int, int], ...]:
    """(major, minor) of every GPU the Keras backend sees (TensorFlow's
    device details; a JAX CUDA device's ``compute_capability``)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tuple(
            tuple(capability) for capability in (
                tf.config.experimental.get_device_details(gpu).get("compute_capability")
                for gpu in tf.config.list_physical_devices("GPU")) if capability)
    import jax

    capabilities = []
    for device in jax.devices():
        text = getattr(device, "compute_capability", None) if device.platform == "gpu" else None
        if text:
            major, _, minor = str(text).partition(".")
            capabilities.append((int(major), int(minor or 0)))
    return tuple(capabilities)


@functools.lru_cache(maxsize=1)
def detect_device() -> Device:
    """The device this process trains on: its GPUs, or else its CPU. Probed
    once per process: the precision and the strategy "auto" both ask."""
    return Device(gpu_compute_capabilities(), cpu_flags())


def _native_support(policy: str, device: Device) -> str | None:
    """Why ``device`` computes ``policy`` natively, or None if it does not."""
    if policy == "float32":
        return "every device computes float32"
    if device.gpu_compute_capabilities:
        capability = min(device.gpu_compute_capabilities)
        needed = (8, 0) if policy == "mixed_bfloat16" else (7, 0)
        if capability >= needed:
            kind = "bfloat16" if policy == "mixed_bfloat16" else "float16 tensor cores"
            return f"{device.describe()} has {kind}"
        return None
    flags = CPU_BFLOAT16_FLAGS if policy == "mixed_bfloat16" else CPU_FLOAT16_FLAGS
    found = [name for flag, name in flags.items() if flag in device.cpu_flags]
    return f"the CPU has {' and '.join(found)}" if found else None


def choose_precision(requested: str = "auto", device: Device | None = None) -> Precision:
    """The dtype policy for ``requested`` ("auto", "float32",
    "mixed_bfloat16" or "mixed_float16") on ``device`` (default: this
    machine's), with the reason (module docstring)."""
    requested = check_choice(requested, PRECISIONS, "precision")
    device = detect_device() if device is None else device
    if requested != "auto":
        support = _native_support(requested, device)
        if support is not None:
            return Precision(requested, True, f"asked for; {support}")
        return Precision(requested, False,
                         f"asked for; emulated and slow: the {device.describe()} does not compute "
                         f"{requested.removeprefix('mixed_')} natively")
    candidates: Sequence[str] = (
        ("mixed_bfloat16", "mixed_float16") if device.gpu_compute_capabilities
        else ("mixed_bfloat16",))
    for policy in candidates:
        support = _native_support(policy, device)
        if support is not None:
            return Precision(policy, True, f"auto: {support}")
    return Precision("float32", True,
                     f"auto: the {device.describe()} has no native bfloat16 or float16 arithmetic")


_announced: set[Precision] = set()


def announce(precision: Precision, verbose: bool = True) -> None:
    """Says once per process which precision runs and why (printed), and warns
    once if it is emulated (:class:`EmulatedPrecisionWarning`)."""
    if precision in _announced:
        return
    _announced.add(precision)
    if not precision.native:
        warnings.warn(f"precision {precision.policy} is {precision.reason.partition('; ')[2]}.",
                      EmulatedPrecisionWarning, stacklevel=3)
    if verbose:
        print(f"precision: {precision}", flush=True)


class precision_scope:
    """Sets Keras' global dtype policy to a precision's for the models built
    inside, and restores the previous policy on exit (a built layer keeps its
    policy)."""

    def __init__(self, policy: str):
        self.policy = check_choice(policy, POLICIES, "precision")
        self._previous: keras.DTypePolicy | None = None

    def __enter__(self) -> str:
        self._previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(self.policy)
        return self.policy

    def __exit__(self, *exc) -> None:
        keras.mixed_precision.set_global_policy(self._previous)
