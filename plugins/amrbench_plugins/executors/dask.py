"""Dask executor: cells on a Dask distributed cluster (``--executor dask``, needs
``pip install "amrbench[dask]"``; job-queue clusters need ``amrbench[slurm]``).

Three ways to get workers (see docs/cluster.md):
- ``--workers N``: a LocalCluster of N worker processes, one thread each (torch set to
  one thread per cell, so N workers never oversubscribe the cores);
- ``--scheduler tcp://host:8786``: a running cluster (``dask scheduler`` and
  ``dask worker tcp://host:8786 --nthreads 1`` on each machine);
- ``--cluster FILE.yaml``: a dask-jobqueue cluster (``kind: slurm|pbs|lsf|sge|...`` and
  that class's keywords; ``minimum_jobs``/``maximum_jobs`` scale it adaptively, ``jobs``
  fixes the number of jobs; ``kind: local`` runs the job scripts here, to try a file).

The driver sends cell specs (small dicts), never arrays: each worker builds or loads its
data through ``runner.execute_cell``. Each distinct shared artifact (e.g. the full-data
scoring run of a (dataset, model, seed)) is one task; the cells that read it are
submitted when it completes, so it is computed once per cluster and read back from the
artifact cache, which must therefore lie on a filesystem every worker shares. Records
come back to the driver in completion order; only the driver appends them to the store.

A worker that dies mid-cell (killed, out of memory) costs the cell one try: Dask reruns
it on another worker up to ``retries`` times, then the cell is recorded as failed with
"worker died". A plugin that raises inside a cell is a failed record at once, never
retried. Before anything is submitted the workers' versions of amrbench and of every
plugin distribution are compared with the driver's; any difference stops the run.
"""
from __future__ import annotations

import logging
import os
import re
import socket
import sys
import traceback
from contextlib import ExitStack
from functools import lru_cache
from pathlib import Path

from amrbench.api import AmrbenchError, Executor, did_you_mean
from amrbench.hookspecs import hookimpl

INSTALL_HINT = 'pip install "amrbench[dask]"'
JOBQUEUE_HINT = 'pip install "amrbench[slurm]"'
CONNECT_TIMEOUT_S = 20  # the whole "scheduler unreachable" path stays under 30 s
# "local" runs the same job scripts as processes on this machine: a dry run of a YAML
JOBQUEUE_KINDS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "lsf": "LSFCluster", "sge": "SGECluster",
                  "htcondor": "HTCondorCluster", "moab": "MoabCluster", "oar": "OARCluster",
                  "local": "local.LocalCluster"}
SCALING_KEYS = ("minimum_jobs", "maximum_jobs", "jobs")


def _require_distributed() -> None:
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise AmrbenchError(f"--executor dask needs Dask distributed, which is not installed: {INSTALL_HINT}") from None


# --------------------------------------------------------------------------- versions
def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions() -> dict:
    """amrbench's version and that of every distribution providing ``amrbench`` entry
    points, as this process sees them (run on the driver and on every worker)."""
    from importlib.metadata import PackageNotFoundError, entry_points, version

    try:
        versions = {"amrbench": version("amrbench")}
    except PackageNotFoundError:
        versions = {"amrbench": "(not installed)"}
    for ep in entry_points(group="amrbench"):
        if ep.dist is not None:
            versions[_normalise(ep.dist.name)] = ep.dist.version
    return versions


@lru_cache(maxsize=1)
def _worker_versions() -> tuple:
    return tuple(sorted(installed_versions().items()))


def version_differences(here: dict, there: dict) -> list[str]:
    """``name THERE (here: HERE)`` for each distribution whose version differs."""
    out = []
    for name in sorted(set(here) | set(there)):
        if here.get(name) != there.get(name):
            out.append(f"{name} {there.get(name, 'not installed')} (here: {here.get(name, 'not installed')})")
    return out


