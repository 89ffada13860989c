import os
from pathlib import Path

import pytest

from amrbench.suite import expand, load_suite
from amrbench.tables import render

GOLDEN = Path(__file__).parent / "golden"
# accuracy per (method, budget, seed): herding wins at 25 %, a tie at 50 %
VALUES = {
    ("uniform", "25%"): [0.50, 0.60], ("uniform", "50%"): [0.70, 0.80],
    ("herding", "25%"): [0.62, 0.64], ("herding", "50%"): [0.74, 0.76],
}


def fixed_records(suite):
    records = []
    for cell in expand(suite):
        labels = cell["labels"]
        value = VALUES[(labels["method"], labels["budget"])][labels["seed"]]
        records.append({"key": cell["key"], "status": "ok", "labels": labels, "metrics": {"accuracy": value}})
    records.append({"key": "x", "status": "failed", "labels": records[0]["labels"], "metrics": None})
    return records


def check_golden(name, text):
    path = GOLDEN / name
    if os.environ.get("AMRBENCH_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("fmt,ext", [("markdown", "md"), ("latex", "tex"), ("csv", "csv"), ("html", "html")])
def test_golden_tables(write_suite, fmt, ext):
    suite = load_suite(write_suite())
    check_golden(f"tiny.{ext}", render(suite, fixed_records(suite), fmt))


def test_mean_std_bold_and_ties(write_suite):
    suite = load_suite(write_suite())
    text = render(suite, fixed_records(suite), "markdown")
    assert "| uniform  |     55.00±7.07 | **75.00±7.07** |" in text  # ddof=1 std, tie in bold
    assert "| herding  | **63.00±1.41** | **75.00±1.41** | **69.00** |" in text
    assert "n = 2 seed(s)" in text


def test_missing_repeats_are_flagged(write_suite):
    suite = load_suite(write_suite())
    records = [r for r in fixed_records(suite) if not (r["labels"]["method"] == "uniform" and r["labels"]["seed"] == 1)]
    text = render(suite, records, "markdown")
    assert "50.00±0.00 (n=1)" in text and "different number of repeats" in text


def test_lower_is_better_bolds_the_minimum(write_suite):
    from tests.conftest import TINY_SUITE

    suite = load_suite(write_suite(TINY_SUITE + "table: {higher_is_better: false, avg: false}\n"))
    text = render(suite, fixed_records(suite), "markdown")
    assert "**55.00±7.07**" in text and "Avg" not in text


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
    from tests.conftest import TINY_SUITE

    layout = ("table:\n  pool: accuracies\n  extra_rows:\n"
              "    - {label: Ratio, metric: ratio, scale: 1, format: '{mean:.1f}', position: first}\n"
              "    - {label: Whole, metric: whole, pool: whole_all}\n")
    suite = load_suite(write_suite(TINY_SUITE + layout))
    records = fixed_records(suite)[:-1]
    for r in records:  # two evaluation models per record: value ± 0.01
        v = r["metrics"]["accuracy"]
        r["metrics"].update(accuracies=[v - 0.01, v + 0.01], ratio=float(r["labels"]["budget"].rstrip("%")),
                            whole_all=[0.9, 1.0])
    text = render(suite, records, "markdown")
    # uniform at 25 %: pooled [0.49, 0.51, 0.59, 0.61] -> mean 55, sample std 5.89
    assert "| uniform  |     55.00±5.89 |" in text
    assert "n = 4 per cell" in text
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[1].startswith("| Ratio ") and "25.0" in lines[1] and "50.0" in lines[1] and "**" not in lines[1]
    assert lines[-1].startswith("| Whole ") and "95.00±5.77" in lines[-1] and "**" not in lines[-1]


def test_metric_axis_puts_several_metrics_side_by_side(write_suite):
    from tests.conftest import TINY_SUITE

    layout = ("table: {rows: method, columns: metric, group: [dataset, model, budget],\n"
              "        metric: [accuracy, accuracy_L1], metric_labels: [L0, L1]}\n")
    suite = load_suite(write_suite(TINY_SUITE + layout))
    records = fixed_records(suite)[:-1]
    for r in records:
        r["metrics"]["accuracy_L1"] = r["metrics"]["accuracy"] / 2
    text = render(suite, records, "markdown")
    header = next(line for line in text.splitlines() if line.startswith("| Method"))
    assert header.split("|")[2:5] == [" " * 13 + "L0 ", " " * 13 + "L1 ", "       Avg "]
    assert "| uniform  |     55.00±7.07 |     27.50±3.54 |     41.25 |" in text
    assert "accuracy, accuracy_L1" in text


@pytest.mark.parametrize("layout,message", [
    ("table: {columns: metric, metric: accuracy}", "give a list of metric names"),
    ("table: {metric: [accuracy, loss]}", "needs rows: metric or columns: metric"),
    ("table: {columns: metric, metric: [a, b], metric_labels: [x]}", "one per entry"),
    ("table: {extra_rows: [{label: x}]}", "at least label and metric"),
    ("table: {extra_rows: [{label: x, metric: y, where: 1}]}", "unknown key"),
])
def test_bad_table_layouts_name_the_key(write_suite, layout, message):
    from amrbench.api import AmrbenchError
    from tests.conftest import TINY_SUITE

    with pytest.raises(AmrbenchError, match=message):
        load_suite(write_suite(TINY_SUITE + layout + "\n"))
