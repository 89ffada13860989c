"""Benchmarks of the dask executor (on demand; needs ``amrbench[dask]``):

    python -m pytest tests/benchmarks/test_bench_dask.py -m benchmark --benchmark-enable -s

- scaling: a CPU-bound grid on a warm LocalCluster of 2 single-threaded workers vs 1
  (target speed-up >= 1.7x on an idle machine with >= 2 cores);
- engine: ``--executor dask --workers 2`` vs the local ``--jobs 2`` pool on the same grid,
  both end to end (process start included; target: within 10 %);
- overhead: cells of an "empty" protocol that measure nothing, on one warm worker: the
  harness + Dask cost per cell (target <= 20 ms).
Figures are printed and stored in the benchmark's extra_info. The wall-clock targets
need free cores: when one is missed while the machine was already busy before the test
(1-minute load average above the core count), the test is marked xfail with the
figures instead of failing.
"""
import logging
import os
import time

import pytest

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
import torch  # noqa: E402

from amrbench.registry import default_registry  # noqa: E402
from amrbench.runner import RunOptions  # noqa: E402
from amrbench.suite import expand, load_suite  # noqa: E402
from tests.conftest import fake_distribution  # noqa: E402

pytestmark = pytest.mark.benchmark

CPU_GRID = """
name: bench-dask
protocol: select
datasets:
  - name: toy
    params: {per_class_per_snr: 100, snr_values: [10, 18], length: 128}
methods: [uniform]
rates: [0.5]
models: [cnn1d]
seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
train: {epochs: 20, batch_size: 32}
"""

EMPTY_GRID = """
name: bench-empty
protocol: empty
datasets: [toy]
methods: [uniform]
models: [cnn1d]
repeats: 200
"""

EMPTY_PROTOCOL = """
    from amrbench.api import Protocol
    from amrbench.hookspecs import hookimpl


    class Empty(Protocol):
        '''Measures nothing: the per-cell cost of the harness and the executor.'''
        name = "empty"
        method_kind = "selector"
        budget_axis = None

        def run_cell(self, ctx, cell):
            return {"accuracy": 1.0}


    @hookimpl
    def amrbench_register(registry):
        registry.add(Empty)
"""


def _warm_up():
    from amrbench.registry import default_registry as registry

    import amrbench.runner  # noqa: F401

    registry()


class WarmCluster:
    """A LocalCluster whose workers have already imported torch and the registry."""

    def __init__(self, workers):
        with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
            self.cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None,
                                                    silence_logs=logging.ERROR)
        with distributed.Client(self.cluster) as client:
            client.run(_warm_up)

    def __enter__(self):
        return self.cluster.scheduler_address

    def __exit__(self, *exc):
        self.cluster.close()


def _cells(write_suite, text, name):
    return expand(load_suite(write_suite(text, name=name)))


def _run(executor, params, cells, tmp_path, **options):
    plugin = default_registry().create("executor", executor, params)
    started = time.perf_counter()
    records = list(plugin.run(cells, RunOptions(cache=str(tmp_path / "cache"), **options).as_dict()))
    elapsed = time.perf_counter() - started
    assert len(records) == len(cells) and all(r["status"] == "ok" for r in records), \
        [r["error"] for r in records if r["status"] != "ok"]
    return elapsed


def _report(benchmark, **figures):
    benchmark.extra_info.update(figures)
    print("\n" + "  ".join(f"{k}={v}" for k, v in figures.items()))


def _missed(message: str, load_before: float):
    cores = os.cpu_count() or 1
    if load_before > cores:
        pytest.xfail(f"{message}; not judged: the machine was busy (load {load_before:.1f} on {cores} cores)")
    pytest.fail(message)


def test_two_workers_vs_one(benchmark, write_suite, tmp_path):
    cells = _cells(write_suite, CPU_GRID, "grid.yaml")
    times, load = {}, os.getloadavg()[0]

    def measure():
        for workers in (1, 2):
            with WarmCluster(workers) as address:
                times[workers] = _run("dask", {"scheduler": address}, cells, tmp_path / str(workers))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    speedup = times[1] / times[2]
    _report(benchmark, cells=len(cells), one_worker_s=round(times[1], 2), two_workers_s=round(times[2], 2),
            speedup=round(speedup, 2), per_cell_s=round(times[1] / len(cells), 2), load_before=round(load, 2))
    if speedup < 1.7:
        _missed(f"2 workers only {speedup:.2f}x faster than 1 (target 1.7x)", load)


def test_dask_vs_local_pool(benchmark, write_suite, tmp_path):
    cells = _cells(write_suite, CPU_GRID, "grid.yaml")
    times, load = {}, os.getloadavg()[0]

    def measure():
        times["local"] = _run("local", {}, cells, tmp_path / "local", jobs=2)
        times["dask"] = _run("dask", {"workers": 2}, cells, tmp_path / "dask")

    benchmark.pedantic(measure, rounds=1, iterations=1)
    ratio = times["dask"] / times["local"]
    _report(benchmark, cells=len(cells), local_jobs2_s=round(times["local"], 2),
            dask_workers2_s=round(times["dask"], 2), dask_over_local=round(ratio, 3), load_before=round(load, 2))
    if ratio > 1.10:
        _missed(f"dask took {ratio:.2f}x the local pool's time (target <= 1.10x)", load)


def test_per_cell_overhead(benchmark, write_suite, tmp_path):
    root = fake_distribution(tmp_path / "site", "bench-empty-protocol", {"bench_empty": EMPTY_PROTOCOL},
                             {"bench-empty": "bench_empty"})
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root))
        cells = _cells(write_suite, EMPTY_GRID, "empty.yaml")
        times, load = {}, os.getloadavg()[0]

        def measure():
            threads = torch.get_num_threads()
            try:
                times["local"] = _run("local", {}, cells, tmp_path / "local", threads=1)
            finally:
                torch.set_num_threads(threads)
            with WarmCluster(1) as address:
                times["dask"] = _run("dask", {"scheduler": address}, cells, tmp_path / "dask")

        benchmark.pedantic(measure, rounds=1, iterations=1)
    per_cell_ms = 1000 * times["dask"] / len(cells)
    _report(benchmark, cells=len(cells), dask_per_cell_ms=round(per_cell_ms, 2),
            local_in_process_per_cell_ms=round(1000 * times["local"] / len(cells), 2), load_before=round(load, 2))
    if per_cell_ms > 20:
        _missed(f"{per_cell_ms:.1f} ms of overhead per cell (target <= 20 ms)", load)
