"""Progress bar reporter (tqdm): cells done / total and the current cell."""
from __future__ import annotations

import sys

from tqdm import tqdm

from amrbench.hookspecs import hookimpl

_bar = None


def _describe(cell_or_record) -> str:
    labels = cell_or_record["labels"]
    return f"{labels['dataset']} | {labels['model']} | {labels['method']} {labels['budget']} | seed {labels['seed']}"


@hookimpl
def amrbench_suite_start(suite, cells, done):
    global _bar
    finished = sum(c["key"] in done for c in cells)
    _bar = tqdm(total=len(cells), initial=finished, desc=suite.name, unit="cell", file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5)


@hookimpl
def amrbench_cell_start(cell):
    if _bar is not None:
        _bar.set_postfix_str(_describe(cell), refresh=True)


@hookimpl
def amrbench_cell_done(record):
    if _bar is not None:
        _bar.update(1)
        if record["status"] != "ok":
            _bar.write(f"failed: {_describe(record)}: {record['error']}")


@hookimpl
def amrbench_suite_done(suite, records):
    global _bar
    if _bar is not None:
        _bar.close()
        _bar = None
