import csv
import os
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from amrbench import figures, stats
from amrbench.cli import main
from amrbench.store import RecordStore, write_suite_meta
from amrbench.suite import expand, load_suite
from amrbench.render import render
from amrbench.tables import build_tables

GOLDEN = Path(__file__).parent / "golden"
# accuracy per (method, budget, seed): herding wins at 25 %, a tie at 50 %
VALUES = {
    ("uniform", "25%"): [0.50, 0.60], ("uniform", "50%"): [0.70, 0.80],
    ("herding", "25%"): [0.62, 0.64], ("herding", "50%"): [0.74, 0.76],
}
# three seeds: at 25 % uniform is behind on every seed (paired t = -19, p = 0.0014: not
# bold); at 50 % the seeds disagree (both bold); per-seed averages 0.60/0.675/0.67 vs
# 0.69/0.70/0.74 (t = -3.2, p = 0.043: uniform's Avg not bold)
VALUES3 = {
    ("uniform", "25%"): [0.50, 0.55, 0.60], ("herding", "25%"): [0.62, 0.66, 0.70],
    ("uniform", "50%"): [0.70, 0.80, 0.74], ("herding", "50%"): [0.76, 0.74, 0.78],
}


def tiny(seeds="[0, 1]", extra=""):
    from tests.conftest import TINY_SUITE

    return TINY_SUITE.replace("seeds: [0, 1]", f"seeds: {seeds}") + extra


def fixed_records(suite, values=VALUES):
    records = []
    for cell in expand(suite):
        labels = cell["labels"]
        value = values[(labels["method"], labels["budget"])][labels["seed"]]
        records.append({"key": cell["key"], "status": "ok", "labels": labels, "metrics": {"accuracy": value}})
    records.append({"key": "x", "status": "failed", "labels": records[0]["labels"], "metrics": None})
    return records


