"""Runs a suite: expands the grid, skips stored cells, hands the rest to an executor
plugin and appends each record to the store as it arrives (only the driver writes).

``execute_cell`` and ``execute_artifact`` are what executors call wherever they run
(in-process, a process pool, a Dask worker): they take a spec, build or load the data
themselves and return a JSON-able record. A plugin that raises gives a ``failed``
record; the suite goes on.
"""
from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Optional

import torch

from amrbench import __version__, allocator, resources
from amrbench.api import AmrbenchError, Context
from amrbench.cache import stable_hash
from amrbench.registry import default_registry
from amrbench.shipped import RESULTS_ENV, results_root, suite_results_dir  # noqa: F401 (re-exported)
from amrbench.store import SCHEMA_VERSION, ArtifactCache, RecordStore
from amrbench.suite import Suite, expand, normalise, only_cells


@dataclass
class RunOptions:
    results: Optional[str] = None
    device: str = "cpu"
    jobs: int = 1
    executor: str = "local"
    executor_params: dict = field(default_factory=dict)
    cache: Optional[str] = None
    threads: Optional[int] = None
    only: dict = field(default_factory=dict)  # --only: {axis: [values]}, a block of the grid
    rerun_before: Optional[str] = None  # --rerun: stored cells that started before this time run again

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def results_dir(suite: Suite, options: RunOptions) -> Path:
    """This suite's results folder: ``--results`` when given (the folder itself), else
    ``<results root>/<suite name>`` for the default profile and
    ``<results root>/<suite name>-<profile>`` for a named one."""
    return Path(options.results) if options.results else suite_results_dir(suite.name, suite.profile)


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AmrbenchError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if not (name == "cpu" or name.startswith("cuda")):
        raise AmrbenchError(f"--device {name!r}: allowed: cpu, cuda, cuda:N")
    return torch.device(name)


AMP_DTYPE = {"cpu": "bfloat16", "cuda": "float16"}


def check_mixed_precision_reuse(cells: list, stored: dict, device: str, path) -> None:
    """``amp`` is bfloat16 on the CPU and float16 on CUDA, and the cell key leaves the
    device out (float32 cells may be reused across devices): refuse to pass off a stored
    amp cell of the other precision as this run's."""
    here = torch.device(device).type
    clash = [c for c in cells if c["config"]["train"].get("amp") and c["key"] in stored
             and torch.device(stored[c["key"]].get("device") or "cpu").type != here]
    if clash:
        there = torch.device(stored[clash[0]["key"]].get("device") or "cpu").type
        raise AmrbenchError(
            f"{path}: {len(clash)} stored cell(s) with amp ran on {there} ({AMP_DTYPE.get(there, there)}), this run is on "
            f"{here} ({AMP_DTYPE.get(here, here)}); use --results with another folder, or --device {there}")


