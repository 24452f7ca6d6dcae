"""custom_layers on Keras' other backends.

Keras picks its backend when it is imported, so the JAX run is a second
process: the layer table (float64 gradient checks against ``jax.vjp`` and
finite differences, parity with ``keras.layers`` on JAX, serialization, XLA),
the kernels against JAX's own derivatives, and the every-gradient proof of the
zoo's models, all under ``KERAS_BACKEND=jax``. It takes minutes on one core,
so a whole-suite session starts it at once, beside the TensorFlow tests
(tests/conftest.py), and the test here waits for its result. A backend the
ops do not run on is refused at a layer's first call, by name, not at import.
"""

import os
import shlex
import subprocess
import sys
import time
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
#: The folder of a JAX run started when the test session began (tests/conftest.py).
JAX_RUN = "DEEPZOO_JAX_TEST_RUN"
JAX_RUN_TIMEOUT_S = 1500


def _environment(backend: str) -> dict:
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}


def start_jax_run(folder: Path) -> subprocess.Popen:
    """Starts pytest on ``ON_JAX`` under ``KERAS_BACKEND=jax``: its output goes to
    ``folder/output.txt``, its exit status, when it ends, to ``folder/returncode``."""
    folder.mkdir(parents=True, exist_ok=True)
    command = " ".join(shlex.quote(part) for part in [
        sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider",
        "-W", "ignore::UserWarning", *ON_JAX])
    output, returncode = shlex.quote(str(folder / "output.txt")), shlex.quote(str(folder / "returncode"))
    return subprocess.Popen(
        ["sh", "-c", f"{command} > {output} 2>&1; echo $? > {returncode}.part && "
                     f"mv {returncode}.part {returncode}"],
        cwd=ROOT, env=_environment("jax"), start_new_session=True)


def _wait_for_jax_run(folder: Path) -> tuple[int, str]:
    deadline = time.monotonic() + JAX_RUN_TIMEOUT_S
    returncode = folder / "returncode"
    while not returncode.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the JAX run did not end within {JAX_RUN_TIMEOUT_S} s")
        time.sleep(1)
    return int(returncode.read_text()), (folder / "output.txt").read_text()


def test_the_layer_table_and_the_every_gradient_proof_pass_on_jax(tmp_path):
    pytest.importorskip("jax")
    folder = os.environ.get(JAX_RUN)
    if folder is None:  # not started with the session (a selection of tests): start it now
        folder = tmp_path / "jax"
        start_jax_run(folder)
    returncode, output = _wait_for_jax_run(Path(folder))
    summary = [line for line in output.splitlines()
               if line.startswith(("FAILED", "ERROR")) or " passed" in line]
    assert returncode == 0, "\n".join(summary) or output[-6000:]
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
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=_environment("numpy"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "custom_layers.ops.dense runs on the Keras backends tensorflow, jax" in result.stdout
    assert "'numpy'" in result.stdout
