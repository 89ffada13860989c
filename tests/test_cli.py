import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from amrbench.cli import main
from amrbench.store import RecordStore
from tests.conftest import REPO, TINY_SUITE, fake_distribution, run_cli


def records(path):
    return RecordStore(path).read()


def test_run_writes_records_and_table_then_resumes_without_work(write_suite, tmp_path, capsys):
    suite = write_suite()
    out = tmp_path / "out"
    assert main(["run", str(suite), "--results", str(out)]) == 0
    first = records(out / "records.jsonl")
    assert len(first) == 8 and all(r["status"] == "ok" for r in first)
    r = first[0]
    assert set(r) >= {"key", "config", "labels", "metrics", "wall_time_s", "env", "device", "status"}
    assert r["env"]["cpu"] and r["env"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert 0 <= r["metrics"]["accuracy"] <= 1 and r["metrics"]["per_snr"] and len(r["metrics"]["confusion"]) == 4
    assert "| uniform" in (out / "table.md").read_text()
    capsys.readouterr()
    assert main(["run", str(suite), "--results", str(out)]) == 0
    assert "8 already done, 0 run" in capsys.readouterr().err
    assert len(records(out / "records.jsonl")) == 8

    assert main(["table", str(suite), "--results", str(out), "--format", "latex"]) == 0
    assert r"\toprule" in capsys.readouterr().out
    assert main(["run", str(suite), "--results", str(out), "--dry-run"]) == 0
    assert "8 cells, 8 already done, 0 to run" in capsys.readouterr().out


def test_a_block_runs_only_its_cells_and_the_table_shows_every_stored_one(write_suite, tmp_path, capsys):
    """--only and --seeds run one block (dataset x model x seed); the table written at the
    end still holds every stored cell of the profile, and the blocks add up to the grid."""
    suite = write_suite(TINY_SUITE.replace("methods: [uniform, herding]",
                                           "methods: [uniform, {name: herding, label: Herding}]"))
    out = tmp_path / "out"
    assert main(["run", str(suite), "--results", str(out), "--seeds", "0", "--only", "method=herding"]) == 0
    first = records(out / "records.jsonl")
    assert {(r["labels"]["method"], r["labels"]["seed"]) for r in first} == {("Herding", 0)} and len(first) == 2
    assert main(["run", str(suite), "--results", str(out), "--seeds", "1", "--only", "method=uniform,HERDING",
                 "--only", "budget=25%"]) == 0
    assert len(records(out / "records.jsonl")) == 4
    table = (out / "table.md").read_text()
    assert "(n=1)" in table and "| Herding " in table and "| uniform " in table  # seed 0's cells are in it too
    capsys.readouterr()
    assert main(["run", str(suite), "--results", str(out), "--dry-run"]) == 0
    assert "8 cells, 4 already done, 4 to run" in capsys.readouterr().out
    assert main(["run", str(suite), "--results", str(out), "--only", "budget=0.5"]) == 2
    assert "--only budget=0.5: no cell of the grid has that budget" in capsys.readouterr().err
    assert main(["run", str(suite), "--results", str(out), "--only", "seed=1"]) == 2
    assert "unknown axis" in capsys.readouterr().err


def test_only_takes_a_label_with_a_comma_whole(write_suite, tmp_path, capsys):
    suite = write_suite(TINY_SUITE.replace("methods: [uniform, herding]",
                                           "methods: [uniform, {name: herding, label: 'Herding, nearest'}]"))
    out = tmp_path / "out"
    assert main(["run", str(suite), "--results", str(out), "--dry-run", "--only", "method=herding, NEAREST"]) == 0
    assert "4 cells, 0 already done, 4 to run" in capsys.readouterr().out
    assert main(["run", str(suite), "--results", str(out), "--dry-run", "--only", "method=uniform",
                 "--only", "method=Herding, nearest", "--only", "budget=25%"]) == 0
    assert "4 cells, 0 already done, 4 to run" in capsys.readouterr().out
    assert main(["run", str(suite), "--results", str(out), "--dry-run",
                 "--only", "method=uniform,Herding, nearest"]) == 2
    assert ("--only method=nearest: no cell of the grid has that method (a label holding a comma goes in an --only "
            "of its own) (did you mean 'Herding, nearest'?)") in capsys.readouterr().err


def test_rerun_runs_stored_cells_again_and_the_new_records_supersede_the_old(write_suite, tmp_path, capsys):
    suite = write_suite()
    out = tmp_path / "out"
    assert main(["run", str(suite), "--results", str(out), "--seeds", "0"]) == 0
    path = out / "records.jsonl"
    first = records(path)
    real = {r["key"]: r["metrics"]["accuracy"] for r in first}
    # doctor herding's stored accuracies: a rerun must replace them in the table
    path.write_text("".join(json.dumps({**r, "metrics": {**r["metrics"], "accuracy": 0.0123}}
                                       if r["labels"]["method"] == "herding" else r) + "\n" for r in first))
    capsys.readouterr()
    assert main(["run", str(suite), "--results", str(out), "--seeds", "0", "--only", "method=herding", "--rerun",
                 "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "2 cells, 0 already done, 2 to run (2 of them again: --rerun)" in printed and printed.count(" rerun ") == 2
    assert main(["run", str(suite), "--results", str(out), "--seeds", "0", "--only", "method=herding", "--rerun"]) == 0
    after = records(path)
    assert len(after) == len(first) + 2  # the superseded records stay
    latest = RecordStore(path).latest()
    assert {k: r["metrics"]["accuracy"] for k, r in latest.items()} == real  # same seed, same numbers
    assert "1.23" not in (out / "table.md").read_text()


def test_a_stopped_rerun_resumes_with_rerun_before(write_suite, tmp_path, capsys):
    """--rerun-before TIME runs the stored cells whose latest record started before TIME:
    the cells a stopped rerun had not redone yet, and no others."""
    suite = write_suite()
    out = tmp_path / "out"
    assert main(["run", str(suite), "--results", str(out), "--seeds", "0"]) == 0
    path = out / "records.jsonl"
    first = records(path)
    # as if a rerun started at 2021 had redone uniform's cells and was stopped before herding's
    path.write_text("".join(json.dumps({**r, "started_at": "2020-06-01T00:00:00+0000"}
                                       if r["labels"]["method"] == "herding" else r) + "\n" for r in first))
    capsys.readouterr()
    assert main(["run", str(suite), "--results", str(out), "--seeds", "0", "--rerun-before", "2021-01-01T00:00:00"]) == 0
    assert "2 already done, 2 run" in capsys.readouterr().err
    rerun = records(path)[len(first):]
    assert sorted(r["labels"]["method"] for r in rerun) == ["herding", "herding"]
    assert main(["run", str(suite), "--results", str(out), "--seeds", "0", "--rerun-before", "2021-01-01T00:00:00"]) == 0
    assert len(records(path)) == len(first) + 2  # resumed: nothing left to redo
    assert main(["run", str(suite), "--results", str(out), "--rerun-before", "yesterday"]) == 2
    assert "--rerun-before 'yesterday': not a time" in capsys.readouterr().err


def _as_if_run_on(path, device):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**r, "device": device}) + "\n" for r in lines))


