"""Helpers of the tuning tests: a tiny 1-D CNN and the tune command run as a
separate process."""

import json
import os
import subprocess
import sys

#: A small cnn1d (8 filters, 16 dense units): a trial of one epoch takes seconds.
TINY_CNN = {"filters": (8,), "dense_units": (16,)}
TINY_CNN_ARGS = ["--model-arg", "filters=(8,)", "--model-arg", "dense_units=(16,)"]


def tune_command(*args):
    """``python -m tuning.cli tune ARGS`` (the `zoo tune` subcommand on its own)."""
    return [sys.executable, "-m", "tuning.cli", "tune", *args]


def subprocess_environment(**variables):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1", **variables}


def read_json(path):
    """The JSON in ``path``, or None while it is missing or half written."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def run(command, timeout=300, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=subprocess_environment(), **kwargs)