@lru_cache(maxsize=1)
def environment() -> dict:
    try:
        root = Path(__file__).resolve().parent.parent
        git = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip() or None
    except Exception:
        git = None
    import numpy

    return {"amrbench": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "git": git, "host": socket.gethostname(), "cpu": cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def cpu_model() -> str:
    """The CPU's name: float32 cells differ in their last bits between CPUs whose kernels
    differ (AVX2 / AVX-512 / AMX), and training amplifies that (docs/determinism.md)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# A cell's numbers depend on its torch thread count (the order of parallel reductions,
# e.g. a convolution's weight gradient over the batch), so every executor runs a cell
# with the same count, whatever --jobs / --workers: one thread unless --threads says so.
DEFAULT_THREADS = 1


def cell_threads(options: dict) -> int:
    return int(options.get("threads") or DEFAULT_THREADS)


def _prepare_process(options: dict) -> None:
    allocator.tune()
    torch.set_num_threads(cell_threads(options))


def make_context(config: dict, options: dict) -> Context:
    """The context a cell's work runs in. It also puts this process in a cell's state
    (allocator, thread count), so whatever computes a cell or its shared artifacts — a
    run's executor, ``amrbench explain``, ``compress-plot``, ``condense`` — gets the same
    numbers."""
    _prepare_process(options)
    return Context(seed=config["seed"], device=resolve_device(options.get("device", "cpu")), cell=config,
                   cache=ArtifactCache(options.get("cache")), registry=default_registry(), resolver=resources.get)


def execute_cell(cell: dict, options: dict) -> dict:
    """Run one cell and return its record (never raises for a plugin's error)."""
    config = cell["config"]
    start, cpu_start = time.time(), time.process_time()
    head = record_head(cell, options, started=start, pid=os.getpid())
    try:
        ctx = make_context(config, options)
        ctx.seed_torch("cell")
        protocol = ctx.registry.create("protocol", config["protocol"], config["settings"])
        record = {**head, "status": "ok", "metrics": protocol.run_cell(ctx, config), "error": None}
    except Exception as exc:
        record = failed_record(cell, options, error_line(exc), traceback.format_exc(), started=start, pid=os.getpid())
    record["wall_time_s"] = round(time.time() - start, 3)
    record["cpu_time_s"] = round(time.process_time() - cpu_start, 3)
    return record


def record_head(cell: dict, options: dict, started: Optional[float] = None, pid: Optional[int] = None) -> dict:
    """The fields every record of a cell opens with, finished or failed: what ran (key,
    suite, config, labels), where (device, pid, env with the thread count) and when
    (``started_at``; None, like ``pid``, when no process ran the cell)."""
    when = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)) if started is not None else None
    return {"schema_version": SCHEMA_VERSION, "key": cell["key"], "suite": cell["suite"], "config": cell["config"],
            "labels": cell["labels"], "device": options.get("device", "cpu"), "pid": pid,
            "env": {**environment(), "threads": cell_threads(options)}, "started_at": when}


def failed_record(cell: dict, options: dict, error: str, traceback: Optional[str] = None, *,
                  started: Optional[float] = None, pid: Optional[int] = None,
                  wall_time_s: Optional[float] = None) -> dict:
    """The record of a cell that did not finish, with the fields of a finished one plus
    ``traceback`` (``metrics`` None): the one builder of a failure, used when a plugin
    raised and by every executor on the driver when a cell's worker died or its shared
    artifact could not be computed, so every failure reads the same in the store.
    ``traceback``, ``started``, ``pid`` and ``wall_time_s`` are None unless the caller
    knows them; ``cpu_time_s`` is None (``execute_cell`` sets it for a plugin's failure)."""
    return {**record_head(cell, options, started, pid), "status": "failed", "metrics": None, "error": error,
            "traceback": traceback, "wall_time_s": wall_time_s, "cpu_time_s": None}