def test_amp_cells_of_the_other_precision_are_not_reused(write_suite, tmp_path, capsys):
    # float32 cells may come from any device; amp cells are bfloat16 on the CPU, float16 on CUDA
    suite = write_suite(TINY_SUITE.replace("rates: [0.25, 0.5]", "rates: [0.5]").replace("seeds: [0, 1]", "seeds: [0]"))
    amp = write_suite(TINY_SUITE.replace("rates: [0.25, 0.5]", "rates: [0.5]").replace("seeds: [0, 1]", "seeds: [0]")
                      .replace("epochs: 1, batch_size: 32", "epochs: 1, batch_size: 32, amp: true"), "amp.yaml")
    for path, out in ((suite, tmp_path / "fp32"), (amp, tmp_path / "amp")):
        assert main(["run", str(path), "--results", str(out)]) == 0
        _as_if_run_on(out / "records.jsonl", "cuda:0")
    capsys.readouterr()
    assert main(["run", str(suite), "--results", str(tmp_path / "fp32")]) == 0
    assert "2 already done, 0 run" in capsys.readouterr().err
    assert main(["run", str(amp), "--results", str(tmp_path / "amp")]) == 2
    err = capsys.readouterr().err.strip()
    assert "2 stored cell(s) with amp ran on cuda (float16), this run is on cpu (bfloat16)" in err
    assert len(err.splitlines()) == 1 and "--results" in err


