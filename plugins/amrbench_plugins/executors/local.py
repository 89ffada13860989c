"""Local executor: cells in this process (``--jobs 1``) or a process pool (``--jobs N``).

Shared artifacts (e.g. the full-data scoring run) are computed first, each once, in
parallel; then the cells, at most ``jobs`` in flight, yielded in completion order.
Workers are spawned processes; a cell runs with ``--threads`` torch threads (default 1)
in either mode, so its numbers do not depend on N (``runner.DEFAULT_THREADS``).
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from amrbench import runner
from amrbench.api import Executor
from amrbench.hookspecs import hookimpl


class LocalExecutor(Executor):
    """Runs cells here, or in a pool of N local processes with --jobs N."""

    name = "local"

    def run(self, cells, options, notify=None):
        jobs = int(options.get("jobs") or 1)
        if jobs == 1:
            yield from self._serial(cells, options, notify)
        else:
            yield from self._pool(cells, options, notify, jobs)

    @staticmethod
    def _serial(cells, options, notify):
        for cell, kind in runner.prerequisites(cells, options):
            runner.execute_artifact(cell, kind, options)
        for cell in cells:
            if notify:
                notify(cell)
            yield runner.execute_cell(cell, options)

    @staticmethod
    def _pool(cells, options, notify, jobs):
        options = {**options, "threads": runner.cell_threads(options)}
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            artifacts = [pool.submit(runner.execute_artifact, cell, kind, options)
                         for cell, kind in runner.prerequisites(cells, options)]
            wait(artifacts)
            queue, running = list(cells), {}
            while queue or running:
                while queue and len(running) < jobs:
                    cell = queue.pop(0)
                    if notify:
                        notify(cell)
                    running[pool.submit(runner.execute_cell, cell, options)] = cell
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    cell = running.pop(future)
                    yield _result_or_failure(future, cell)


def _result_or_failure(future, cell):
    try:
        return future.result()
    except Exception as exc:  # the worker process died (killed, out of memory)
        return {"schema_version": 1, "key": cell["key"], "suite": cell["suite"], "config": cell["config"],
                "labels": cell["labels"], "status": "failed", "metrics": None,
                "error": f"worker died: {type(exc).__name__}: {exc}"}


@hookimpl
def amrbench_register(registry):
    registry.add(LocalExecutor)
