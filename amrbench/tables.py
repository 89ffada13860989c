"""Paper-style tables from stored records: mean±std per cell, best per column in bold,
the number of repeats stated in the caption; Markdown, LaTeX, CSV and HTML.

Aggregation: pandas, sample standard deviation (ddof=1; 0 when a cell has one repeat).
The best value is chosen on means rounded to the displayed precision, so ties that look
equal are all bold. Rows and columns keep the suite's order.
"""
from __future__ import annotations

import csv
import html
import io
import re
from typing import Optional

import numpy as np
import pandas as pd
from tabulate import tabulate

from amrbench.api import AmrbenchError

FORMATS = ("markdown", "latex", "csv", "html")


def metric_names(layout: dict) -> list:
    """The table's metrics: one name, or the list given for a ``metric`` axis."""
    metric = layout["metric"]
    return [metric] if isinstance(metric, str) else list(metric)


def metric_labels(layout: dict) -> list:
    return [str(x) for x in (layout.get("metric_labels") or metric_names(layout))]


def records_frame(records: list, metric, pool: Optional[str] = None, labels: Optional[list] = None) -> pd.DataFrame:
    """One row per ok record and metric name (``metric`` is a name or a list; its
    ``labels`` fill the ``metric`` column); with ``pool``, one row per entry of the
    record's list metric ``pool`` (e.g. the accuracies of its evaluation models)."""
    names = [metric] if isinstance(metric, str) else list(metric)
    labels = labels or names
    rows = []
    for r in records:
        if r.get("status") != "ok":
            continue
        metrics = r.get("metrics") or {}
        for name, label in zip(names, labels):
            values = metrics.get(pool) if pool else [metrics.get(name)]
            if not isinstance(values, list):
                continue
            rows += [{**r["labels"], "metric": label, "value": float(v)} for v in values
                     if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return pd.DataFrame(rows, columns=["dataset", "method", "budget", "model", "seed", "metric", "value"])


def _decimals(fmt: str) -> int:
    found = re.search(r"mean:[^}]*\.(\d+)f", fmt)
    return int(found.group(1)) if found else 2


class Table:
    """One rendered table: header, row labels, cell strings, bold flags, caption."""

    def __init__(self, title: str, header: list, rows: list, cells: list, bold: list, caption: str):
        self.title, self.header, self.rows, self.cells, self.bold, self.caption = title, header, rows, cells, bold, caption


def build_tables(suite, records: list) -> list[Table]:
    layout = suite.table
    frame = records_frame(records, layout["metric"], layout.get("pool"), metric_labels(layout))
    order = {
        "metric": metric_labels(layout),
        "dataset": [d["label"] for d in suite.datasets],
        "method": [m["label"] for m in suite.methods],
        "budget": [b.label() if b else "" for b in suite.budgets],
        "model": [m["label"] for m in suite.models],
        "seed": list(suite.seeds),
    }
    rows_axis, cols_axis = layout["rows"], layout["columns"]
    groups = [g for g in (layout["group"] or []) if g not in (rows_axis, cols_axis)]
    tables = []
    for group_values in _group_values(order, groups):
        selected = frame
        for axis, value in zip(groups, group_values):
            selected = selected[selected[axis] == value]
        title = " · ".join(str(v) for v in group_values) or (layout["title"] or suite.name)
        table = _one_table(suite, selected, order[rows_axis], order[cols_axis], rows_axis, cols_axis, title)
        in_group = [r for r in records if r.get("status") == "ok"
                    and all(r["labels"].get(a) == v for a, v in zip(groups, group_values))]
        for spec in layout.get("extra_rows") or []:
            _add_extra_row(table, spec, in_group, order[cols_axis], cols_axis, layout)
        tables.append(table)
    return tables


def _add_extra_row(table, spec: dict, records: list, col_values: list, cols_axis: str, layout: dict) -> None:
    """A row from another metric (e.g. the SPC ratio, the whole-dataset accuracy): per
    column, one record per seed (they repeat the value across methods), its ``metric``
    (or the entries of its list ``pool``), mean ± std; never bold, no Avg."""
    scale = float(spec.get("scale", layout["scale"]))
    fmt = spec.get("format", layout["format"])
    texts = []
    for c in col_values:
        per_seed = {}
        for r in records:
            if r["labels"].get(cols_axis) == c:
                per_seed.setdefault(r["labels"].get("seed"), r["metrics"] or {})
        values = []
        for metrics in per_seed.values():
            found = metrics.get(spec["pool"]) if spec.get("pool") else [metrics.get(spec["metric"])]
            values += [float(v) for v in (found if isinstance(found, list) else []) if isinstance(v, (int, float))]
        if not values:
            texts.append("–")
            continue
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        texts.append(fmt.format(mean=float(np.mean(values)) * scale, std=std * scale))
    if len(table.header) > len(col_values) + 1:  # the Avg column
        texts.append("")
    at = 0 if spec.get("position", "last") == "first" else len(table.rows)
    table.rows.insert(at, str(spec["label"]))
    table.cells.insert(at, texts)
    table.bold.insert(at, [False] * len(texts))


def _group_values(order: dict, groups: list) -> list:
    combos = [()]
    for axis in groups:
        combos = [c + (v,) for c in combos for v in order[axis]]
    return combos


def _one_table(suite, frame, row_values, col_values, rows_axis, cols_axis, title) -> Table:
    layout = suite.table
    scale, fmt = float(layout["scale"]), layout["format"]
    digits = _decimals(fmt)
    stats = frame.groupby([rows_axis, cols_axis])["value"].agg(["mean", "std", "count"]) if len(frame) else None
    means = np.full((len(row_values), len(col_values)), np.nan)
    texts = [["–"] * len(col_values) for _ in row_values]
    counts = set()
    expected = len(suite.seeds) if "seed" not in (rows_axis, cols_axis) else 1
    if layout.get("pool") and stats is not None and len(stats):
        expected = int(stats["count"].mode().iloc[0])  # pooled values per cell (e.g. seeds x models)
    for i, r in enumerate(row_values):
        for j, c in enumerate(col_values):
            if stats is None or (r, c) not in stats.index:
                continue
            mean, std, count = stats.loc[(r, c)]
            std = 0.0 if count < 2 or np.isnan(std) else std
            means[i, j] = round(mean * scale, digits)
            texts[i][j] = fmt.format(mean=mean * scale, std=std * scale) + (f" (n={int(count)})" if count != expected else "")
            counts.add(int(count))
    header = [rows_axis.capitalize()] + [str(c) for c in col_values]
    if layout["avg"] and len(col_values) > 1:
        header.append("Avg")
        full = ~np.isnan(means).any(axis=1)
        avg = np.array([round(float(np.mean(means[i])), digits) if full[i] else np.nan for i in range(len(row_values))])
        means = np.column_stack([means, avg]) if len(row_values) else means
        for i in range(len(row_values)):
            texts[i].append(f"{avg[i]:.{digits}f}" if full[i] else "–")
    bold = _best(means, layout["higher_is_better"])
    n_text = ", ".join(str(n) for n in sorted(counts)) if counts else "0"
    over = f"the pooled {layout['pool']} (n = {n_text} per cell)" if layout.get("pool") else f"n = {n_text} seed(s) per cell"
    caption = layout["caption"] or (", ".join(metric_names(layout)) + (f" ×{scale:g}" if scale != 1 else "") +
                                    f", mean ± std over {over}; best per column in bold.")
    if counts and counts != {expected}:
        caption += (f" Cells marked (n=…) have a different number of values than the usual {expected}." if layout.get("pool")
                    else f" Cells marked (n=…) have a different number of repeats than the suite's {expected}.")
    return Table(title, header, [str(r) for r in row_values], texts, bold.tolist(), caption)


def _best(means: np.ndarray, higher_is_better: bool) -> np.ndarray:
    bold = np.zeros(means.shape, dtype=bool)
    for j in range(means.shape[1] if means.ndim == 2 else 0):
        column = means[:, j]
        if np.isnan(column).all():
            continue
        best = np.nanmax(column) if higher_is_better else np.nanmin(column)
        bold[:, j] = column == best
    return bold


# --------------------------------------------------------------------------- rendering
def render(suite, records: list, fmt: str = "markdown") -> str:
    if fmt not in FORMATS:
        raise AmrbenchError(f"--format {fmt!r}: allowed: {', '.join(FORMATS)}")
    tables = build_tables(suite, records)
    return {"markdown": _markdown, "latex": _latex, "csv": _csv, "html": _html}[fmt](suite, tables)


def _styled(table: Table, on, off="") -> list:
    return [[row] + [f"{on}{t}{off}" if b else t for t, b in zip(texts, bolds)]
            for row, texts, bolds in zip(table.rows, table.cells, table.bold)]


def _markdown(suite, tables) -> str:
    parts = [f"# {suite.name}\n"]
    for t in tables:
        body = tabulate(_styled(t, "**", "**"), headers=t.header, tablefmt="pipe", disable_numparse=True,
                        colalign=["left"] + ["right"] * (len(t.header) - 1))
        parts.append(f"## {t.title}\n\n{body}\n\n*{t.caption}*\n")
    return "\n".join(parts)


_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_escape(text: str) -> str:
    text = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))
    return text.replace("±", r"$\pm$").replace("→", r"$\rightarrow$").replace("×", r"$\times$")