def check_golden(name, text):
    path = GOLDEN / name
    if os.environ.get("AMRBENCH_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def table_lines(text):
    return [line for line in text.splitlines() if line.startswith("| ")]


@pytest.mark.parametrize("fmt,ext", [("markdown", "md"), ("latex", "tex"), ("csv", "csv"), ("html", "html")])
def test_golden_tables(write_suite, fmt, ext):
    suite = load_suite(write_suite())
    check_golden(f"tiny.{ext}", render(suite, fixed_records(suite), fmt))


@pytest.mark.parametrize("seeds,values,name", [("[0, 1, 2]", VALUES3, "tiny3.md"), ("[0]", VALUES, "tiny_n1.md")])
def test_golden_bold_rule_three_seeds_and_one(write_suite, seeds, values, name):
    suite = load_suite(write_suite(tiny(seeds)))
    check_golden(name, render(suite, fixed_records(suite, values), "markdown"))


def test_bold_is_the_best_and_whatever_is_not_significantly_worse(write_suite):
    suite = load_suite(write_suite(tiny("[0, 1, 2]")))
    text = render(suite, fixed_records(suite, VALUES3), "markdown")
    assert "| uniform  |     55.00±5.00 | **74.67±5.03** |     64.84 |   2.00 |" in text
    assert "| herding  | **66.00±4.00** | **76.00±2.00** | **71.00** |   1.00 |" in text
    assert "one-sided paired t-test, α = 0.05, pairs share the seed" in text


def test_two_seeds_rarely_separate_rows(write_suite):
    """Two seeds, differences -12 and -4 points: t = -2, one-sided p = 0.15; both bold."""
    suite = load_suite(write_suite())
    text = render(suite, fixed_records(suite), "markdown")
    assert "| uniform  | **55.00±7.07** | **75.00±7.07** | **65.00** |   1.75 |" in text  # ddof=1 std
    assert "| herding  | **63.00±1.41** | **75.00±1.41** | **69.00** |   1.25 |" in text
    assert "n = 2 seed(s)" in text


def test_one_seed_bolds_nothing_and_says_so(write_suite):
    suite = load_suite(write_suite(tiny("[0]")))
    text = render(suite, fixed_records(suite), "markdown")
    assert "**" not in "\n".join(table_lines(text)) and "1 seed: no comparison" in text


def test_missing_repeats_are_flagged(write_suite):
    suite = load_suite(write_suite())
    records = [r for r in fixed_records(suite) if not (r["labels"]["method"] == "uniform" and r["labels"]["seed"] == 1)]
    text = render(suite, records, "markdown")
    assert "50.00±0.00 (n=1)" in text and "different number of repeats" in text


def test_lower_is_better_bolds_the_minimum(write_suite):
    suite = load_suite(write_suite(tiny("[0, 1, 2]", "table: {higher_is_better: false, avg: false}\n")))
    text = render(suite, fixed_records(suite, VALUES3), "markdown")
    assert "| uniform  | **55.00±5.00** | **74.67±5.03** |   1.00 |" in text
    assert "| herding  |     66.00±4.00 | **76.00±2.00** |   2.00 |" in text and "Avg" not in text


def test_ci_shows_the_t_interval_half_width(write_suite):
    suite = load_suite(write_suite(tiny("[0, 1, 2]", "table: {ci: 95}\n")))
    text = render(suite, fixed_records(suite, VALUES3), "markdown")
    half = stats.half_width([50.0, 55.0, 60.0])  # 5 * 4.3027 / sqrt(3) = 12.42
    assert half == pytest.approx(5 * scipy_stats.t.ppf(0.975, 2) / np.sqrt(3))
    assert f"| uniform  |    55.00±{half:.2f} |" in text
    assert "mean ± half-width of the 95 % t-interval over n = 3 seed(s)" in text
    # a cell with one value has no interval: its mean alone, flagged
    records = [r for r in fixed_records(suite, VALUES3) if not (r["labels"]["method"] == "uniform" and r["labels"]["seed"] > 0)]
    assert "| uniform  |    50.00 (n=1) |" in render(suite, records, "markdown")


def test_average_rank_column_matches_scipy_rankdata(write_suite):
    from tests.conftest import TINY_SUITE

    text3 = TINY_SUITE.replace("[uniform, herding]", "[uniform, herding, kcenter]")
    suite = load_suite(write_suite(text3))
    values = {**VALUES, ("kcenter", "25%"): [0.55, 0.55], ("kcenter", "50%"): [0.90, 0.90]}
    (table,) = build_tables(suite, fixed_records(suite, values))
    means = np.array([[55.0, 75.0], [63.0, 75.0], [55.0, 90.0]])  # rows uniform, herding, kcenter
    expected = np.mean([scipy_stats.rankdata(-means[:, j]) for j in range(2)], axis=0)
    # by hand: 25 %: herding 1, uniform and kcenter tie for 2.5; 50 %: kcenter 1, the tie 2.5
    assert expected.tolist() == [2.5, 1.75, 1.75]
    assert [row[-1] for row in table.cells] == [f"{r:.2f}" for r in expected]
    assert table.header[-1] == "Rank"


def test_ranks_can_be_turned_off(write_suite):
    suite = load_suite(write_suite(tiny(extra="table: {ranks: false}\n")))
    assert "Rank" not in render(suite, fixed_records(suite), "markdown")


def test_latex_escapes_labels_and_uses_booktabs(write_suite):
    from tests.conftest import TINY_SUITE

    suite = load_suite(write_suite(TINY_SUITE.replace("[uniform, herding]", "[{name: uniform, label: Uni_form & co}, herding]")))
    text = render(suite, fixed_records_relabelled(suite), "latex")
    assert r"Uni\_form \& co" in text and r"\toprule" in text and r"\textbf{75.00$\pm$7.07}" in text


def fixed_records_relabelled(suite):
    records = []
    for cell in expand(suite):
        method = "uniform" if cell["config"]["method"]["name"] == "uniform" else "herding"
        value = VALUES[(method, cell["labels"]["budget"])][cell["labels"]["seed"]]
        records.append({"key": cell["key"], "status": "ok", "labels": cell["labels"], "metrics": {"accuracy": value}})
    return records


def test_pool_uses_every_evaluation_model_and_extra_rows_repeat_per_column(write_suite):
    from tests.test_claims import POOLED

    layout = ("  extra_rows:\n"
              "    - {label: Ratio, metric: spc_ratio, scale: 1, format: '{mean:.1f}', position: first}\n"
              "    - {label: Whole, metric: whole_accuracy, pool: whole_accuracies}\n")
    suite = load_suite(write_suite(POOLED.replace("table: {pool: accuracies}\n", "table:\n  pool: accuracies\n" + layout)))
    records = []
    for cell in expand(suite):  # two evaluation models per record: value ± 0.01
        budget = {"SPC 5": "25%", "SPC 10": "50%"}[cell["labels"]["budget"]]
        v = VALUES3[(cell["labels"]["method"], budget)][cell["labels"]["seed"]]
        records.append({"key": cell["key"], "status": "ok", "labels": cell["labels"],
                        "metrics": {"accuracy": v, "accuracies": [v - 0.01, v + 0.01],
                                    "spc_ratio": float(budget.rstrip("%")), "whole_accuracies": [0.9, 1.0]}})
    text = render(suite, records, "markdown")
    # uniform at SPC 5: pooled [0.49, 0.51, 0.54, 0.56, 0.59, 0.61] -> mean 55, sample std sqrt(106 / 5) = 4.60
    assert "| uniform  |     55.00±4.60 |" in text
    assert "n = 6 per cell" in text and "pairs share the seed and the position in accuracies" in text
    lines = table_lines(text)
    assert lines[1].startswith("| Ratio ") and "25.0" in lines[1] and "50.0" in lines[1] and "**" not in lines[1]
    assert lines[-1].startswith("| Whole ") and "95.00±5.48" in lines[-1] and "**" not in lines[-1]
    assert lines[-1].rstrip().endswith("|           |        |")  # no Avg, no Rank


def test_metric_axis_puts_several_metrics_side_by_side(write_suite):
    from tests.conftest import TINY_SUITE

    layout = ("table: {rows: method, columns: metric, group: [dataset, model, budget],\n"
              "        metric: [accuracy, train_time_s], metric_labels: [L0, L1]}\n")
    suite = load_suite(write_suite(TINY_SUITE + layout))
    records = fixed_records(suite)[:-1]
    for r in records:
        r["metrics"]["train_time_s"] = r["metrics"]["accuracy"] / 2
    text = render(suite, records, "markdown")
    header = next(line for line in text.splitlines() if line.startswith("| Method"))
    assert header.split("|")[2:5] == [" " * 13 + "L0 ", " " * 13 + "L1 ", "       Avg "]
    assert "| uniform  | **55.00±7.07** | **27.50±3.54** | **41.25** |" in text
    assert "accuracy, train_time_s" in text


def test_dotted_metric_reads_a_mapping_entry_and_ranks_skip_the_aggregate(write_suite):
    """``per_snr.18`` is the entry "18" of the record's ``per_snr``; ``ranks`` restricts
    the Rank column, the Friedman line and the CD diagram to the listed columns."""
    from tests.conftest import TINY_SUITE

    suite_text = TINY_SUITE.replace("[uniform, herding]", "[uniform, herding, kcenter]")
    layout = ("table: {rows: method, columns: metric, group: [dataset, model, budget], avg: false,\n"
              "        metric: [accuracy, per_snr.0, per_snr.18], metric_labels: [all, 0 dB, 18 dB],\n"
              "        ranks: [0 dB, 18 dB]}\n")
    suite = load_suite(write_suite(suite_text + layout))
    # per SNR: kcenter best at 0 dB, uniform best at 18 dB; the aggregate column would
    # rank herding first, so including it would change the average ranks
    per_snr = {"uniform": (0.30, 0.95), "herding": (0.50, 0.90), "kcenter": (0.60, 0.80)}
    overall = {"uniform": 0.60, "herding": 0.99, "kcenter": 0.70}
    records = []
    for cell in expand(suite):
        m, seed = cell["labels"]["method"], cell["labels"]["seed"]
        low, high = per_snr[m]
        records.append({"key": cell["key"], "status": "ok", "labels": cell["labels"],
                        "metrics": {"accuracy": overall[m] + seed / 100,
                                    "per_snr": {"0": low + seed / 100, "18": high + seed / 100}}})
    tables = build_tables(suite, records)
    assert len(tables) == 2  # one per budget
    table = tables[0]
    assert table.header[1:] == ["all", "0 dB", "18 dB", "Rank"]
    cells = dict(zip(table.rows, table.cells))
    assert cells["uniform"][2].startswith("95.50")  # 18 dB: mean of 0.95 and 0.96
    assert cells["herding"][0].startswith("99.50")  # the aggregate, best, but not ranked
    rank_0 = scipy_stats.rankdata([-30.5, -50.5, -60.5])
    rank_18 = scipy_stats.rankdata([-95.5, -90.5, -80.5])
    assert [float(cells[m][-1]) for m in ("uniform", "herding", "kcenter")] == ((rank_0 + rank_18) / 2).tolist()
    text = render(suite, records, "markdown")
    assert "Average rank over 4 blocks (group × column): uniform 2.00, herding 2.00, kcenter 2.00." in text
    assert "Rank: average rank over the columns 0 dB, 18 dB (1 = best" in text


def test_profile_and_training_size_are_stated_and_quick_is_a_smoke_test(write_suite):
    suite = load_suite(write_suite(tiny(extra="profiles:\n  quick: {train: {epochs: 3}}\n")), profile="quick")
    records = fixed_records(suite)
    for r in records[:-1]:
        r["metrics"]["n_train"] = 153
    text = render(suite, records, "markdown")
    assert text.splitlines()[2] == ("*Records of the profile `quick` (smoke test: not a ranking): training set "
                                    "toy 153 signals; 2 seeds; 3 epochs.*")
    for fmt in ("latex", "csv", "html"):
        assert "profile `quick` (smoke test: not a ranking): training set toy 153 signals" in render(suite, records, fmt)
    first_seed = [r for r in records if r["labels"]["seed"] == suite.seeds[0]]
    assert "toy 153 signals; 1 of 2 seeds stored; 3 epochs.*" in render(suite, first_seed, "markdown")
    default = load_suite(suite.path)
    assert "Records of the default profile: training set toy (size not recorded; toy: length=64" in \
        render(default, fixed_records(default), "markdown")


def test_friedman_line_under_the_tables(write_suite):
    from tests.conftest import TINY_SUITE

    suite = load_suite(write_suite(TINY_SUITE.replace("[uniform, herding]", "[uniform, herding, kcenter]")))
    values = {**VALUES, ("kcenter", "25%"): [0.55, 0.55], ("kcenter", "50%"): [0.90, 0.90]}
    text = render(suite, fixed_records(suite, values), "markdown")
    expected = scipy_stats.friedmanchisquare([55, 75], [63, 75], [55, 90])
    assert (f"Average rank over 2 blocks (group × column): uniform 2.50, herding 1.75, kcenter 1.75. "
            f"Friedman χ² = {expected.statistic:.2f}, p = {expected.pvalue:.3g}.") in text


@pytest.mark.parametrize("bad,message", [("table: {ci: 120}", "confidence level"), ("table: {ranks: 1}", "true or false")])
def test_bad_stat_options(write_suite, bad, message):
    from amrbench.api import AmrbenchError

    with pytest.raises(AmrbenchError, match=message):
        load_suite(write_suite(tiny(extra=bad + "\n")))


@pytest.mark.parametrize("layout,message", [
    ("table: {columns: metric, metric: accuracy}", "give a list of metric names"),
    ("table: {metric: [accuracy, loss]}", "needs rows: metric or columns: metric"),
    ("table: {columns: metric, metric: [a, b], metric_labels: [x]}", "one per entry"),
    ("table: {extra_rows: [{label: x}]}", "at least label and metric"),
    ("table: {extra_rows: [{label: x, metric: y, where: 1}]}", "unknown key"),
    ("table: {ranks: [25%, 75%]}", "'75%' is not a column of the table"),
    ("table: {ranks: []}", "column labels to rank over"),
    ("table: {metric: per_snrr.18}", "records no metric 'per_snrr.18'"),
])
def test_bad_table_layouts_name_the_key(write_suite, layout, message):
    from amrbench.api import AmrbenchError
    from tests.conftest import TINY_SUITE

    with pytest.raises(AmrbenchError, match=message):
        load_suite(write_suite(TINY_SUITE + layout + "\n"))


# --------------------------------------------------------------------------- figures
THREE_METHODS = {**VALUES3, ("kcenter", "25%"): [0.56, 0.58, 0.57], ("kcenter", "50%"): [0.90, 0.88, 0.86]}


def three_method_suite(write_suite):
    from tests.conftest import TINY_SUITE

    suite = load_suite(write_suite(TINY_SUITE.replace("[uniform, herding]", "[uniform, herding, kcenter]")
                                   .replace("seeds: [0, 1]", "seeds: [0, 1, 2]")))
    return suite, fixed_records(suite, THREE_METHODS)


def test_curves_are_written_with_the_table_numbers(write_suite, tmp_path):
    suite, records = three_method_suite(write_suite)
    notes = figures.write_figures(suite, records, tmp_path / "out")
    png, data = tmp_path / "out" / "curve-toy-cnn1d.png", tmp_path / "out" / "curve-toy-cnn1d.csv"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and any("curve" in n for n in notes)
    rows = list(csv.DictReader(data.open()))
    assert [(r["row"], r["budget"], r["x"], r["n"]) for r in rows[:2]] == [("uniform", "25%", "25", "3"), ("uniform", "50%", "50", "3")]
    table = render(suite, records, "markdown")
    for r in rows:  # every plotted mean is the table's mean at its precision
        line = next(line for line in table_lines(table) if line.startswith(f"| {r['row']} "))
        column = ["25%", "50%"].index(r["budget"]) + 2
        shown = re.match(r"\**(\d+\.\d+)±", line.split("|")[column].strip()).group(1)
        assert f"{float(r['mean']):.2f}" == shown
        _, low, high = stats.t_interval(np.array(THREE_METHODS[(r["row"], r["budget"])]) * 100)
        assert float(r["low"]) == pytest.approx(low, rel=1e-5) and float(r["high"]) == pytest.approx(high, rel=1e-5)


def test_no_curve_when_columns_are_not_budgets(write_suite, tmp_path):
    suite = load_suite(write_suite(tiny(extra="table: {rows: budget, columns: method}\n")))
    figures.write_figures(suite, fixed_records(suite), tmp_path)
    assert not list(tmp_path.glob("curve-*"))


@pytest.mark.skipif(not stats.have_posthocs(), reason="needs the optional extra amrbench[stats]")
def test_cd_diagram_written_as_png_and_svg(write_suite, tmp_path):
    suite, records = three_method_suite(write_suite)
    figures.write_figures(suite, records, tmp_path)
    assert (tmp_path / "cd-tiny.png").stat().st_size > 1000 and "<svg" in (tmp_path / "cd-tiny.svg").read_text()


@pytest.mark.skipif(not stats.have_posthocs(), reason="needs the optional extra amrbench[stats]")
def test_cd_diagram_bytes_do_not_depend_on_the_hash_seed(tmp_path):
    """scikit-posthocs draws a crossbar's points in set order; the figure sorts them, so
    two processes with other PYTHONHASHSEEDs write the same bytes (the committed
    mdm-table1 evidence records: a crossbar over five rows)."""
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    svgs = []
    for hash_seed in ("1", "2"):
        folder = tmp_path / hash_seed
        shutil.copytree(repo / "results" / "mdm-table1-evidence", folder)
        subprocess.run([sys.executable, "-m", "amrbench.cli", "table", str(repo / "suites" / "table1.yaml"),
                        "--profile", "evidence", "--results", str(folder), "--write"], check=True, capture_output=True,
                       env={**os.environ, "PYTHONHASHSEED": hash_seed})
        svgs.append((folder / "cd-mdm-table1.svg").read_bytes())
    assert svgs[0] == svgs[1]


def test_cd_diagram_skipped_with_a_note_without_the_extra(write_suite, tmp_path, monkeypatch):
    suite, records = three_method_suite(write_suite)
    monkeypatch.setattr(stats, "have_posthocs", lambda: False)
    notes = figures.write_figures(suite, records, tmp_path)
    assert not list(tmp_path.glob("cd-*")) and any("amrbench[stats]" in n for n in notes)
    assert (tmp_path / "curve-toy-cnn1d.png").exists()


def test_cd_diagram_needs_three_rows(write_suite, tmp_path):
    suite = load_suite(write_suite())
    notes = figures.write_figures(suite, fixed_records(suite), tmp_path)
    assert not list(tmp_path.glob("cd-*")) and any("needs 3+ rows" in n for n in notes)


# --------------------------------------------------------------------------- the table command
def stored(write_suite, tmp_path, extra=""):
    path = write_suite(tiny(extra=extra + "profiles:\n  quick: {train: {epochs: 2}}\n"))
    suite = load_suite(path)
    out = tmp_path / "results"
    store = RecordStore(out / "records.jsonl")
    for record in fixed_records(suite)[:-1]:
        store.append(record)
    write_suite_meta(out, str(path), None)
    return path, out


def test_table_write_refreshes_table_and_figures(write_suite, tmp_path, capsys):
    path, out = stored(write_suite, tmp_path)
    assert main(["table", str(path), "--results", str(out), "--write"]) == 0
    assert "| uniform  | **55.00±7.07** |" in (out / "table.md").read_text()
    assert (out / "curve-toy-cnn1d.csv").exists() and "wrote 1 curve(s)" in capsys.readouterr().err


def test_table_of_a_profile_without_records_names_the_profiles_with_records(write_suite, tmp_path, capsys):
    path, out = stored(write_suite, tmp_path)
    assert main(["table", str(path), "--results", str(out), "--profile", "quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no records of profile 'quick'" in err and "records exist for: the default profile (no --profile)" in err
    assert len(err.splitlines()) == 1


def test_table_of_a_profile_never_run_gives_the_run_command_with_its_profile(write_suite, tmp_path, capsys):
    path = write_suite(tiny(extra="profiles:\n  quick: {train: {epochs: 2}}\n"))
    assert main(["table", str(path), "--results", str(tmp_path / "none"), "--profile", "quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert (f"no records yet; run `amrbench run {path} --profile quick --results {tmp_path / 'none'}` first" in err
            and len(err.splitlines()) == 1)
