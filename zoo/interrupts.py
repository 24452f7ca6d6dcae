"""Ctrl-C during a ``zoo`` command: the SIGINT handler and the flag it sets.

The KeyboardInterrupt the handler raises can land in a garbage-collection
callback (JAX, which Keras imports when it is installed, registers one),
where Python ignores it; the flag lets the training loop raise it again at
the next batch (``zoo.training.engine.StopOnInterrupt``) and the command
runner after the command returns. Imports nothing of the zoo.
"""

from __future__ import annotations

import signal
import threading

#: Set when Ctrl-C (SIGINT) arrives during a command.
interrupt_requested = threading.Event()


def _interrupt(signal_number, frame):
    interrupt_requested.set()
    raise KeyboardInterrupt


def watch_for_interrupts() -> None:
    """Clears the flag and, in the main thread, installs the SIGINT handler
    that sets it and raises KeyboardInterrupt."""
    interrupt_requested.clear()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt)
