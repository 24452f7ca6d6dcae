"""Shared test configuration: quiet TensorFlow, two logical CPU devices for
tf.distribute tests, float32 defaults restored after each test, and one
tensorflow-datasets directory per test process."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() == "jax":
    import jax

    jax.config.update("jax_enable_x64", True)  # the float64 gradient checks
elif keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    # Split the CPU into two logical devices before TensorFlow initialises it, so
    # MirroredStrategy has two replicas to mirror across.
    _cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )


@pytest.fixture(autouse=True)
def _restore_keras_globals():
    """Each test starts with the float32 policy and a fresh Keras session
    (without the full garbage collection clear_session does by default: with
    TensorFlow loaded it takes a few tenths of a second, times 1,300 tests)."""
    yield
    keras.mixed_precision.set_global_policy("float32")
    keras.backend.set_floatx("float32")
    keras.backend.clear_session(free_memory=False)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A tfds data_dir shared by the tests of one process, MNIST-1D prepared
    before any test (or subprocess) reads it; mnist_5k is built on first use."""
    from zoo import datasets

    directory = str(tmp_path_factory.mktemp("tensorflow_datasets"))
    datasets.prepare("mnist1d", data_dir=directory)
    return directory


_jax_run = None

#: The files that take longest (subprocesses that import TensorFlow or JAX,
#: kills and resumptions, trained experiments), longest first. Two workers
#: take whole files (--dist loadfile) in collection order, so these go first
#: and the short files fill in after them, rather than a long file starting last.
LONGEST_FIRST = (
    "tests/zoo/test_without_tensorflow.py",
    "tests/zoo/test_real_datasets.py",
    "tests/zoo/test_interruption.py",
    "tests/zoo/test_experiments.py",
    "tests/zoo/test_bad_inputs.py",
    "tests/tuning/test_resume.py",
    "tests/tuning/test_distributed.py",
    "tests/tuning/test_search.py",
    "tests/tuning/test_memory.py",
    "tests/zoo/test_multi_worker_resume.py",
    "tests/zoo/test_run_directory.py",
    "tests/zoo/test_multi_worker.py",
)


def pytest_collection_modifyitems(config, items):
    """Orders the collected tests so that the longest files come first
    (:data:`LONGEST_FIRST`); the rest keep their order."""
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_sessionstart(session):
    """A session of the whole suite starts the JAX run of the backend tests at
    once (in the controlling process, before any worker), so that it runs
    beside the TensorFlow tests instead of after them;
    tests/custom_layers/test_backends.py waits for its result."""
    global _jax_run
    config = session.config
    if hasattr(config, "workerinput") or keras.backend.backend() != "tensorflow":
        return
    if config.option.keyword or config.option.markexpr or os.environ.get("DEEPZOO_JAX_TEST_RUN"):
        return
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    covered = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    if not any(path in (tests, tests.parent) for path in covered):
        return
    try:
        import jax  # noqa: F401
    except ImportError:
        return
    import tempfile

    from tests.custom_layers.test_backends import JAX_RUN, start_jax_run

    folder = Path(tempfile.mkdtemp(prefix="deepzoo-jax-tests-"))
    _jax_run = start_jax_run(folder)
    os.environ[JAX_RUN] = str(folder)


def pytest_sessionfinish(session, exitstatus):
    """Stops the JAX run if the session ends before its test waited for it,
    and removes its folder from the system's temporary directory."""
    if _jax_run is None:
        return
    if _jax_run.poll() is None:
        import signal

        os.killpg(_jax_run.pid, signal.SIGTERM)
        _jax_run.wait()
    import shutil

    from tests.custom_layers.test_backends import JAX_RUN

    if os.environ.get(JAX_RUN):
        shutil.rmtree(os.environ[JAX_RUN], ignore_errors=True)
