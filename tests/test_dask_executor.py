"""The dask executor on a real Dask engine (LocalCluster worker processes; no mocks).

Skipped without the extra: ``pip install ".[dask,slurm]"``. One 2-worker cluster is
shared by the module (its workers see the test plugins below because spawned workers
inherit the driver's sys.path); the LocalCluster path itself is exercised through the
CLI with ``--workers 2``.
"""
import json
import logging
import os
import socket
import sys
import time

import pytest

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
import torch  # noqa: E402

from amrbench.api import AmrbenchError  # noqa: E402
from amrbench.cli import main  # noqa: E402
from amrbench.store import ArtifactCache, RecordStore  # noqa: E402
from tests.conftest import REPO, TINY_SUITE, fake_distribution  # noqa: E402

PLUGINS = """
    import os
    from pathlib import Path

    from amrbench.api import Dataset, Selection, Selector
    from amrbench.hookspecs import hookimpl
    from amrbench_plugins.select.selection import random_per_class


    class Phoenix(Selector):
        '''Kills its worker process the first time it runs seed 0 at rate 0.25.'''
        name = "phoenix"
        defaults = {"marker": None}

        def select(self, ctx, train, budget):
            marker = Path(self.params["marker"])
            if ctx.seed == 0 and budget.rate == 0.25 and not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)
            return Selection(random_per_class(ctx.rng("phoenix"), train, budget))


    class Doomed(Selector):
        '''Kills its worker process every time.'''
        name = "doomed"

        def select(self, ctx, train, budget):
            os._exit(1)


    class Exploding(Selector):
        '''Logs each call, then raises.'''
        name = "exploding"
        defaults = {"log": None}

        def select(self, ctx, train, budget):
            with open(self.params["log"], "a") as f:
                f.write(f"{ctx.seed}\\n")
            raise ValueError("selector exploded on purpose")


    class OnDisk(Dataset):
        '''Reads a file at a path.'''
        name = "on-disk"
        defaults = {"path": None}

        def load(self, seed, snr=None):
            open(self.params["path"], "rb").close()
            raise RuntimeError("unreachable in these tests")


    @hookimpl
    def amrbench_register(registry):
        for cls in (Phoenix, Doomed, Exploding, OnDisk):
            registry.add(cls)
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two single-threaded worker processes that see the test plugins."""
    root = fake_distribution(tmp_path_factory.mktemp("site"), "dask-test-plugins", {"dask_test_plugins": PLUGINS},
                             {"dask-test": "dask_test_plugins"})
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root))
        mp.setenv("AMRBENCH_CACHE", str(tmp_path_factory.mktemp("worker-cache")))
        with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
            with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                                          silence_logs=logging.ERROR) as local:
                yield local


def records(path):
    return RecordStore(path).read()


def metrics_without_times(rs):
    return {r["key"]: {k: v for k, v in r["metrics"].items() if not k.endswith("time_s")} for r in rs}


def test_local_cluster_gives_the_serial_numbers_and_computes_dynamics_once(write_suite, tmp_path, capsys):
    suite = write_suite()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the serial baseline, without thread contention on a shared CI box
    try:
        assert main(["run", str(suite), "--results", str(tmp_path / "serial"), "--cache", str(tmp_path / "c1")]) == 0
    finally:
        torch.set_num_threads(threads)
    cache = tmp_path / "c2"
    assert main(["run", str(suite), "--executor", "dask", "--workers", "2", "--results", str(tmp_path / "dask"),
                 "--cache", str(cache)]) == 0
    serial, dask_run = records(tmp_path / "serial" / "records.jsonl"), records(tmp_path / "dask" / "records.jsonl")
    assert len(dask_run) == 8 and all(r["status"] == "ok" for r in dask_run)
    assert metrics_without_times(serial) == metrics_without_times(dask_run)
    assert all(r["worker"].startswith("tcp://") and r["host"] for r in dask_run)
    # herding needs the full-data scoring run: computed once per (dataset, model, seed), 2 seeds
    assert ArtifactCache(cache).computations("dynamics") == 2
    assert all(len(log.read_text().splitlines()) == 1 for log in (cache / "dynamics").glob("*.log"))
    capsys.readouterr()
    started = time.time()
    assert main(["run", str(suite), "--executor", "dask", "--workers", "2", "--results", str(tmp_path / "dask")]) == 0
    assert "8 already done, 0 run" in capsys.readouterr().err and time.time() - started < 20  # no cluster started
    assert main(["table", str(suite), "--results", str(tmp_path / "dask")]) == 0
    assert "| herding" in capsys.readouterr().out


