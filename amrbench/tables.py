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


def records_frame(records: list, metric: str) -> pd.DataFrame:
    rows = []
    for r in records:
        if r.get("status") != "ok":
            continue
        value = (r.get("metrics") or {}).get(metric)
        if not isinstance(value, (int, float)):
            continue
        rows.append({**r["labels"], "value": float(value)})
    return pd.DataFrame(rows, columns=["dataset", "method", "budget", "model", "seed", "value"])


def _decimals(fmt: str) -> int:
    found = re.search(r"mean:[^}]*\.(\d+)f", fmt)
    return int(found.group(1)) if found else 2


class Table:
    """One rendered table: header, row labels, cell strings, bold flags, caption."""

    def __init__(self, title: str, header: list, rows: list, cells: list, bold: list, caption: str):
        self.title, self.header, self.rows, self.cells, self.bold, self.caption = title, header, rows, cells, bold, caption


def build_tables(suite, records: list) -> list[Table]:
    layout = suite.table
    frame = records_frame(records, layout["metric"])
    order = {
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
        tables.append(_one_table(suite, selected, order[rows_axis], order[cols_axis], rows_axis, cols_axis, title))
    return tables


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
    caption = layout["caption"] or (f"{layout['metric']}" + (f" ×{scale:g}" if scale != 1 else "") +
                                    f", mean ± std over n = {n_text} seed(s) per cell; best per column in bold.")
    if counts and counts != {expected}:
        caption += f" Cells marked (n=…) have a different number of repeats than the suite's {expected}."
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
