"""Opt-in reporters: ``amrbench run --reporter NAME`` turns one on for a run.

Every installed reporter plugin receives the run's events, but one that costs something
or writes somewhere (an experiment tracker) is off until asked for: its plugin offers it
through the ``amrbench_optional_reporters`` hook as ``{name: enable}``, and
:func:`enable_reporters` calls ``enable(settings)`` for each name given, before the run.
"""
from __future__ import annotations

from typing import Callable, Iterable

from amrbench.basics import AmrbenchError, did_you_mean


def optional_reporters(registry) -> dict[str, Callable[[dict], None]]:
    """Every opt-in reporter the installed plugins offer, by name."""
    offered: dict = {}
    for reporters in registry.pm.hook.amrbench_optional_reporters():
        offered.update(reporters or {})
    return offered


def enable_reporters(registry, names: Iterable[str], settings: dict) -> None:
    """Turn on the opt-in reporters ``names`` with ``settings`` (e.g. ``tracking_uri``);
    an unknown name, or a reporter that cannot work here, is an AmrbenchError."""
    names = list(dict.fromkeys(names))
    if not names:
        return
    offered = optional_reporters(registry)
    for name in names:
        if name not in offered:
            raise AmrbenchError(f"--reporter {name!r}: no such opt-in reporter{did_you_mean(name, offered)}")
    for name in names:
        offered[name](settings)
