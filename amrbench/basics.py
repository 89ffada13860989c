"""What every command needs before it knows whether it will train anything: the
user-facing error, "did you mean" hints, the plugin kinds, and how a stored timing is
read (CPU time first).

It imports neither torch nor numpy, so ``amrbench --help`` and ``amrbench list`` start in
a fraction of a second; ``amrbench.api`` re-exports the error, the hints, the kinds and
``cpu_metric``, which stay the names plugins import.
"""
from __future__ import annotations

import difflib
from typing import Iterable, Optional

KINDS = ("model", "dataset", "selector", "condenser", "compressor", "explainer", "protocol", "executor")


class AmrbenchError(Exception):
    """A user-facing error: one line naming the file/key and the fix (CLI exit code 2)."""


def did_you_mean(word: str, options: Iterable[str]) -> str:
    options = sorted(options)
    close = difflib.get_close_matches(str(word), options, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return f"{hint}; allowed: {', '.join(options) if options else '(none)'}"


def cpu_metric(name: str) -> str:
    """The name of a timing's CPU-time twin (``train_time_s`` -> ``cpu_train_time_s``)."""
    return "cpu_" + name


def cpu_timed(record: dict) -> bool:
    """Whether a record's CPU times measure its cost: a cell on the CPU with one torch
    thread. On a GPU the work is not CPU time, and with N threads the CPU time is about
    N x the wall time; such records are read by their wall times."""
    threads = (record.get("env") or {}).get("threads") or 1
    return (record.get("device") or "cpu") == "cpu" and threads == 1


def record_seconds(record: dict) -> Optional[float]:
    """A cell's stored time: ``cpu_time_s`` where ``cpu_timed``, else ``wall_time_s``
    (None when neither is a number). Costs are fitted and summed on it: a run that
    shared the cores with other work has longer wall times, not longer CPU times."""
    return _first_number(record, ("cpu_time_s",) if cpu_timed(record) else (), "wall_time_s")


def metric_seconds(record: dict, name: str) -> Optional[float]:
    """A timing metric of a record (``train_time_s``, ``seconds_per_iteration``): its
    CPU twin ``cpu_<name>`` where ``cpu_timed``, else the metric itself."""
    metrics = record.get("metrics") or {}
    return _first_number(metrics, (cpu_metric(name),) if cpu_timed(record) else (), name)


def _first_number(source: dict, preferred: tuple, fallback: str) -> Optional[float]:
    for key in preferred + (fallback,):
        value = source.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None