def check_versions(client, here: dict) -> None:
    """Refuse to run when any worker's amrbench or plugin versions differ from ours."""
    found = client.run(installed_versions, on_error="return")
    groups: dict[tuple, list] = {}
    for address, there in sorted(found.items()):
        if isinstance(there, BaseException):  # e.g. amrbench is not installed there
            diff = [f"cannot load amrbench ({type(there).__name__}: {there})"]
        else:
            diff = version_differences(here, there)
        if diff:
            groups.setdefault(tuple(diff), []).append(address)
    if groups:
        parts = []
        for diff, addresses in groups.items():
            shown = ", ".join(addresses[:3]) + (f" and {len(addresses) - 3} more" if len(addresses) > 3 else "")
            parts.append(f"on {shown}: {'; '.join(diff)}")
        raise AmrbenchError("the Dask workers run other versions of amrbench or its plugins than this driver; "
                            "install the same versions everywhere and restart the workers. " + " | ".join(parts))


# --------------------------------------------------------------------------- worker side
def _worker_identity() -> tuple[str, str, object]:
    try:
        from distributed import get_worker

        worker = get_worker()
        return worker.address, socket.gethostname(), worker.name
    except ValueError:  # not inside a worker (never in a real run)
        return "(driver)", socket.gethostname(), None


def _options_here(options: dict, name) -> dict:
    """Per-worker options: on a local GPU cluster, worker i uses GPU i (mod count)."""
    if options.get("_gpu_by_worker_name") and options.get("device") == "cuda" and isinstance(name, int):
        import torch

        count = torch.cuda.device_count()
        if count > 1:
            return {**options, "device": f"cuda:{name % count}"}
    return options


def run_cell(cell: dict, options: dict) -> dict:
    """The task each cell becomes: ``runner.execute_cell`` plus the worker's name."""
    from amrbench import runner

    address, host, name = _worker_identity()
    expected = options.get("_versions")
    diff = version_differences(expected, dict(_worker_versions())) if expected else []
    if diff:
        record = runner.failed_record(cell, options, "version mismatch: this worker runs " + "; ".join(diff))
    else:
        record = runner.execute_cell(cell, _options_here(options, name))
    record.update(worker=address, host=host)
    if record.get("status") != "ok" and record.get("error"):
        record["error"] = f"{record['error']} [worker {address}, host {host}]"
    return record


def run_artifact(cell: dict, kind: str, options: dict):
    """The task each shared artifact becomes; an error is returned, not raised (the
    cells that need the artifact meet it again and record it)."""
    from amrbench import runner

    _, _, name = _worker_identity()
    return runner.execute_artifact(cell, kind, _options_here(options, name))


def _set_allowed_failures(value: int, dask_scheduler=None) -> int:
    previous = dask_scheduler.allowed_failures
    dask_scheduler.allowed_failures = value
    return previous


