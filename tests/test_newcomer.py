"""A newcomer's first hour: suites by name from any folder, the results root and one
results folder per profile, the cost of a grid before it runs (and the confirmation above
a day of CPU time), and the line every run ends with."""
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

from amrbench import cost
from amrbench.basics import record_seconds
from amrbench.api import AmrbenchError
from amrbench.cli import main
from amrbench.runner import RunOptions, results_dir
from tests.conftest import TINY_SUITE
from amrbench.store import RecordStore, read_suite_meta
from amrbench.suite import expand, load_suite, resolve_suite_path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results"


# --------------------------------------------------------------------------- suites by name
@pytest.mark.parametrize("spec", ["table1", "mdm-table1", "suites/table1.yaml", "table1.yaml"])
def test_a_shipped_suite_resolves_by_file_name_or_name_from_any_folder(spec):
    assert resolve_suite_path(spec).resolve() == (REPO / "suites" / "table1.yaml").resolve()


def test_an_existing_file_wins_over_a_shipped_name(tmp_path):
    (tmp_path / "quick").write_text("mine")
    assert resolve_suite_path("quick") == Path("quick")


def test_an_unknown_suite_is_one_line_with_did_you_mean():
    with pytest.raises(AmrbenchError) as info:
        resolve_suite_path("tabel1")
    assert "did you mean 'table1'" in str(info.value) and "\n" not in str(info.value)


def test_a_path_that_is_no_file_is_not_looked_up_by_name():
    with pytest.raises(AmrbenchError, match="suite file not found"):
        resolve_suite_path("elsewhere/table1.yaml")


