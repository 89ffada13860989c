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


def stored_timing(source: dict, name: str, cpu_name: Optional[str] = None) -> Optional[float]:
    """A stored timing as CPU time where the record or metrics have its twin
    (``cpu_<name>``, or ``cpu_name``), else as wall time; None when neither is a number.
    Costs are fitted and summed on it: a run that shared the cores with other work has
    longer wall times, not longer CPU times."""
    for key in (cpu_name or cpu_metric(name), name):
        value = source.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None