# --------------------------------------------------------------------------- clusters
def _check_reachable(address: str) -> None:
    """Fail fast, naming the address, when nothing listens there (a refused TCP
    connection would otherwise be retried until the client's timeout)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
    except ValueError as exc:
        raise AmrbenchError(f"--scheduler {address!r}: not a Dask address ({exc}); e.g. tcp://host:8786") from None
    if scheme not in ("tcp", "tls"):
        return
    try:
        host, port = parse_host_port(location, 8786)
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S / 2).close()
    except (OSError, ValueError) as exc:
        raise AmrbenchError(f"--scheduler {address}: cannot reach the Dask scheduler ({exc}); start one with "
                            f"`dask scheduler` and give its address (tcp://HOST:8786)") from None


def load_cluster_file(path: str, device: str = "cpu") -> tuple[str, dict, dict]:
    """Read a dask-jobqueue YAML: (class name, its keywords, scaling). Keys: ``kind``
    (slurm, pbs, lsf, sge, htcondor, moab, oar; local runs the jobs here), the class's keywords (cores, memory,
    walltime, queue, account, job_extra_directives, processes, ...) and either
    ``minimum_jobs``/``maximum_jobs`` (adaptive) or ``jobs`` (fixed)."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise AmrbenchError(f"--cluster {path}: file not found; see examples/slurm.yaml")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise AmrbenchError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise AmrbenchError(f"{path}: must be a mapping of dask-jobqueue keywords with a 'kind:'")
    kwargs = dict(data)
    kind = str(kwargs.pop("kind", "") or "").lower()
    if kind not in JOBQUEUE_KINDS:
        raise AmrbenchError(f"{path}: kind: {kind or '(missing)'!r} is not a job queue"
                            f"{did_you_mean(kind, JOBQUEUE_KINDS)}")
    scaling = {k: kwargs.pop(k) for k in SCALING_KEYS if k in kwargs}
    for key, value in scaling.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise AmrbenchError(f"{path}: {key}: must be a non-negative integer, got {value!r}")
    if "jobs" in scaling and ({"minimum_jobs", "maximum_jobs"} & set(scaling)):
        raise AmrbenchError(f"{path}: give either jobs (fixed) or minimum_jobs/maximum_jobs (adaptive), not both")
    if not scaling:
        raise AmrbenchError(f"{path}: say how many jobs: maximum_jobs (adaptive, with minimum_jobs) or jobs (fixed)")
    if "minimum_jobs" in scaling and "maximum_jobs" not in scaling:
        raise AmrbenchError(f"{path}: minimum_jobs needs maximum_jobs")
    if scaling.get("minimum_jobs", 0) > scaling.get("maximum_jobs", sys.maxsize):
        raise AmrbenchError(f"{path}: minimum_jobs exceeds maximum_jobs")
    # one single-threaded worker process per core unless the file says otherwise
    if "cores" in kwargs and "processes" not in kwargs:
        kwargs["processes"] = kwargs["cores"]
    if device.startswith("cuda"):
        extra = list(kwargs.get("worker_extra_args") or [])
        if "--resources" not in extra:
            kwargs["worker_extra_args"] = extra + ["--resources", "GPU=1"]
    return JOBQUEUE_KINDS[kind], kwargs, scaling


def build_jobqueue_cluster(path: str, device: str = "cpu"):
    """The dask-jobqueue cluster a YAML describes (its scheduler runs in this process;
    no job is submitted until it is scaled)."""
    import importlib

    try:
        import dask_jobqueue
    except ImportError:
        raise AmrbenchError(f"--cluster needs dask-jobqueue, which is not installed: {JOBQUEUE_HINT}") from None
    name, kwargs, _ = load_cluster_file(path, device)
    module, _, cls = name.rpartition(".")
    owner = importlib.import_module(f"dask_jobqueue.{module}") if module else dask_jobqueue
    try:
        return getattr(owner, cls)(silence_logs="error", **kwargs)
    except (TypeError, ValueError) as exc:
        raise AmrbenchError(f"{path}: {name} rejected the settings ({exc})") from None