def test_new_cells_beside_stored_ones_from_another_cpu_are_noted(write_suite, tmp_path, capsys):
    suite = write_suite(TINY_SUITE.replace("rates: [0.25, 0.5]", "rates: [0.5]").replace("seeds: [0, 1]", "seeds: [0]"))
    out = tmp_path / "out"
    assert main(["run", str(suite), "--results", str(out)]) == 0
    assert main(["run", str(suite), "--results", str(out), "--seeds", "1"]) == 0
    assert "note" not in capsys.readouterr().err  # the same CPU: nothing to say
    path = out / "records.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**r, "env": {**r["env"], "cpu": "Other CPU", "cpu_capability": "AVX2"}}) + "\n"
                            for r in lines))
    assert main(["run", str(suite), "--results", str(out), "--seeds", "0,1"]) == 0
    assert "note" not in capsys.readouterr().err  # nothing new is computed
    assert main(["run", str(suite), "--results", str(out), "--seeds", "0-2"]) == 0
    err = capsys.readouterr().err
    assert "stored cells ran on other CPUs (4 on Other CPU (AVX2)); this run's 2 cell(s) run on this machine's" in err
    assert len([line for line in err.splitlines() if "note" in line]) == 1


def test_jobs_do_not_change_the_numbers(write_suite, tmp_path):
    suite = write_suite()
    assert main(["run", str(suite), "--results", str(tmp_path / "serial")]) == 0
    assert main(["run", str(suite), "--results", str(tmp_path / "pool"), "--jobs", "2"]) == 0
    serial = {r["key"]: r["metrics"] for r in records(tmp_path / "serial" / "records.jsonl")}
    pool = {r["key"]: r["metrics"] for r in records(tmp_path / "pool" / "records.jsonl")}
    assert serial.keys() == pool.keys()
    for key in serial:
        assert {k: v for k, v in serial[key].items() if not k.endswith("time_s")} == \
               {k: v for k, v in pool[key].items() if not k.endswith("time_s")}


def test_every_executor_runs_a_cell_on_the_same_thread_count(write_suite, tmp_path, capsys):
    """The thread count changes a cell's numbers (the order of parallel reductions), so a
    cell gets --threads threads (default 1) in this process (--jobs 1) and in spawned
    workers alike, whatever the process started with; the record says how many."""
    import torch

    suite = write_suite(TINY_SUITE.replace("methods: [uniform, herding]", "methods: [uniform]")
                        .replace("rates: [0.25, 0.5]", "rates: [0.5]").replace("seeds: [0, 1]", "seeds: [0]"))
    runs = {"serial": [], "pool": ["--jobs", "2"], "two": ["--threads", "2"]}
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # as a fresh process on a 2-core machine starts
    try:
        for name, extra in runs.items():
            assert main(["run", str(suite), "--results", str(tmp_path / name), *extra]) == 0
    finally:
        torch.set_num_threads(before)
    threads = {name: [r["env"]["threads"] for r in records(tmp_path / name / "records.jsonl")] for name in runs}
    assert threads == {"serial": [1], "pool": [1], "two": [2]}
    capsys.readouterr()
    assert main(["run", str(suite), "--results", str(tmp_path / "zero"), "--threads", "0"]) == 2
    assert capsys.readouterr().err.strip() == "amrbench: error: --threads must be at least 1"


