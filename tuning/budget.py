"""A search's wall-clock budget (``tune(time_budget=...)``, ``zoo tune
--time-budget 30m``), which Keras Tuner lacks (keras-team/keras-tuner#249):
no trial starts once it is spent, the trial in flight ends at its next epoch
boundary, and a resumed search counts the time its earlier processes spent.

The time spent is committed to the project (``zoo_budget.json``) after every
epoch and when the search ends, so it adds up across interruptions; it is
also the search's wall time that ``results.json`` records. (Keras-free: the
command line reads durations with it before Keras starts;
``tuning.tuners.StopWhenBudgetSpent`` is the trials' callback.)
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from pathlib import Path

from zoo.files import atomic_write_json

BUDGET_FILE = "zoo_budget.json"
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")
DURATION_FORMS = "seconds (600) or hours, minutes and seconds (30m, 1h30m, 90s, 1.5h)"


def parse_duration(value: float | int | str) -> float:
    """Seconds of a duration: a number of seconds, or a text of hours,
    minutes and seconds (``"30m"``, ``"1h30m"``, ``"90s"``, ``"600"``);
    ValueError naming the forms it takes otherwise."""
    seconds = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            match = _DURATION.fullmatch(text)
            if match and any(match.groups()):
                seconds = sum(float(amount) * _UNITS[unit]
                              for amount, unit in zip(match.groups(), "hms") if amount)
    if seconds is None or not (0 < seconds < math.inf):
        raise ValueError(f"`time_budget` must be a positive duration: {DURATION_FORMS}. "
                         f"Received: time_budget={value!r}")
    return seconds


class SearchClock:
    """The wall time a search has spent, across the processes that ran it
    (``spent_s`` in ``PROJECT/zoo_budget.json``, unless it starts afresh:
    ``resume=False``), against its budget (``seconds``; None: unlimited)."""

    def __init__(self, project_dir: str | Path, seconds: float | None = None, resume: bool = True):
        self.path = Path(project_dir) / BUDGET_FILE
        self.seconds = seconds
        self.spent_before = 0.0
        if resume:
            try:
                self.spent_before = float(json.loads(self.path.read_text())["spent_s"])
            except (OSError, ValueError, KeyError, TypeError):  # a new search
                pass
        self._started = time.monotonic()

    def spent(self) -> float:
        """Seconds spent by this search: its earlier processes' and this one's."""
        return self.spent_before + time.monotonic() - self._started

    def exhausted(self) -> bool:
        """Whether the budget is spent (never, without one)."""
        return self.seconds is not None and self.spent() >= self.seconds

    def remaining(self) -> float | None:
        return None if self.seconds is None else max(0.0, self.seconds - self.spent())

    def commit(self) -> float:
        """Records the time spent so far in the project, so that a resumed
        search counts it; returns the seconds recorded."""
        spent = round(self.spent(), 3)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json({"time_budget_s": self.seconds, "spent_s": spent}, self.path)
        return spent


def stop_creating_trials(oracle) -> None:
    """Makes a Keras Tuner oracle answer every further request for a trial
    with STOPPED, as it does once ``max_trials`` trials exist (its
    ``create_trial``): the trials it has are all it will have."""
    oracle.max_trials = max(1, len(oracle.trials))


def stop_when_spent(clock: SearchClock, oracle) -> threading.Timer | None:
    """On the chief of a distributed search, which serves the oracle and runs
    no trial: stops the oracle creating trials when the budget runs out
    (a daemon timer; None without a budget)."""
    if clock.seconds is None:
        return None
    timer = threading.Timer(clock.remaining(), stop_creating_trials, args=(oracle,))
    timer.daemon = True
    timer.start()
    return timer