# --------------------------------------------------------------------------- executor
class DaskExecutor(Executor):
    """Runs cells on a Dask cluster: local (--workers N), a scheduler, or Slurm/PBS/... jobs."""

    name = "dask"
    defaults = {"workers": None, "scheduler": None, "cluster": None, "retries": 2}

    def __init__(self, **params):
        super().__init__(**params)
        _require_distributed()
        p = self.params
        for key in ("workers", "retries"):
            value = p[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < (1 if key == "workers" else 0)):
                raise AmrbenchError(f"--{key} {value!r}: must be an integer >= {1 if key == 'workers' else 0}")
        chosen = [f"--{k}" for k in ("workers", "scheduler", "cluster") if p[k] is not None]
        if len(chosen) > 1:
            raise AmrbenchError(f"{' and '.join(chosen)}: give one way to get Dask workers (--workers N for a local "
                                f"cluster, --scheduler ADDRESS or --cluster FILE)")
        if p["cluster"] is not None:
            load_cluster_file(p["cluster"])
            try:
                import dask_jobqueue  # noqa: F401
            except ImportError:
                raise AmrbenchError(f"--cluster needs dask-jobqueue, which is not installed: {JOBQUEUE_HINT}") from None
        if p["scheduler"] is not None:
            _check_reachable(str(p["scheduler"]))

    # -- connecting
    def _connect(self, stack: ExitStack, options: dict):
        import dask
        from distributed import Client, LocalCluster

        p, device = self.params, options.get("device", "cpu")
        config = {"distributed.scheduler.allowed-failures": int(p["retries"]),
                  # one task per worker thread at a time: a dying worker takes only its own cell with it
                  "distributed.scheduler.worker-saturation": 1.0,
                  # a worker's task thread on glibc's main heap: per-thread heaps end at 64 MiB,
                  # so larger activations would be mapped anew every step (amrbench.allocator;
                  # figures: docs/cluster.md)
                  "distributed.nanny.pre-spawn-environ.MALLOC_ARENA_MAX": 1}
        if p["scheduler"] is not None:
            address = str(p["scheduler"])
            try:
                client = stack.enter_context(Client(address, timeout=f"{CONNECT_TIMEOUT_S}s"))
            except (OSError, TimeoutError) as exc:
                raise AmrbenchError(f"--scheduler {address}: cannot reach the Dask scheduler ({exc}); start one "
                                    f"with `dask scheduler` and give its address") from None
            if not client.scheduler_info()["workers"]:
                print(f"amrbench: waiting for workers to join {address} (`dask worker {address} --nthreads 1`)",
                      file=sys.stderr)
                try:
                    client.wait_for_workers(1, timeout=120)
                except (TimeoutError, OSError):
                    raise AmrbenchError(f"--scheduler {address}: no worker joined within 120 s; start some with "
                                        f"`dask worker {address} --nthreads 1`") from None
            return client
        with dask.config.set(config):
            if p["cluster"] is not None:
                cluster = stack.enter_context(build_jobqueue_cluster(p["cluster"], device))
                _, _, scaling = load_cluster_file(p["cluster"], device)
                if "jobs" in scaling:
                    cluster.scale(jobs=scaling["jobs"])
                else:  # at least one job: the versions are checked on a worker before anything is submitted
                    cluster.adapt(minimum_jobs=max(1, scaling.get("minimum_jobs", 0)),
                                  maximum_jobs=max(1, scaling["maximum_jobs"]))
                client = stack.enter_context(Client(cluster))
                print(f"amrbench: waiting for the first {type(cluster).__name__} worker to start "
                      f"(scheduler {cluster.scheduler_address})", file=sys.stderr)
                client.wait_for_workers(1)
                return client
            gpu = device.startswith("cuda")
            jobs = int(options.get("jobs") or 1)
            workers = p["workers"] or (jobs if jobs > 1 else None)
            if workers is None:
                import torch

                workers = max(1, torch.cuda.device_count()) if gpu else (os.cpu_count() or 1)
            cluster = stack.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.ERROR, resources={"GPU": 1} if gpu else None))
            return stack.enter_context(Client(cluster))

    def run(self, cells, options, notify=None):
        if not cells:
            return
        from amrbench import runner
        from amrbench.store import ArtifactCache

        here = installed_versions()
        cache = ArtifactCache(options.get("cache")).root.expanduser().resolve()
        opts = {**options, "cache": str(cache), "threads": runner.cell_threads(options), "_versions": here,
                "_gpu_by_worker_name": self.params["scheduler"] is None and self.params["cluster"] is None}
        plan = _plan(cells, opts)
        with ExitStack() as stack:
            client = self._connect(stack, options)
            check_versions(client, here)
            previous = client.run_on_scheduler(_set_allowed_failures, int(self.params["retries"]))
            try:
                yield from self._stream(client, cells, plan, opts, notify)
            finally:
                try:
                    client.run_on_scheduler(_set_allowed_failures, previous)
                except Exception:
                    pass

    def _stream(self, client, cells, plan, opts, notify):
        from distributed import as_completed

        from amrbench import progress, runner

        artifacts, needs = plan
        retries = int(self.params["retries"])
        resources = {"GPU": 1} if str(opts.get("device", "cpu")).startswith("cuda") else None
        waiting = {cell["key"]: set(needs[cell["key"]]) for cell in cells}
        dependents: dict = {}
        for cell in cells:
            for akey in needs[cell["key"]]:
                dependents.setdefault(akey, []).append(cell)
        doomed: dict = {}  # cell key -> why its artifact could not be computed
        what: dict = {}  # future -> ("artifact", akey) | ("cell", cell)
        stream = as_completed()

        def submit_cell(cell):
            if notify:
                notify(cell)
            future = client.submit(run_cell, cell, opts, key=f"amrbench-cell-{cell['key']}", resources=resources,
                                   retries=0)
            what[future] = ("cell", cell)
            stream.add(future)

        for akey, (cell, kind) in artifacts.items():
            progress.artifact_started(cell, kind)
            future = client.submit(run_artifact, cell, kind, opts, key=f"amrbench-{kind}-{akey[1]}",
                                   resources=resources, priority=10, retries=0)
            what[future] = ("artifact", akey)
            stream.add(future)
        for cell in cells:
            if not waiting[cell["key"]]:
                submit_cell(cell)

        for future in stream:
            role, item = what.pop(future)
            if role == "artifact":
                problem = _died(future, retries)
                progress.artifact_done(*artifacts[item], problem or (future.result() if future.status == "finished"
                                                                     else str(future.exception())))
                for cell in dependents.get(item, []):
                    if problem:
                        doomed.setdefault(cell["key"], f"{problem} while computing the shared artifact {item[0]!r}")
                    waiting[cell["key"]].discard(item)
                    if not waiting[cell["key"]]:
                        if cell["key"] in doomed:
                            if notify:
                                notify(cell)
                            yield runner.failed_record(cell, opts, doomed[cell["key"]])
                        else:
                            submit_cell(cell)
            else:
                yield _outcome(future, item, opts, retries)
            future.release()