def error_line(exc: BaseException) -> str:
    """A failed record's ``error``: the exception's type and the first line of its message."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def execute_artifact(cell: dict, kind: str, options: dict) -> Optional[str]:
    """Compute a shared artifact a cell needs; an error is returned, not raised: the
    dependent cells will meet it again and record it as their failure."""
    try:
        ctx = make_context(cell["config"], options)
        ctx.resource(kind)
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def prerequisites(cells: list, options: dict) -> list[tuple[dict, str]]:
    """The distinct shared artifacts the cells need, one representative cell each."""
    registry = default_registry()
    seen, out = set(), []
    for cell in cells:
        config = cell["config"]
        protocol = registry.create("protocol", config["protocol"], config["settings"])
        for kind in protocol.needs(registry, config):
            ctx = make_context(config, options)
            key = (kind, stable_hash(resources.artifact_config(ctx, kind)))
            if key not in seen:
                seen.add(key)
                out.append((cell, kind))
    return out


def preflight(suite: Suite, todo: Optional[list] = None) -> None:
    """Checks that need the data, before any cell trains: every dataset (of the ``todo``
    cells, when given) loads, keeps signals after its SNR filter and has a test split with
    every class in it; an SPC is no larger than the smallest class. Loads go through
    ``load_splits``, memoised (and cached on disk by the generators), so the cells reuse
    them. One line naming the dataset and the fix, else nothing."""
    from amrbench.data.splits import split_problem
    from amrbench.resources import load_splits
    from amrbench.suite import dataset_config

    wanted = None if todo is None else {stable_hash(c["config"]["dataset"]) for c in todo}
    spcs = [b.spc for b in suite.budgets if b is not None and b.spc is not None]
    for dataset in suite.datasets:
        if wanted is not None and stable_hash(normalise(dataset_config(dataset))) not in wanted:
            continue
        where = f"{suite.path}: dataset {dataset['label']!r}"
        try:
            train, test = load_splits(default_registry(), dataset)
        except AmrbenchError as exc:
            raise AmrbenchError(f"{where}: {exc}") from None
        problem = split_problem(train, test)
        if problem:
            raise AmrbenchError(f"{where}: {problem}")
        smallest = int(train.class_counts().min())
        if spcs and max(spcs) > smallest:
            raise AmrbenchError(f"{suite.path}: spc: {max(spcs)} exceeds the smallest class of dataset "
                                f"{dataset['label']!r} ({smallest} training signals); use spc <= {smallest}")


def note_changed_data(todo: list, records, path) -> None:
    """Say once (stderr) why cells of a file-backed dataset run anew: stored cells read
    the same path when it held other contents (see ``amrbench.data.fingerprint``)."""
    from amrbench.data.fingerprint import changed_file_note

    note = changed_file_note(todo, records)
    if note:
        print(f"amrbench: note: {path}: {note}", file=sys.stderr)


def dry_run_report(suite: Suite, cells: list, done: set, estimate=None, jobs: int = 1, stored: set = frozenset()) -> str:
    """The expanded grid with what is done, and, given a ``cost.Estimate`` of the cells
    still to run, their CPU-hours and wall time with ``jobs`` workers. Cells ``stored``
    but not ``done`` (a ``--rerun``) are marked "rerun"."""
    from tabulate import tabulate

    def status(key):
        return "done" if key in done else "rerun" if key in stored else "todo"

    rows = [[c["labels"]["dataset"], c["labels"]["model"], c["labels"]["method"], c["labels"]["budget"],
             c["labels"]["seed"], status(c["key"]), c["key"][:12]] for c in cells]
    table = tabulate(rows, headers=["dataset", "model", "method", "budget", "seed", "status", "key"], tablefmt="simple")
    n_done = sum(c["key"] in done for c in cells)
    n_rerun = sum(status(c["key"]) == "rerun" for c in cells)
    again = f" ({n_rerun} of them again: --rerun)" if n_rerun else ""
    text = f"{table}\n\n{suite.name}: {len(cells)} cells, {n_done} already done, {len(cells) - n_done} to run{again}"
    return text + (f"; {estimate.summary(jobs)}" if estimate is not None and len(cells) > n_done else "")


RERUN_TIME = "%Y-%m-%dT%H:%M:%S%z"  # as records' started_at


def rerun_time(text: str) -> datetime:
    """A ``--rerun-before`` time: ISO 8601 as ``--rerun`` prints it (2026-12-07T20:50:00+0000;
    without a zone, UTC)."""
    try:
        when = datetime.strptime(str(text), RERUN_TIME)  # Python 3.10's fromisoformat cannot read +0000
    except ValueError:
        when = None
    try:
        when = when or datetime.fromisoformat(str(text))
    except ValueError:
        raise AmrbenchError(f"--rerun-before {text!r}: not a time; give it as --rerun printed it, e.g. "
                            f"2026-12-07T20:50:00+0000") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def reused_keys(stored: dict, rerun_before: Optional[str]) -> set:
    """The stored ``ok`` cells a run reuses: all of them; with ``rerun_before`` (``--rerun``)
    only those whose latest record started at or after that time, i.e. were already rerun,
    so that a stopped rerun resumes."""
    if rerun_before is None:
        return set(stored)
    limit = rerun_time(rerun_before)

    def rerun_already(record) -> bool:
        try:
            return datetime.strptime(record.get("started_at") or "", RERUN_TIME) >= limit
        except ValueError:  # no start time: an old record, run again
            return False

    return {k for k, r in stored.items() if rerun_already(r)}


@dataclass
class RunSummary:
    cells: int
    skipped: int
    records: list
    store: RecordStore
    seconds: float = 0.0

    @property
    def failed(self) -> list:
        return [r for r in self.records if r["status"] != "ok"]

    def line(self, suite_name: str, out_dir, figures: int = 0) -> str:
        """The one line a run ends with: computed and reused cells, time, outputs."""
        failed = f" ({len(self.failed)} failed)" if self.failed else ""
        reused = f"; the done ones reused from {self.store.path}" if self.skipped else ""
        figures_text = f", {figures} figure(s) in {out_dir}" if figures else ""
        return (f"{suite_name}: {self.cells} cells, {self.skipped} already done, {len(self.records)} run{failed} in "
                f"{_duration(self.seconds)}{reused}; table {Path(out_dir) / 'table.md'}{figures_text}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s" if seconds < 3600 else \
        f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def note_other_cpus(stored: dict, todo: list, options: RunOptions, path) -> None:
    """A results folder that gets new CPU cells beside stored ones from another kind of
    CPU mixes kernels whose float32 numbers differ (README, "Determinism"): say so once.
    Only for the local executor, whose cells run on this machine."""
    if not todo or torch.device(options.device).type != "cpu" or options.executor != "local":
        return
    here = environment()
    others = {}
    for record in stored.values():
        env = record.get("env") or {}
        cpu = (env.get("cpu"), env.get("cpu_capability"))
        if (record.get("device") or "cpu") == "cpu" and cpu[0] and cpu != (here["cpu"], here["cpu_capability"]):
            others[cpu] = others.get(cpu, 0) + 1
    if others:
        listed = ", ".join(f"{count} on {cpu} ({capability})" for (cpu, capability), count in others.items())
        print(f"amrbench: note: {path}: stored cells ran on other CPUs ({listed}); this run's {len(todo)} cell(s) "
              f"run on this machine's {here['cpu']} ({here['cpu_capability']}): float32 numbers differ between CPU kernels, so "
              f"compare means over seeds, or rerun into another --results folder for bit-exact numbers",
              file=sys.stderr)


def artifact_time_metrics(cells: list, registry=None) -> list:
    """The record metrics that time the shared artifacts the cells need (as their
    resources declare them), for the results folder's suite.json."""
    registry = registry or default_registry()
    metrics = set()
    for cell in cells:
        config = cell["config"]
        protocol = registry.create("protocol", config["protocol"], config["settings"])
        for kind in protocol.needs(registry, config):
            resource = registry.resources.get(kind)
            if resource is not None and resource.time_metric:
                metrics.add(resource.time_metric)
    return sorted(metrics)