def test_a_plugin_that_raises_fails_its_cells_only(write_suite, tmp_path, monkeypatch, capsys):
    root = fake_distribution(tmp_path / "site", "raising-dist", {"raising_selector": """
        from amrbench.api import Selector
        from amrbench.hookspecs import hookimpl

        class Exploding(Selector):
            '''Always raises.'''
            name = "exploding"
            def select(self, ctx, train, budget):
                raise ValueError("selector exploded on purpose")

        @hookimpl
        def amrbench_register(registry):
            registry.add(Exploding)
    """}, {"raising": "raising_selector"})
    monkeypatch.syspath_prepend(str(root))
    suite = write_suite(TINY_SUITE.replace("[uniform, herding]", "[uniform, exploding]"))
    out = tmp_path / "out"
    assert main(["run", str(suite), "--results", str(out)]) == 1
    stored = records(out / "records.jsonl")
    failed = [r for r in stored if r["status"] == "failed"]
    assert len(stored) == 8 and len(failed) == 4
    assert all(r["error"] == "ValueError: selector exploded on purpose" for r in failed)
    assert "4 failed" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["run", "missing.yaml"], "missing.yaml: suite file not found"),
    (["run", "{suite}", "--profile", "nope"], "unknown profile 'nope'"),
    (["run", "{suite}", "--device", "tpu"], "--device 'tpu'"),
    (["table", "{suite}", "--format", "docx", "--results", "{out}"], "--format 'docx'"),
    (["list", "widgets"], "unknown kind 'widgets'"),
])
def test_usage_errors_exit_2_with_one_line(write_suite, tmp_path, capsys, args, message):
    suite = write_suite()
    out = tmp_path / "out"
    if args[0] == "table":
        main(["run", str(suite), "--results", str(out)])
        capsys.readouterr()
    args = [a.format(suite=suite, out=out) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_spc_larger_than_the_smallest_class_is_a_usage_error(write_suite, tmp_path, capsys):
    suite = write_suite(TINY_SUITE.replace("rates: [0.25, 0.5]", "spc: [5, 500]"))
    assert main(["run", str(suite), "--results", str(tmp_path / "o")]) == 2
    assert "spc: 500 exceeds the smallest class" in capsys.readouterr().err


def test_list_shows_kinds_descriptions_and_distributions(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for heading in ("models", "datasets", "selectors", "condensers", "compressors", "explainers", "reporters"):
        assert heading in out
    assert "Uniform random class-balanced sampling" in out and "amrbench 0.1.0" in out
    assert "100,907" in out  # CNN1D parameter count at L=128, 11 classes


SLOW_SUITE = TINY_SUITE.replace("seeds: [0, 1]", "seeds: [0, 1, 2, 3, 4, 5]").replace("epochs: 1, batch", "epochs: 3, batch")


def test_sigkill_mid_run_then_resume_loses_and_duplicates_nothing(write_suite, tmp_path):
    suite = write_suite(SLOW_SUITE)
    out = tmp_path / "out"
    store = out / "records.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "amrbench.cli", "run", str(suite), "--results", str(out)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not store.exists() or store.read_text().count("\n") < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = records(store)
    assert 3 <= len(partial) < 24, "the kill should land mid-run"
    with open(store, "a") as f:
        f.write('{"key": "torn')  # what a crash during a write leaves behind
    result = run_cli("run", suite, "--results", out)
    assert result.returncode == 0, result.stderr
    assert f"{len(partial)} already done, {24 - len(partial)} run" in result.stderr
    final = records(store)
    keys = [r["key"] for r in final]
    assert len(keys) == 24 and len(set(keys)) == 24
    assert [r["key"] for r in final[:len(partial)]] == [r["key"] for r in partial]


def test_sigterm_stops_a_run_like_ctrl_c_and_the_run_resumes(write_suite, tmp_path):
    suite = write_suite(SLOW_SUITE)
    out = tmp_path / "out"
    store = out / "records.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "amrbench.cli", "run", str(suite), "--results", str(out)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not store.exists() or store.read_text().count("\n") < 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    partial = records(store)
    assert proc.returncode == 130 and "interrupted; finished cells are stored, rerun to resume" in err
    assert 2 <= len(partial) < 24
    result = run_cli("run", suite, "--results", out)
    assert result.returncode == 0 and f"{len(partial)} already done, {24 - len(partial)} run" in result.stderr
    assert len({r["key"] for r in records(store)}) == len(records(store)) == 24


def test_leaderboard_rebuild_and_check(write_suite, tmp_path):
    suite = write_suite()
    results_root = tmp_path / "results"
    assert main(["run", str(suite), "--results", str(results_root / "tiny")]) == 0
    assert main(["leaderboard", "--check", "--results-root", str(results_root)]) == 1
    assert main(["leaderboard", "--results-root", str(results_root)]) == 0
    text = (results_root / "LEADERBOARD.md").read_text()
    assert "## tiny" in text and "| uniform" in text and "8 of 8 cells" in text
    assert main(["leaderboard", "--check", "--results-root", str(results_root)]) == 0
    store = RecordStore(results_root / "tiny" / "records.jsonl")
    record = store.read()[0]
    record["metrics"]["accuracy"] = 0.123
    with open(store.path, "a") as f:  # a rerun's newer record (append stores one ok record per key)
        f.write(json.dumps(record) + "\n")
    assert main(["leaderboard", "--check", "--results-root", str(results_root)]) == 1