def _plan(cells: list, options: dict) -> tuple[dict, dict]:
    """The distinct shared artifacts (``runner.prerequisites``) and, per cell, the ones it
    waits on. Artifact keys never depend on the device, so the driver needs no GPU."""
    from amrbench import resources, runner
    from amrbench.cache import stable_hash

    local = {**options, "device": "cpu"}
    artifacts, needs = {}, {}
    for cell in cells:
        needs[cell["key"]] = []
        for representative, kind in runner.prerequisites([cell], local):
            config = resources.artifact_config(runner.make_context(cell["config"], local), kind)
            akey = (kind, stable_hash(config, 24))
            artifacts.setdefault(akey, (representative, kind))
            needs[cell["key"]].append(akey)
    return artifacts, needs


def _died(future, retries: int):
    """The "worker died" reason when a task was lost with its workers, else None."""
    from distributed import KilledWorker

    if future.status != "error":
        if future.status in ("cancelled", "lost"):
            _lost(future)
        return None
    exc = future.exception()
    if isinstance(exc, KilledWorker):
        last = getattr(exc.last_worker, "address", "?")
        return (f"worker died: its worker process died {retries + 1} time(s) (killed or out of memory; last on "
                f"{last}); gave up after {retries} retr{'y' if retries == 1 else 'ies'}")
    return None


def _lost(future):
    raise AmrbenchError(f"lost the connection to the Dask scheduler (task {future.key!r} {future.status}); "
                        f"finished cells are stored, run the same command again to resume (a stopped --rerun: "
                        f"with --rerun-before and the time it printed)")


def _outcome(future, cell: dict, opts: dict, retries: int) -> dict:
    from amrbench import runner

    if future.status == "finished":
        return future.result()
    if future.status in ("cancelled", "lost"):
        _lost(future)
    died = _died(future, retries)
    if died:
        return runner.failed_record(cell, opts, died)
    exc = future.exception()
    return runner.failed_record(cell, opts, runner.error_line(exc),
                                "".join(traceback.format_exception(type(exc), exc, future.traceback())))


@hookimpl
def amrbench_register(registry):
    registry.add(DaskExecutor)