def test_local_cluster_workers_keep_every_thread_on_one_malloc_arena():
    from contextlib import ExitStack

    from amrbench.registry import default_registry

    executor = default_registry().create("executor", "dask", {"workers": 1})
    with ExitStack() as stack:
        client = executor._connect(stack, {"device": "cpu"})
        arenas = client.run(lambda: os.environ.get("MALLOC_ARENA_MAX"))
    assert list(arenas.values()) == ["1"]


def test_a_killed_worker_reruns_its_cell_then_gives_up_after_the_retries(cluster, write_suite, tmp_path, capsys):
    marker = tmp_path / "killed-once"
    phoenix = f"{{name: phoenix, params: {{marker: '{marker}'}}}}"
    suite = write_suite(TINY_SUITE.replace("[uniform, herding]", f"[uniform, {phoenix}]")
                        .replace("seeds: [0, 1]", "seeds: [0]"))
    out = tmp_path / "out"
    assert main(["run", str(suite), "--executor", "dask", "--scheduler", cluster.scheduler_address,
                 "--results", str(out)]) == 0
    stored = records(out / "records.jsonl")
    keys = [r["key"] for r in stored]
    assert marker.exists(), "the phoenix plugin should have killed a worker"
    assert len(keys) == 4 and len(set(keys)) == 4 and all(r["status"] == "ok" for r in stored)

    one_cell = TINY_SUITE.replace("rates: [0.25, 0.5]", "rates: [0.5]").replace("seeds: [0, 1]", "seeds: [0]")
    doomed = write_suite(one_cell.replace("[uniform, herding]", "[doomed]"), name="doomed.yaml")
    out = tmp_path / "doomed"
    capsys.readouterr()
    assert main(["run", str(doomed), "--executor", "dask", "--scheduler", cluster.scheduler_address, "--retries", "1",
                 "--results", str(out)]) == 1
    stored = records(out / "records.jsonl")
    assert len(stored) == 1 and stored[0]["status"] == "failed"
    assert stored[0]["error"].startswith("worker died: its worker process died 2 time(s)")
    assert stored[0]["error"].endswith("gave up after 1 retry")


def test_plugin_errors_fail_at_once_and_unreadable_paths_name_the_worker(cluster, write_suite, tmp_path):
    from amrbench.registry import default_registry
    from amrbench.runner import RunOptions
    from amrbench.suite import expand, load_suite

    log, missing = tmp_path / "calls.log", tmp_path / "nowhere" / "signals.npz"
    text = (TINY_SUITE.replace("[uniform, herding]", f"[{{name: exploding, params: {{log: '{log}'}}}}]")
            .replace("rates: [0.25, 0.5]", "rates: [0.5]")
            .replace("datasets:\n", f"datasets:\n  - {{name: on-disk, params: {{path: '{missing}'}}}}\n"))
    suite = load_suite(write_suite(text))
    cells = expand(suite)
    executor = default_registry().create("executor", "dask", {"scheduler": cluster.scheduler_address})
    started = []
    produced = list(executor.run(cells, RunOptions(cache=str(tmp_path / "cache")).as_dict(), started.append))
    assert sorted(c["key"] for c in started) == sorted(c["key"] for c in cells)
    assert sorted(r["key"] for r in produced) == sorted(c["key"] for c in cells)
    assert all(r["status"] == "failed" for r in produced)
    by_dataset = {r["config"]["dataset"]["name"]: r for r in produced}
    assert by_dataset["toy"]["error"].startswith("ValueError: selector exploded on purpose [worker tcp://")
    unreadable = by_dataset["on-disk"]["error"]
    assert unreadable.startswith("FileNotFoundError") and str(missing) in unreadable
    assert f"[worker {by_dataset['on-disk']['worker']}, host " in unreadable
    assert sorted(log.read_text().split()) == ["0", "1"]  # each raising cell ran once: no retry