def run_suite(suite: Suite, options: RunOptions) -> RunSummary:
    started = time.time()
    registry = default_registry()
    resolve_device(options.device)
    if options.jobs < 1:
        raise AmrbenchError("--jobs must be at least 1")
    if options.threads is not None and options.threads < 1:
        raise AmrbenchError("--threads must be at least 1")
    cells = only_cells(expand(suite, registry), options.only)
    store = RecordStore(results_dir(suite, options) / "records.jsonl")
    stored = store.latest_ok()
    done = reused_keys(stored, options.rerun_before)
    reused = {k: stored[k] for k in done}
    check_mixed_precision_reuse(cells, reused, options.device, store.path)
    todo = [c for c in cells if c["key"] not in done]
    note_other_cpus(reused, todo, options, store.path)
    note_changed_data(todo, stored.values(), store.path)
    executor = registry.create("executor", options.executor, options.executor_params)
    if todo:
        preflight(suite, todo)
    errors = registry.call_reporters("amrbench_suite_start", suite=suite, cells=cells, done=done)
    produced = []
    def notify(cell):
        errors.extend(registry.call_reporters("amrbench_cell_start", cell=cell))

    for record in executor.run(todo, options.as_dict(), notify):
        store.append(record, supersede=options.rerun_before is not None)
        produced.append(record)
        errors += registry.call_reporters("amrbench_cell_done", record=record)
    errors += registry.call_reporters("amrbench_suite_done", suite=suite, records=produced)
    for error in dict.fromkeys(errors):
        print(f"amrbench: warning: {error}", file=sys.stderr)
    return RunSummary(len(cells), len(cells) - len(todo), produced, store, time.time() - started)