def _latex(suite, tables) -> str:
    parts = []
    for t in tables:
        lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{latex_escape(t.title)}: {latex_escape(t.caption)}}}",
                 r"\begin{tabular}{l" + "r" * (len(t.header) - 1) + "}", r"\toprule",
                 " & ".join(latex_escape(h) for h in t.header) + r" \\", r"\midrule"]
        for row in _styled(t, "\x00", "\x01"):
            cells = [latex_escape(c).replace("\x00", r"\textbf{").replace("\x01", "}") for c in row]
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _csv(suite, tables) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for t in tables:
        writer.writerow(["table"] + t.header)
        for row, texts, bolds in zip(t.rows, t.cells, t.bold):
            writer.writerow([t.title, row] + [f"*{x}*" if b else x for x, b in zip(texts, bolds)])
    return out.getvalue()


def _html(suite, tables) -> str:
    parts = [f"<h1>{html.escape(suite.name)}</h1>"]
    for t in tables:
        rows = [[html.escape(c) for c in row] for row in _styled(t, "\x00", "\x01")]
        rows = [[c.replace("\x00", "<b>").replace("\x01", "</b>") for c in row] for row in rows]
        body = tabulate(rows, headers=[html.escape(h) for h in t.header], tablefmt="unsafehtml", disable_numparse=True)
        parts.append(f"<h2>{html.escape(t.title)}</h2>\n{body}\n<p><i>{html.escape(t.caption)}</i></p>")
    return "\n".join(parts) + "\n"
