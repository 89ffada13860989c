"""Progress reporter: cells done / total, the shared artifact or cell being computed and
its training epoch.

On a terminal it draws a tqdm bar whose text names what runs now, e.g. "scoring run
cnn1d seed 0 (toy): epoch 12/50". When stderr is not a terminal (a log file, CI) a bar
redrawn with carriage returns would pile up on one line, so it writes plain lines
instead: one per cell, one per shared artifact started and finished, and at most one
epoch line per ``LOG_EPOCH_INTERVAL_S`` seconds.
"""
from __future__ import annotations

import sys
import time

from tqdm import tqdm

from amrbench import progress
from amrbench.hookspecs import hookimpl

LOG_EPOCH_INTERVAL_S = 30.0  # a long training run still shows it is alive in a log

_view = None


def _describe(cell_or_record) -> str:
    labels = cell_or_record["labels"]
    return f"{labels['dataset']} | {labels['model']} | {labels['method']} {labels['budget']} | seed {labels['seed']}"


def _seconds(start: float) -> str:
    return f"{time.monotonic() - start:.1f} s"


class BarView:
    """A tqdm bar on a terminal; its text names the artifacts in flight, else the cell."""

    def __init__(self, suite, total: int, finished: int, stream):
        self.bar = tqdm(total=total, initial=finished, desc=suite.name, unit="cell", file=stream,
                        dynamic_ncols=True, mininterval=0.5)
        self.artifacts: dict = {}  # labels in flight (a dict keeps their start order)
        self.cell = ""
        self.epoch_text = ""

    def _show(self) -> None:
        if self.artifacts:
            labels = list(self.artifacts)
            text = labels[-1] + (f" (+{len(labels) - 1} more)" if len(labels) > 1 else "")
        else:
            text = self.cell
        self.bar.set_postfix_str(text + (f": {self.epoch_text}" if self.epoch_text else ""), refresh=True)

    def artifact_started(self, label: str) -> None:
        self.artifacts[label] = None
        self.epoch_text = ""
        self._show()

    def artifact_done(self, label: str, error) -> None:
        self.artifacts.pop(label, None)
        self.epoch_text = ""
        if error:
            self.bar.write(f"shared artifact failed: {label}: {error}")
        self._show()

    def cell_started(self, cell) -> None:
        self.cell, self.epoch_text = _describe(cell), ""
        self._show()

    def cell_done(self, record) -> None:
        self.bar.update(1)
        if record["status"] != "ok":
            self.bar.write(f"failed: {_describe(record)}: {record['error']}")

    def epoch(self, done: int, total: int) -> None:
        self.epoch_text = f"epoch {done}/{total}"
        self._show()

    def write(self, line: str) -> None:
        self.bar.write(line, file=self.bar.fp)

    def close(self) -> None:
        self.bar.close()


class LogView:
    """Plain lines for a stream that is not a terminal."""

    def __init__(self, suite, total: int, finished: int, stream):
        self.stream, self.total, self.finished = stream, total, finished
        self.artifacts: dict = {}  # label -> start time
        self.running = ""  # what trains in this process: the latest artifact or cell started
        self.last_epoch_line = float("-inf")
        self._line(f"amrbench: {suite.name}: {total} cell{'' if total == 1 else 's'}, {finished} already done")

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def artifact_started(self, label: str) -> None:
        self.artifacts[label] = time.monotonic()
        self.running = label
        self._line(f"amrbench: computing {label}")

    def artifact_done(self, label: str, error) -> None:
        start = self.artifacts.pop(label, time.monotonic())
        outcome = f"failed after {_seconds(start)}: {error}" if error else f"done in {_seconds(start)}"
        self._line(f"amrbench: {label} {outcome}")

    def cell_started(self, cell) -> None:
        self.running = _describe(cell)

    def cell_done(self, record) -> None:
        self.finished += 1
        wall = record.get("wall_time_s")
        took = f" in {wall:.1f} s" if isinstance(wall, (int, float)) else ""
        outcome = f"ok{took}" if record["status"] == "ok" else f"failed{took}: {record['error']}"
        self._line(f"[{self.finished}/{self.total}] {_describe(record)}: {outcome}")

    def epoch(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last_epoch_line >= LOG_EPOCH_INTERVAL_S:
            self.last_epoch_line = now
            self._line(f"amrbench: {self.running}: epoch {done}/{total}")

    def write(self, line: str) -> None:
        self._line(line)

    def close(self) -> None:
        self.stream.flush()


@hookimpl
def amrbench_suite_start(suite, cells, done):
    global _view
    if _view is not None:
        _view.close()
    finished = sum(c["key"] in done for c in cells)
    stream = sys.stderr
    view_class = BarView if progress.isatty(stream) else LogView
    _view = view_class(suite, len(cells), finished, stream)
    progress.set_display(_view)


@hookimpl
def amrbench_cell_start(cell):
    if _view is not None:
        _view.cell_started(cell)


@hookimpl
def amrbench_artifact_start(label):
    if _view is not None:
        _view.artifact_started(label)


@hookimpl
def amrbench_artifact_done(label, error):
    if _view is not None:
        _view.artifact_done(label, error)


@hookimpl
def amrbench_cell_done(record):
    if _view is not None:
        _view.cell_done(record)


@hookimpl
def amrbench_suite_done(suite, records):
    global _view
    if _view is not None:
        progress.set_display(None)
        _view.close()
        _view = None
