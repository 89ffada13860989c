"""What every command needs before it knows whether it will train anything: the
user-facing error, "did you mean" hints and the plugin kinds.

It imports neither torch nor numpy, so ``amrbench --help`` and ``amrbench list`` start in
a fraction of a second; ``amrbench.api`` re-exports all three, which stay the names
plugins import.
"""
from __future__ import annotations

import difflib
from typing import Iterable

KINDS = ("model", "dataset", "selector", "condenser", "compressor", "explainer", "protocol", "executor")


class AmrbenchError(Exception):
    """A user-facing error: one line naming the file/key and the fix (CLI exit code 2)."""


def did_you_mean(word: str, options: Iterable[str]) -> str:
    options = sorted(options)
    close = difflib.get_close_matches(str(word), options, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return f"{hint}; allowed: {', '.join(options) if options else '(none)'}"
