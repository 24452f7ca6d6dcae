"""custom_layers on Keras' other backends.

Keras picks its backend when it is imported, so the JAX run is a second
process: the layer table (float64 gradient checks against ``jax.vjp`` and
finite differences, parity with ``keras.layers`` on JAX, serialization, XLA),
the kernels against JAX's own derivatives, and the every-gradient proof of the
zoo's models, all under ``KERAS_BACKEND=jax``. A backend the ops do not run on
is refused at a layer's first call, by name, not at import.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ON_JAX = [
    "tests/custom_layers/test_layers.py",
    "tests/custom_layers/test_serialization.py",
    "tests/custom_layers/test_kernels.py",
    "tests/custom_layers/test_losses.py",
    "tests/custom_layers/test_regularizers.py",
    "tests/custom_layers/test_compiled_training.py",
    "tests/zoo/test_every_gradient.py",
]


def _run(backend: str, *arguments: str, timeout: int) -> subprocess.CompletedProcess:
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, *arguments], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def test_the_layer_table_and_the_every_gradient_proof_pass_on_jax():
    pytest.importorskip("jax")
    result = _run("jax", "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider",
                  "-W", "ignore::UserWarning", *ON_JAX, timeout=1200)
    summary = [line for line in result.stdout.splitlines()
               if line.startswith(("FAILED", "ERROR")) or " passed" in line]
    assert result.returncode == 0, "\n".join(summary) or result.stdout[-3000:] + result.stderr[-3000:]
    assert any(" passed" in line for line in summary)


def test_a_backend_the_ops_do_not_run_on_is_refused_by_name_at_the_first_call():
    script = (
        "import numpy as np, custom_layers\n"
        "layer = custom_layers.Dense(2)\n"  # importing and constructing work
        "try:\n"
        "    layer(np.ones((1, 3), 'float32'))\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    result = _run("numpy", "-c", script, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "custom_layers.ops.dense runs on the Keras backends tensorflow, jax" in result.stdout
    assert "'numpy'" in result.stdout
