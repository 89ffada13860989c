"""Progress events of a run, for reporters: shared artifacts starting and finishing, and
the epochs of whatever trains in this process.

Executors call :func:`artifact_started` / :func:`artifact_done` on the driver around each
shared artifact (the scoring run, a compressor fit, a classifier), wherever it is
computed; the reporters' ``amrbench_artifact_start`` / ``amrbench_artifact_done`` hooks
then name it. Epochs are finer and process-local: ``train.fit`` calls
:func:`epoch_done`, which reaches the display a reporter installed with
:func:`set_display` — so a run in this process (``--jobs 1``) shows "epoch 12/50", while
pool or Dask workers, which have no display, pay nothing. :func:`note` writes one line
to stderr without breaking a progress bar; :func:`end_line` closes the display before a
final message (Ctrl-C).
"""
from __future__ import annotations

import sys
from typing import Optional, Protocol

class Display(Protocol):
    def epoch(self, done: int, total: int) -> None: ...

    def write(self, line: str) -> None: ...

    def close(self) -> None: ...


_display: Optional[Display] = None
_warned: set = set()


def set_display(display: Optional[Display]) -> None:
    """Install (or with None remove) the display that epochs and notes go to."""
    global _display
    _display = display


def epoch_done(done: int, total: int) -> None:
    """``done`` of ``total`` epochs of the training running in this process finished."""
    _show("epoch", done, total)


def note(line: str) -> None:
    """One line on stderr, above the progress bar when one is drawn."""
    if not _show("write", line):
        print(line, file=sys.stderr, flush=True)


def _show(method: str, *args) -> bool:
    """Call the display, if any; a display that fails is dropped, never fails the work
    (like a reporter: call_reporters isolates them)."""
    global _display
    if _display is None:
        return False
    try:
        getattr(_display, method)(*args)
        return True
    except Exception:  # noqa: BLE001 - e.g. its stream was closed
        _display = None
        return False


def end_line(interrupted: bool = False) -> None:
    """Close the progress display, so that a final message (an error, Ctrl-C) starts a
    line of its own instead of joining a half-drawn bar. ``interrupted``: also end the
    line the terminal echoed "^C" on when no display was open."""
    if _display is not None:
        _show("close")
        set_display(None)
    elif interrupted and isatty(sys.stderr):
        sys.stderr.write("\n")
        sys.stderr.flush()


def isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def artifact_label(cell: dict, kind: str, registry=None) -> str:
    """A shared artifact in words, e.g. "scoring run cnn1d seed 0 (RML2016a)": the
    resource's registered ``words`` and ``subject`` (an unknown kind shows its name)."""
    from amrbench.registry import default_registry

    config, labels = cell.get("config") or {}, cell.get("labels") or {}
    model = config.get("model") or {}
    known = (registry or default_registry()).resources.get(kind)
    words, subject_kind = (known.words, known.subject) if known else (kind, "source")
    if subject_kind.startswith("method"):
        subject = labels.get("method") or (config.get("method") or {}).get("name", "")
        if subject_kind == "method budget" and labels.get("budget"):
            subject = f"{subject} {labels['budget']}"
    else:
        subject = model.get(subject_kind)
    text = " ".join(str(part) for part in (words, subject) if part)
    if "seed" in config:
        text += f" seed {config['seed']}"
    if labels.get("dataset"):
        text += f" ({labels['dataset']})"
    return text


def artifact_started(cell: dict, kind: str) -> None:
    """Tell the reporters a shared artifact is being computed (called on the driver)."""
    _call("amrbench_artifact_start", cell=cell, kind=kind, label=artifact_label(cell, kind))


def artifact_done(cell: dict, kind: str, error: Optional[str] = None) -> None:
    """Tell the reporters a shared artifact finished; ``error`` when it failed."""
    _call("amrbench_artifact_done", cell=cell, kind=kind, label=artifact_label(cell, kind), error=error)


def _call(hook: str, **kwargs) -> None:
    from amrbench.registry import default_registry

    for error in default_registry().call_reporters(hook, **kwargs):
        if error not in _warned:
            _warned.add(error)
            note(f"amrbench: warning: {error}")