def test_run_by_name_from_another_folder_dry_runs_with_its_cost(capsys):
    assert main(["run", "mdm-table1", "--profile", "quick", "--dry-run", "--jobs", "3"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("mdm-table1: 45 cells, 0 already done, 45 to run; estimated ")
    assert "CPU-hours" in last and "wall with --jobs 3" in last


def test_suites_lists_name_file_profiles_and_stored_cost_without_torch(monkeypatch, capsys, tmp_path):
    import amrbench.shipped

    folder = tmp_path / "mdm-table1"
    folder.mkdir()
    (folder / "suite.json").write_text('{"suite": "suites/table1.yaml", "profile": "quick", '
                                       '"artifact_times": ["condense_time_s"]}')
    (folder / "records.jsonl").write_text(  # a and b share one condensed set: its hour counts once
        '{"key": "a", "status": "ok", "wall_time_s": 1800, "metrics": {"condense_time_s": 3600.5}}\n'
        '{"key": "b", "status": "ok", "wall_time_s": 5400, "metrics": {"condense_time_s": 3600.5}}\n'
        '{"key": "c", "status": "failed", "wall_time_s": 99}\n')
    monkeypatch.setenv("AMRBENCH_RESULTS", str(tmp_path))
    monkeypatch.setattr(amrbench.shipped, "shipped_suites", lambda: {"table1": REPO / "suites" / "table1.yaml"})
    rows = amrbench.shipped.suites_rows([tmp_path])
    assert [r[:4] for r in rows][:2] == [["mdm-table1", "suites/table1.yaml", "(default)", "mdm-table1/"],
                                         ["mdm-table1", "suites/table1.yaml", "quick", "mdm-table1-quick/"]]
    assert rows[0][4] == "-" and rows[1][4] == "3.00 (2 cells)"
    out = subprocess.run([sys.executable, "-c", "import sys; from amrbench.cli import main; main(['suites']); "
                          "print('torch' in sys.modules)"], capture_output=True, text=True, check=True).stdout
    assert "mdm-table1" in out and out.strip().endswith("False")


def test_suites_cost_estimates_every_profile(monkeypatch, capsys):
    import amrbench.suite

    monkeypatch.setattr(amrbench.suite, "shipped_suites", lambda: {"table1": REPO / "suites" / "table1.yaml"})
    assert main(["suites", "--cost"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [r[:3] for r in rows][:2] == [["mdm-table1", "suites/table1.yaml", "(default)"],
                                         ["mdm-table1", "suites/table1.yaml", "quick"]]
    assert rows[0][-1] == "estimated" and float(rows[0][4]) > 24  # the paper protocol: days of CPU
    assert float(rows[1][4]) < float(rows[0][4]) / 100  # the smoke profile: a small fraction of it


def test_suite_json_names_a_shipped_suite_portably():
    from amrbench.cli import _meta_suite_path

    assert _meta_suite_path(resolve_suite_path("mdm-table1")) == "suites/table1.yaml"


def test_the_shipped_suites_are_package_data_of_every_package():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = find_packages(str(REPO), include=["amrbench*"]) + find_packages(str(REPO / "plugins"))
    assert sorted(config["packages"]) == sorted(on_disk + ["amrbench_suites"])
    assert config["package-dir"]["amrbench_suites"] == "suites" and config["package-data"]["amrbench_suites"] == ["*.yaml"]


def test_a_suite_of_ones_own_named_like_a_shipped_one_is_noted(write_suite, capsys):
    from tests.conftest import TINY_SUITE

    path = write_suite(TINY_SUITE.replace("name: tiny", "name: quick"), name="mine.yaml")
    assert main(["run", str(path), "--dry-run"]) == 0
    assert "name 'quick' is the shipped suite quick.yaml's" in capsys.readouterr().err


# --------------------------------------------------------------------------- results root
def test_results_root_from_the_environment_and_results_for_one_suite(monkeypatch, tmp_path):
    suite = load_suite(resolve_suite_path("quick"))
    assert results_dir(suite, RunOptions()) == Path("results") / "quick"
    monkeypatch.setenv("AMRBENCH_RESULTS", str(tmp_path / "root"))
    assert results_dir(suite, RunOptions()) == tmp_path / "root" / "quick"
    assert results_dir(suite, RunOptions(results="here")) == Path("here")


def test_a_named_profile_has_a_results_folder_of_its_own(monkeypatch, tmp_path):
    monkeypatch.setenv("AMRBENCH_RESULTS", str(tmp_path))
    paper = load_suite(resolve_suite_path("table1"))
    quick = load_suite(resolve_suite_path("table1"), profile="quick")
    assert results_dir(paper, RunOptions()) == tmp_path / "mdm-table1"
    assert results_dir(quick, RunOptions()) == tmp_path / "mdm-table1-quick"
    assert results_dir(quick, RunOptions(results="mine")) == Path("mine")


@pytest.mark.slow
def test_a_second_profile_does_not_overwrite_the_first_ones_folder(write_suite, monkeypatch, tmp_path):
    from tests.conftest import TINY_SUITE

    monkeypatch.setenv("AMRBENCH_RESULTS", str(tmp_path / "root"))
    text = TINY_SUITE.replace("[uniform, herding]", "[uniform]").replace("[0.25, 0.5]", "[0.5]") \
        .replace("seeds: [0, 1]", "seeds: [0]") + "profiles:\n  other: {rates: [0.25]}\n"
    path = write_suite(text)
    assert main(["run", str(path)]) == 0
    first = (tmp_path / "root" / "tiny" / "table.md").read_text()
    assert main(["run", str(path), "--profile", "other"]) == 0
    assert (tmp_path / "root" / "tiny" / "table.md").read_text() == first
    assert read_suite_meta(tmp_path / "root" / "tiny").get("profile") is None
    assert read_suite_meta(tmp_path / "root" / "tiny-other")["profile"] == "other"
    assert len(RecordStore(tmp_path / "root" / "tiny-other" / "records.jsonl").latest()) == 1


def test_every_committed_results_folder_is_named_by_its_suite_and_profile():
    from amrbench.shipped import declared_name, results_folder_name

    folders = sorted(p.parent for p in RESULTS.glob("*/suite.json"))
    assert len(folders) >= 15
    for folder in folders:
        meta = read_suite_meta(folder)
        assert folder.name == results_folder_name(declared_name(REPO / meta["suite"]), meta.get("profile")), folder


def test_leaderboard_results_root_defaults_to_the_results_root(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("AMRBENCH_RESULTS", str(tmp_path / "root"))
    assert main(["leaderboard"]) == 0
    assert (tmp_path / "root" / "LEADERBOARD.md").read_text().startswith("# amrbench leaderboard")
    assert main(["leaderboard", "--check"]) == 0
    assert f"{tmp_path / 'root' / 'LEADERBOARD.md'} is up to date" in capsys.readouterr().out


# --------------------------------------------------------------------------- runs
def test_jobs_zero_is_refused_before_suite_json_is_written(write_suite, tmp_path, capsys):
    assert main(["run", str(write_suite()), "--jobs", "0", "--results", str(tmp_path / "out")]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_end_line_says_computed_reused_from_where_time_and_outputs(tmp_path):
    from amrbench.runner import RunSummary

    store = RecordStore(tmp_path / "records.jsonl")
    summary = RunSummary(10, 7, [{"status": "ok"}, {"status": "ok"}, {"status": "failed"}], store, 125.4)
    assert summary.line("s", tmp_path, 2) == (f"s: 10 cells, 7 already done, 3 run (1 failed) in 2 min 05 s; the done "
                                              f"ones reused from {store.path}; table {tmp_path / 'table.md'}, 2 "
                                              f"figure(s) in {tmp_path}")
    assert RunSummary(1, 0, [{"status": "ok"}], store, 1.0).line("s", tmp_path) == \
        f"s: 1 cells, 0 already done, 1 run in 1 s; table {tmp_path / 'table.md'}"


@pytest.mark.slow
def test_a_run_ends_with_computed_reused_time_and_outputs(write_suite, tmp_path, capsys, monkeypatch):
    from tests.conftest import TINY_SUITE

    monkeypatch.setenv("AMRBENCH_RESULTS", str(tmp_path / "root"))
    path = write_suite(TINY_SUITE.replace("[uniform, herding]", "[uniform]").replace("seeds: [0, 1]", "seeds: [0]"))
    assert main(["run", str(path)]) == 0
    out = tmp_path / "root" / "tiny"
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("tiny: 2 cells, 0 already done, 2 run in ")
    assert f"table {out / 'table.md'}" in last and (out / "table.md").exists()
    assert main(["run", str(path)]) == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"2 already done, 0 run in " in last and f"reused from {out / 'records.jsonl'}" in last
    assert read_suite_meta(out)["suite"] == str(path)


def test_a_local_grid_over_a_day_asks_for_yes_before_writing(tmp_path, capsys):
    out = tmp_path / "t3"
    assert main(["run", "foqus_table3", "--results", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("amrbench: error: foqus_table3: estimated ") and "rerun with --yes" in err
    assert err.count("\n") == 1 and not out.exists()


def test_confirmation_is_for_local_runs_only():
    big = cost.Estimate(cells=1, cells_s=25 * 3600.0, longest_cell_s=25 * 3600.0)
    with pytest.raises(AmrbenchError, match="--yes"):
        cost.confirm_cost(big, 1, "local", False, "s")
    cost.confirm_cost(big, 1, "dask", False, "s")
    cost.confirm_cost(big, 1, "local", True, "s")
    cost.confirm_cost(cost.Estimate(cells=1, cells_s=3600.0), 1, "local", False, "s")


# --------------------------------------------------------------------------- the cost model
def test_wall_time_divides_by_jobs_but_not_below_the_longest_task():
    estimate = cost.Estimate(cells=4, cells_s=400.0, longest_cell_s=250.0, artifacts=1, artifacts_s=50.0,
                             longest_artifact_s=50.0)
    assert estimate.wall_s(1) == 450.0 and estimate.wall_s(4) == 50.0 + 250.0
    assert estimate.cpu_hours == pytest.approx(450 / 3600)


def test_with_no_records_the_estimate_is_analytic_and_grows_with_epochs():
    model = cost.CostModel([])
    suite = load_suite(resolve_suite_path("quick"))
    cells = expand(suite)
    for cell in cells:
        cell["config"]["train"] = {**cell["config"]["train"], "epochs": 2 * cell["config"]["train"]["epochs"]}
    short, long = model.estimate(expand(suite)), model.estimate(cells)
    assert 0 < short.cells_s < long.cells_s < 10 * 3600 and short.artifacts == 3


def test_a_stored_cell_costs_its_stored_time():
    suite = load_suite(resolve_suite_path("quick"))
    cell = expand(suite)[0]
    model = cost.CostModel([{"key": cell["key"], "status": "ok", "config": cell["config"], "metrics": {},
                             "wall_time_s": 123.0}])
    estimate = model.estimate([cell])
    assert estimate.cells_s == 123.0 and estimate.stored == 1


def test_a_stored_cell_costs_its_cpu_time_where_the_record_has_it():
    """A cell that waited for the cores (wall 300 s, CPU 100 s) costs its CPU time, and
    the per-method factor is fitted on CPU time too."""
    cells = expand(load_suite(resolve_suite_path("quick")))
    loaded = [{"key": c["key"], "status": "ok", "config": c["config"], "metrics": {}, "wall_time_s": 300.0,
               "cpu_time_s": 100.0} for c in cells[:2]]
    model = cost.CostModel(loaded)
    assert model.estimate(cells[:1]).cells_s == 100.0
    wall_only = cost.CostModel([{k: v for k, v in r.items() if k != "cpu_time_s"} for r in loaded])
    unstored = [{**c, "key": "other-" + c["key"]} for c in cells[:2]]
    assert wall_only.estimate(unstored).cells_s == pytest.approx(3 * model.estimate(unstored).cells_s)
    # on a GPU, or with 4 threads per cell, CPU time does not measure the cost: the wall time does
    for other in ({"device": "cuda"}, {"env": {"threads": 4}}):
        assert cost.CostModel([{**r, **other} for r in loaded]).estimate(cells[:1]).cells_s == 300.0


def test_a_cells_record_keeps_its_cpu_time_beside_its_wall_time(tmp_path):
    from amrbench.runner import execute_cell

    cell = expand(load_suite(resolve_suite_path("quick")))[0]
    record = execute_cell(cell, {"cache": str(tmp_path / "cache")})
    assert record["status"] == "ok", record["error"]
    assert 0 < record["cpu_time_s"] <= 1.5 * record["wall_time_s"] + 0.1
    assert record["metrics"]["cpu_train_time_s"] > 0


def test_a_stopwatch_counts_cpu_time_apart_from_waiting():
    import time

    from amrbench.api import Stopwatch

    with Stopwatch() as waiting:
        time.sleep(0.3)
    with Stopwatch() as working:
        sum(i * i for i in range(300_000))
    assert waiting.seconds >= 0.3 and waiting.cpu_seconds < 0.1
    assert working.cpu_seconds > 0 and working.timings("x_s") == {"x_s": round(working.seconds, 3),
                                                                   "cpu_x_s": round(working.cpu_seconds, 3)}


def _leave_one_out(folder: Path) -> tuple:
    """(estimated, measured) seconds of a committed quick run's stored cells, the model
    fitted on every other results folder's records."""
    meta = read_suite_meta(folder)
    suite = load_suite(REPO / meta["suite"], profile=meta.get("profile"))
    latest = RecordStore(folder / "records.jsonl").latest()
    cells = [c for c in expand(suite) if latest.get(c["key"], {}).get("status") == "ok"]
    others = [r for p in RESULTS.glob("*/records.jsonl") if p.parent != folder and p.parent.name not in LOADED
              for r in RecordStore(p).read()]
    return cost.CostModel(others).estimate(cells).cells_s, sum(record_seconds(latest[c["key"]]) for c in cells)


def _complete(folder: Path) -> bool:
    """Every cell of the folder's grid is stored ok under today's keys."""
    meta = read_suite_meta(folder)
    latest = RecordStore(folder / "records.jsonl").latest()
    grid = expand(load_suite(REPO / meta["suite"], profile=meta.get("profile")))
    return all(latest.get(c["key"], {}).get("status") == "ok" for c in grid)


# Folders whose cells have no like in other folders' records: cam_figures spends its time
# rendering per-signal figures and explain_table's only like is cam_figures; foqus_table3
# trains LSTM targets that no other selection suite trains (the LSTM rate then comes from
# the explain classifier, 3x off); mdm-table2's condensation cells have few like records.
UNLIKE = {"cam_figures-quick", "explain_table-quick", "foqus_table3-quick", "mdm-table2-quick"}
# Runs timed on a machine at load beside other runs: their wall times measure the load,
# not the cells. hqarf_table1-quick's classifiers trained 6x slower than in its first run
# (load 6-7); hqarf_table3-evidence ran beside another evidence run (3 processes on the 2
# cores at times): its classifiers took 2.0-3.6 ms per signal-epoch, the quick runs' 1.5;
# hqarf_table2-evidence likewise, beside foqus_table5's evidence run and the tests;
# mdm-table1-evidence's seed 0 ran at load 4-7 (docs/condense.md: 2-3x an idle machine).
LOADED = {"hqarf_table1-quick", "hqarf_table3-evidence", "hqarf_table2-evidence", "mdm-table1-evidence"}


@pytest.mark.parametrize("name", ["quick", "hqarf_table2-quick", "foqus_tiers-quick"])
def test_the_estimate_is_within_a_factor_2_of_measured_quick_runs(name):
    estimated, measured = _leave_one_out(RESULTS / name)
    assert measured / 2 <= estimated <= 2 * measured


@pytest.mark.slow
def test_the_estimate_is_within_a_factor_2_for_every_committed_run():
    folders = [p.parent for p in sorted(RESULTS.glob("*/records.jsonl")) if p.parent.name not in UNLIKE | LOADED]
    assert len(folders) >= 12
    # complete runs only: a folder part-rerun after a plugin's version changed mixes cells
    # timed under two versions (its stale cells wait for the rerun)
    pairs = {f.name: _leave_one_out(f) for f in folders if _complete(f)}
    assert len(pairs) >= 10
    ratios = {name: e / m for name, (e, m) in pairs.items() if m > 0}
    assert all(0.5 <= r <= 2 for r in ratios.values()), ratios


def test_dry_run_counts_artifacts_already_cached_apart(write_suite, tmp_path, capsys):
    # herding reads the scoring run, a shared artifact: once computed, a resumed or
    # sibling run reads it from the cache, and the estimate says so instead of charging it
    path = write_suite(TINY_SUITE.replace("methods: [uniform, herding]", "methods: [herding]")
                       .replace("rates: [0.25, 0.5]", "rates: [0.25]"))
    assert main(["run", str(path), "--dry-run", "--results", str(tmp_path / "a")]) == 0
    before = capsys.readouterr().out.strip().splitlines()[-1]
    assert "and 2 shared artifact(s)" in before and "artifact cache" not in before
    assert main(["run", str(path), "--results", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert main(["run", str(path), "--dry-run", "--results", str(tmp_path / "b")]) == 0
    after = capsys.readouterr().out.strip().splitlines()[-1]
    assert "and 0 shared artifact(s)" in after
    assert after.endswith("2 more shared artifact(s) already in the artifact cache, not counted")
