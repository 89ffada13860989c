"""Every failed record reads the same, whoever built it: a plugin that raised inside
``runner.execute_cell``, the local executor giving up a cell (or the shared artifact it
needs) after its worker died, or the dask executor's driver. And the one torch-seeding
helper gives exactly the generator state the direct ``torch.manual_seed`` call gave.

The local executor runs its real give-up logic on an in-process pool whose every task
dies at once (as a ProcessPoolExecutor breaks when a worker is killed); the dask
driver's outcome is built from stand-in futures, without a cluster."""
import re
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import pytest
import torch

from amrbench import runner
from amrbench.api import Context, Protocol, derive_seed, seed_torch
from amrbench.registry import default_registry
from amrbench.store import SCHEMA_VERSION
from amrbench_plugins.executors import local


class Raising(Protocol):
    """Cells that raise; with ``artifact`` in the cell they need a shared artifact first."""

    name = "raising-probe"

    def needs(self, registry, cell):
        return ["probe-artifact"] if cell.get("artifact") else []

    def run_cell(self, ctx, cell):
        raise ValueError("probe failed on purpose\nsecond line")


class DyingPool:
    """Stands in for ``local.RestartingPool``: every task's worker dies at once."""

    def __init__(self, jobs):
        self.jobs = jobs

    def submit(self, task):
        future = Future()
        future.set_exception(BrokenProcessPool("a worker died"))
        return future

    def discard(self):
        pass

    close = discard


@pytest.fixture
def registered():
    registry = default_registry()
    registry.add(Raising)
    registry.add_resource("probe-artifact", lambda ctx: {"seed": ctx.cell["seed"]}, lambda ctx: {})
    return registry


def cell(name: str, **extra) -> dict:
    config = {"protocol": "raising-probe", "settings": {}, "seed": 3, **extra}
    return {"key": f"key-{name}", "suite": "probe-suite", "config": config,
            "labels": {"dataset": "-", "model": "-", "method": name, "budget": "-", "seed": 3}}


def options(tmp_path) -> dict:
    return {"device": "cpu", "jobs": 2, "cache": str(tmp_path / "artifacts"), "threads": 1}


def assert_reads_like(record: dict, reference: dict, error_start: str) -> None:
    assert set(record) == set(reference)
    assert record["status"] == "failed" and record["metrics"] is None and re.match(error_start, record["error"])
    assert record["schema_version"] == SCHEMA_VERSION and record["device"] == "cpu"
    assert record["env"] == reference["env"] and record["env"]["threads"] == 1


def test_a_plugin_failure_has_the_fields_of_a_finished_cell_plus_its_traceback(registered, tmp_path):
    record = runner.execute_cell(cell("raised"), options(tmp_path))
    assert record["error"] == "ValueError: probe failed on purpose"
    assert "raise ValueError" in record["traceback"] and record["pid"] > 0 and record["started_at"]
    assert record["schema_version"] == SCHEMA_VERSION and record["wall_time_s"] >= 0


def test_the_local_executors_given_up_cells_read_like_a_plugin_failure(registered, tmp_path, monkeypatch):
    reference = runner.execute_cell(cell("raised"), options(tmp_path))
    monkeypatch.setattr(local, "RestartingPool", DyingPool)
    executor = registered.create("executor", "local", {"retries": 0})
    records = {r["key"]: r for r in executor.run([cell("dies"), cell("needs", artifact=True)], options(tmp_path))}
    died, starved = records["key-dies"], records["key-needs"]
    # the cell and the artifact start together (the cell needs none), so the first death is
    # shared, proves nothing, and each reruns alone: the cell's second death gives it up
    assert_reads_like(died, reference, r"worker died 2 time\(s\) running this cell")
    assert died["started_at"] is not None and died["wall_time_s"] >= 0
    assert_reads_like(starved, reference, r"worker died 2 time\(s\) computing the shared artifact 'probe-artifact'")
    assert starved["pid"] is None and starved["traceback"] is None


class StandInFuture:
    """What the dask executor's ``_outcome`` reads of a finished ``distributed.Future``."""

    def __init__(self, exc):
        self.status, self._exc = "error", exc

    def exception(self):
        return self._exc

    def traceback(self):
        return self._exc.__traceback__


def test_the_dask_drivers_failed_cells_read_like_a_plugin_failure(registered, tmp_path):
    distributed = pytest.importorskip("distributed")
    from amrbench_plugins.executors import dask

    reference = runner.execute_cell(cell("raised"), options(tmp_path))
    killed = dask._outcome(StandInFuture(distributed.KilledWorker("k", None, 1)), cell("killed"), options(tmp_path), 1)
    assert_reads_like(killed, reference, r"worker died: its worker process died 2 time\(s\)")
    try:
        raise RuntimeError("lost in transit")
    except RuntimeError as exc:
        raised = dask._outcome(StandInFuture(exc), cell("raised"), options(tmp_path), 1)
    assert_reads_like(raised, reference, r"RuntimeError: lost in transit")
    assert "lost in transit" in raised["traceback"]


@pytest.mark.parametrize("tags", [("cell",), ("reconstruct", "4", 2), ("target", "init")])
def test_seed_torch_gives_the_generator_state_of_manual_seed_of_the_derived_seed(tags):
    ctx = Context(seed=11, device=torch.device("cpu"), cell={}, cache=None, registry=None)
    torch.manual_seed(derive_seed(11, *tags))
    expected = torch.rand(3)
    ctx.seed_torch(*tags)
    assert torch.equal(torch.rand(3), expected)
    seed_torch(11, *tags)
    assert torch.equal(torch.rand(3), expected)


def test_seed_torch_known_answer():
    """Pins the whole chain (derive_seed's hash, torch's CPU generator) to fixed numbers:
    what ``torch.manual_seed(derive_seed(0, "cell"))`` gave before the helper existed."""
    assert derive_seed(0, "cell") == 3239680412471460886
    seed_torch(0, "cell")
    assert torch.rand(3).tolist() == [0.11050015687942505, 0.988081693649292, 0.5215979814529419]