def test_workers_with_other_plugin_versions_are_refused_before_anything_runs(cluster, write_suite, tmp_path, capsys):
    extra = fake_distribution(tmp_path / "extra", "extra-amr-plugins", {"extra_amr_plugins": "X = 1\n"},
                              {"extra-amr": "extra_amr_plugins"})
    with distributed.Client(cluster.scheduler_address) as client:
        client.run(lambda path: sys.path.insert(0, path), str(extra))
        try:
            assert main(["run", str(write_suite()), "--executor", "dask", "--scheduler", cluster.scheduler_address,
                         "--results", str(tmp_path / "out")]) == 2
        finally:
            client.run(lambda path: sys.path.remove(path), str(extra))
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "other versions of amrbench or its plugins" in err and "extra-amr-plugins 0.1 (here: not installed)" in err
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_an_unreachable_scheduler_is_a_fast_one_line_error(write_suite, capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    started = time.time()
    assert main(["run", str(write_suite()), "--executor", "dask", "--scheduler", address]) == 2
    assert time.time() - started < 30
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and address in err and "Traceback" not in err


def test_without_dask_the_run_says_how_to_install_it(write_suite, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    assert main(["run", str(write_suite()), "--executor", "dask"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "amrbench[dask]"' in err
    assert main(["list", "executors"]) == 0
    assert "dask" in capsys.readouterr().out


def test_slurm_job_script_from_the_example_file(tmp_path):
    pytest.importorskip("dask_jobqueue")
    from amrbench_plugins.executors.dask import build_jobqueue_cluster, load_cluster_file

    name, kwargs, scaling = load_cluster_file(REPO / "examples" / "slurm.yaml")
    assert name == "SLURMCluster" and scaling == {"minimum_jobs": 0, "maximum_jobs": 10}
    sample = tmp_path / "slurm.yaml"  # the example, with the in-process scheduler on loopback
    sample.write_text((REPO / "examples" / "slurm.yaml").read_text()
                      + "scheduler_options: {host: 127.0.0.1, dashboard_address: ':0'}\n")
    for device in ("cpu", "cuda"):
        with build_jobqueue_cluster(sample, device) as slurm:
            script = slurm.job_script()
        for line in ("#SBATCH -p cpu", "#SBATCH -A my-project", "#SBATCH --cpus-per-task=8", "#SBATCH -t 04:00:00",
                     "#SBATCH --constraint=avx2", "--nthreads 1", "--nworkers 8",
                     "export MALLOC_ARENA_MAX=1"):
            assert line in script
        assert ("--resources GPU=1" in script) == (device == "cuda")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: slurmm\ncores: 2\nmaximum_jobs: 1\n")
    with pytest.raises(AmrbenchError, match="did you mean 'slurm'"):
        load_cluster_file(bad)
    bad.write_text("kind: slurm\ncores: 2\nwalltimee: '01:00:00'\njobs: 1\n")
    with pytest.raises(AmrbenchError, match="SLURMCluster rejected the settings"):
        build_jobqueue_cluster(bad)


@pytest.mark.timeout(300)  # the driver waits for the first job as long as a queue takes
def test_a_jobqueue_cluster_runs_the_cells(write_suite, tmp_path):
    """The --cluster path end to end, with dask-jobqueue's "local" kind: the job scripts
    run as processes here, scaled adaptively from minimum_jobs: 0."""
    pytest.importorskip("dask_jobqueue")
    spec = tmp_path / "jobs.yaml"
    # the jobs' workers are fresh interpreters: give them this driver's sys.path (the
    # module's test plugins may be on it), or the version check rightly refuses them
    python = json.dumps(f"env PYTHONPATH={os.pathsep.join(p for p in sys.path if p)} {sys.executable}")
    spec.write_text(f"kind: local\ncores: 1\nmemory: 2GB\nminimum_jobs: 0\nmaximum_jobs: 1\npython: {python}\n"
                    "scheduler_options: {host: 127.0.0.1, dashboard_address: ':0'}\n")
    suite = write_suite(TINY_SUITE.replace("[uniform, herding]", "[uniform]").replace("rates: [0.25, 0.5]",
                                                                                      "rates: [0.5]"))
    out = tmp_path / "out"
    assert main(["run", str(suite), "--executor", "dask", "--cluster", str(spec), "--results", str(out)]) == 0
    stored = records(out / "records.jsonl")
    assert len(stored) == 2 and all(r["status"] == "ok" and r["worker"].startswith("tcp://") for r in stored)
