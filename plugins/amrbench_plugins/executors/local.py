"""Local executor: cells in this process (``--jobs 1``) or a process pool (``--jobs N``).

Shared artifacts (e.g. the full-data scoring run) are queued first, each computed once,
in parallel; each cell is queued as soon as the artifacts it needs are computed (with
``--jobs 1`` too: each artifact in turn, then the cells it completes), at most
``jobs`` tasks in flight, records yielded in completion order.
Workers are spawned processes; a cell runs with ``--threads`` torch threads (default 1)
in either mode, so its numbers do not depend on N (``runner.DEFAULT_THREADS``).

Workers die with the driver: each one asks Linux to SIGKILL it when the driver goes
(``PR_SET_PDEATHSIG``) and watches its parent pid from a thread (other systems, and a
pool started outside the main thread, whose death signal would follow that thread).
They stay in the driver's process group, so a group kill (Ctrl-C) reaches them too.

A worker that dies mid-task (killed, out of memory) breaks the whole pool: the driver
starts a fresh one and resubmits every task that was in flight, counting the death
against each. As a death with several tasks in flight cannot be pinned on one of them,
those tasks then run one at a time; a task is given up only after a death while it ran
alone that brings its count past ``retries`` (default 2). A given-up cell is a failed
record; a given-up artifact fails the cells that need it without running them. The
other cells go on.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Callable, Optional

from amrbench import progress, runner
from amrbench.api import AmrbenchError, Executor
from amrbench.hookspecs import hookimpl

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
DRIVER_WATCH_INTERVAL_S = 0.5


# --------------------------------------------------------------------------- worker side
def die_with_driver(driver_pid: int, death_signal: bool) -> None:
    """Pool initializer: end this worker as soon as the driver process dies, so a killed
    run leaves no worker computing and writing artifacts for nobody. ``death_signal``
    says the pool was started from the driver's main thread (the kernel sends the
    parent-death signal when the *thread* that spawned the worker exits)."""
    if death_signal and sys.platform.startswith("linux"):
        _set_parent_death_signal(signal.SIGKILL)
    threading.Thread(target=_exit_when_orphaned, args=(driver_pid,), name="amrbench-driver-watch",
                     daemon=True).start()


def _set_parent_death_signal(signum: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watchdog thread still ends the worker


def _exit_when_orphaned(driver_pid: int) -> None:
    """Exit the moment this process is no longer the driver's child (reparented when
    the driver died, including before ``prctl`` took effect)."""
    while os.getppid() == driver_pid:
        time.sleep(DRIVER_WATCH_INTERVAL_S)
    os._exit(1)


# --------------------------------------------------------------------------- driver side
@dataclass(eq=False)
class Task:
    """One call for the pool (a cell, or a shared artifact) and how it fared."""

    call: Callable
    args: tuple
    name: object = None  # what the caller knows it by
    deaths: int = 0  # times its worker process died while it was in flight
    alone: bool = False  # rerun one at a time: it was in flight when a worker died
    first_submitted: Optional[float] = None


class RestartingPool:
    """A spawn process pool of ``jobs`` workers that die with the driver, replaced by a
    fresh one whenever a worker dies (which breaks every future of a
    ``ProcessPoolExecutor``). The pool is started at the first submit after a death."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self._pool: Optional[ProcessPoolExecutor] = None

    def submit(self, task: Task):
        if self._pool is None:
            self._pool = self._start()
        return self._pool.submit(task.call, *task.args)

    def _start(self) -> ProcessPoolExecutor:
        from_main_thread = threading.current_thread() is threading.main_thread()
        pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=die_with_driver, initargs=(os.getpid(), from_main_thread))
        for _ in range(self.jobs):  # spawn every worker now, from this thread (see die_with_driver)
            pool.submit(os.getpid)
        return pool

    def discard(self) -> None:
        """Drop a broken pool; once this returns, each of its futures has its outcome."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _died(future) -> bool:
    return isinstance(future.exception(), BrokenProcessPool)


def run_tasks(pool: RestartingPool, tasks, retries: int, on_submit=None):
    """Run the tasks in the pool, yielding ``(task, future)`` as each finishes and
    ``(task, None)`` for each given up after its worker died (``task.deaths`` times).
    ``tasks`` may be a deque the caller appends to between results (tasks that became
    ready); it is then the queue itself."""
    queue = tasks if isinstance(tasks, deque) else deque(tasks)
    running, empty_breaks = {}, 0
    while queue or running:
        broken = _fill(pool, queue, running, on_submit)
        if not broken:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = any(_died(f) for f in done)
            if not broken:
                for future in done:
                    yield running.pop(future), future
                continue
        pool.discard()
        lost = [task for future, task in running.items() if _died(future)]
        for future, task in running.items():
            if not _died(future):
                yield task, future
        running.clear()
        empty_breaks = 0 if lost else empty_breaks + 1
        if empty_breaks > max(retries, 2):
            raise AmrbenchError("--jobs: the local pool's worker processes die before running anything; check that "
                                "`python -c 'import amrbench_plugins.executors.local'` works, or use --jobs 1")
        yield from ((task, None) for task in _count_death(lost, queue, retries))


def _fill(pool: RestartingPool, queue: deque, running: dict, on_submit) -> bool:
    """Submit queued tasks up to the pool's size, or one at a time while a task that
    was in flight at a death is queued or running. True when the pool turned out broken."""
    # tasks to run alone are requeued at the front, so they are the queue's head
    while queue and len(running) < (1 if queue[0].alone or any(t.alone for t in running.values()) else pool.jobs):
        task = queue.popleft()
        try:
            future = pool.submit(task)
        except BrokenProcessPool:  # an idle worker died since the last look
            queue.appendleft(task)
            return True
        if task.first_submitted is None:
            task.first_submitted = time.time()
            if on_submit:
                on_submit(task)
        running[future] = task
    return False


def put_first(queue: deque, tasks: list) -> None:
    """Queue ``tasks`` (cells that became ready) ahead of the tasks still waiting, but
    behind those requeued to run alone after a worker died, keeping their order."""
    head = next((i for i, task in enumerate(queue) if not task.alone), len(queue))
    for offset, task in enumerate(tasks):
        queue.insert(head + offset, task)


def _count_death(lost: list, queue: deque, retries: int) -> list:
    """Count a death against each task that was in flight and requeue them first, to
    run one at a time. Return those given up: the task that was alone in flight when its
    worker died, once its deaths exceed ``retries`` (a shared death proves nothing)."""
    given_up = [task for task in lost if len(lost) == 1 and task.deaths + 1 > retries]
    for task in reversed(lost):
        task.deaths += 1
        task.alone = True
        if task not in given_up:
            queue.appendleft(task)
    return given_up


def died_message(deaths: int, retries: int, doing: str) -> str:
    return (f"worker died {deaths} time(s) {doing}: its process was killed (e.g. out of memory); "
            f"gave up after {retries} retr{'y' if retries == 1 else 'ies'}")


class LocalExecutor(Executor):
    """Runs cells here, or in a pool of N local processes with --jobs N."""

    name = "local"
    defaults = {"retries": 2}

    def __init__(self, **params):
        super().__init__(**params)
        value = self.params["retries"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise AmrbenchError(f"--retries {value!r}: must be an integer >= 0")

    def run(self, cells, options, notify=None):
        jobs = int(options.get("jobs") or 1)
        if jobs == 1:
            yield from self._serial(cells, options, notify)
        else:
            yield from self._pool(cells, options, notify, jobs)

    @staticmethod
    def _serial(cells, options, notify):
        """The shared artifacts one after the other, each followed by the cells it was the
        last one missing for, so a run stopped midway keeps their records."""
        from amrbench_plugins.executors.dask import _plan  # the artifacts and, per cell, those it needs

        artifacts, needs = _plan(cells, options)
        waiting = {i: (cell, set(needs[cell["key"]])) for i, cell in enumerate(cells)}

        def run_ready():
            for ready in LocalExecutor._ready_cells(waiting):
                if notify:
                    notify(ready)
                yield runner.execute_cell(ready, options)

        yield from run_ready()
        for akey, (cell, kind) in artifacts.items():
            progress.artifact_started(cell, kind)
            progress.artifact_done(cell, kind, runner.execute_artifact(cell, kind, options))
            for _, pending in waiting.values():
                pending.discard(akey)
            yield from run_ready()

    def _pool(self, cells, options, notify, jobs):
        """Every shared artifact in the queue, each cell queued ahead of the artifacts
        still waiting as soon as those it needs are computed, so a cell's record is stored
        while other artifacts still compute (a run stopped midway keeps more)."""
        from amrbench_plugins.executors.dask import _plan  # the artifacts and, per cell, those it needs

        options = {**options, "threads": runner.cell_threads(options)}
        retries = self.params["retries"]
        artifacts, needs = _plan(cells, options)
        waiting = {i: (cell, set(needs[cell["key"]])) for i, cell in enumerate(cells)}
        queue = deque(Task(runner.execute_artifact, (cell, kind, options), name=akey)
                      for akey, (cell, kind) in artifacts.items())
        self._queue_ready(queue, waiting, options)
        pool = RestartingPool(jobs)
        try:
            for task, future in run_tasks(pool, queue, retries, lambda task: self._started(task, notify)):
                if task.call is runner.execute_cell:
                    yield _cell_record(task, future, options, retries)
                    continue
                lost = None if future is not None else died_message(
                    task.deaths, retries, f"computing the shared artifact {task.name[0]!r} this cell needs")
                progress.artifact_done(*task.args[:2], lost if future is None else _failure(future))
                yield from self._settle(waiting, task.name, lost, options, notify)
                self._queue_ready(queue, waiting, options)
        finally:
            pool.close()

    @staticmethod
    def _started(task: Task, notify) -> None:
        if task.call is runner.execute_cell:
            if notify:
                notify(task.name)
        else:
            progress.artifact_started(*task.args[:2])

    @staticmethod
    def _queue_ready(queue: deque, waiting: dict, options: dict) -> None:
        """The tasks of the waiting cells whose artifacts are all computed, ahead of the
        artifacts still queued (``put_first``)."""
        put_first(queue, [_cell_task(cell, options) for cell in LocalExecutor._ready_cells(waiting)])

    @staticmethod
    def _ready_cells(waiting: dict) -> list:
        """The waiting cells whose artifacts are all computed (taken off ``waiting``)."""
        ready = [key for key, (_, pending) in waiting.items() if not pending]
        return [waiting.pop(key)[0] for key in ready]

    @staticmethod
    def _settle(waiting: dict, akey, lost: Optional[str], options: dict, notify):
        """An artifact finished: drop it from its cells' pending sets; when its worker
        died too often (``lost``), its cells fail without running (an artifact that
        raised is met again by its cells, which record the error)."""
        for key in [k for k, (_, pending) in waiting.items() if akey in pending]:
            cell, pending = waiting[key]
            pending.discard(akey)
            if lost is not None:
                del waiting[key]
                if notify:
                    notify(cell)
                yield runner.failed_record(cell, options, lost)


def _cell_task(cell: dict, options: dict) -> Task:
    return Task(runner.execute_cell, (cell, options), name=cell)


def _failure(future) -> Optional[str]:
    """Why a finished artifact task failed (``execute_artifact`` returns it), or None."""
    exc = future.exception()
    return f"{type(exc).__name__}: {exc}" if exc is not None else future.result()


def _cell_record(task: Task, future, options: dict, retries: int) -> dict:
    cell = task.name
    if future is None:
        return runner.failed_record(cell, options, died_message(task.deaths, retries, "running this cell"),
                                    started=task.first_submitted,
                                    wall_time_s=round(time.time() - task.first_submitted, 3))
    exc = future.exception()
    if exc is None:
        return future.result()
    import traceback

    return runner.failed_record(cell, options, runner.error_line(exc),
                                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


@hookimpl
def amrbench_register(registry):
    registry.add(LocalExecutor)
