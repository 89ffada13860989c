"""Paper-style tables from stored records: one value per cell with its uncertainty,
honest bold, average ranks, the profile that made the records (rendered as Markdown,
LaTeX, CSV and HTML by ``amrbench.render``).

- Cell: the mean over seeds (or over the pooled values of ``pool:``, e.g. every
  evaluation model of every seed) ± the sample standard deviation (ddof=1, 0 with one
  value), or with ``table: {ci: 95}`` ± the half-width of the 95 % Student t-interval
  (the suite's ``format`` receives it as ``std``, and the caption says so). A cell with
  a single value then shows its mean alone. ``(n=…)`` marks every cell whose
  count differs from the caption's.
- Bold: the best cell of a column (on means rounded to the displayed precision, so
  ties that look equal are all bold) and every cell not significantly worse than it: a
  one-sided paired t-test at α = 0.05 (see amrbench.stats for why not Wilcoxon). Values
  pair when they share every axis the table does not show (the seed; with ``pool:`` also
  the position in the pooled list, unless ``pair_positions: false``: then one value per
  seed, the mean of its pooled values, which also makes a ``ci:`` interval one over
  seeds). A column whose best cell has one value, or a cell
  with fewer than two pairs in common with the best, is not bold: no comparison, no
  claim. The Avg column (mean of the displayed column means) is bold by the same rule
  over the per-pair averages across the columns.
- Rank: each row's average rank (1 = best, ties averaged) over the table's columns,
  counting only columns where every row with any value has one; shown with 2+ such rows
  and columns (``ranks: false`` hides it). Under the tables: average ranks and the
  Friedman test over every complete (group, column) block of displayed means, the
  blocks of the critical-difference diagram (amrbench.figures).
- Marks: a protocol may declare per-record flags (``table_marks``: a metric, the value
  that raises it, a sign and a reason; the condense protocol's ``converged: false``).
  A cell with any such record shows the sign (e.g. †), is never bold nor a bold
  reference, and the caption gives the reason; so does an Avg over such a cell.
  ``mark_warnings`` counts them for `amrbench run`.
- Profile: every format states the profile that made the records, the training-set
  size per dataset (records' ``n_train``, else the dataset spec), seeds and epochs;
  the ``quick`` profile is labelled a smoke test.
- Choice: with ``table: {choose_by: val_accuracy}``, under each table the row a
  held-out validation metric chooses, per column and over all columns, with the test
  value the table shows for it (see :func:`choices`); ``choose_from`` limits the choice
  to the listed rows; with ``choose_against: ROW``, the chosen row's paired difference
  against ROW on validation and on test.
Rows and columns keep the suite's order.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from amrbench import stats
from amrbench.api import AmrbenchError

FORMATS = ("markdown", "latex", "csv", "html")
AXES = ("dataset", "method", "budget", "model", "seed", "metric")
SMOKE_PROFILE = "quick"


def metric_names(layout: dict) -> list:
    """The table's metrics: one name, or the list given for a ``metric`` axis."""
    metric = layout["metric"]
    return [metric] if isinstance(metric, str) else list(metric)


def metric_labels(layout: dict) -> list:
    return [str(x) for x in (layout.get("metric_labels") or metric_names(layout))]


def axis_labels(suite) -> dict:
    """Every axis's labels in the suite's order."""
    return {
        "metric": metric_labels(suite.table),
        "dataset": [d["label"] for d in suite.datasets],
        "method": [m["label"] for m in suite.methods],
        "budget": [b.label() if b else "" for b in suite.budgets],
        "model": [m["label"] for m in suite.models],
        "seed": list(suite.seeds),
    }


def metric_value(metrics: dict, name: str):
    """A record's metric ``name``; ``a.b`` reads entry ``b`` of the mapping metric ``a``
    (``per_snr.18``: the accuracy at 18 dB). None when the record has no such value."""
    if name in metrics:
        return metrics[name]
    head, _, rest = name.partition(".")
    inner = metrics.get(head)
    return metric_value(inner, rest) if rest and isinstance(inner, dict) else None


def ranked_columns(layout: dict, col_values: list) -> list:
    """The indices of the columns the Rank column, the Friedman test and the CD diagram
    read: all, or those ``ranks`` lists (e.g. the per-SNR columns, not their aggregate)."""
    listed = ranked_labels(layout)
    return [j for j, c in enumerate(col_values) if listed is None or str(c) in listed]


def ranked_labels(layout: dict) -> Optional[list]:
    """The column labels ``ranks`` lists as strings; None when it is a bool (all columns)."""
    chosen = layout.get("ranks", True)
    return None if isinstance(chosen, bool) else [str(x) for x in chosen]


def records_frame(records: list, metric, pool: Optional[str] = None, labels: Optional[list] = None) -> pd.DataFrame:
    """One row per ok record and metric name (``metric`` is a name or a list; its
    ``labels`` fill the ``metric`` column); with ``pool``, one row per entry of the
    record's list metric ``pool`` (e.g. the accuracies of its evaluation models), its
    index in ``position`` (0 without ``pool``)."""
    names = [metric] if isinstance(metric, str) else list(metric)
    labels = labels or names
    rows = []
    for r in records:
        if r.get("status") != "ok":
            continue
        metrics = r.get("metrics") or {}
        for name, label in zip(names, labels):
            values = metric_value(metrics, pool) if pool else [metric_value(metrics, name)]
            if not isinstance(values, list):
                continue
            rows += [{**r["labels"], "metric": label, "position": k, "value": float(v)} for k, v in enumerate(values)
                     if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return pd.DataFrame(rows, columns=[*AXES, "position", "value"])


def table_axes(layout: dict) -> tuple:
    """(rows axis, columns axis, group axes) of a layout."""
    rows_axis, cols_axis = layout["rows"], layout["columns"]
    return rows_axis, cols_axis, [g for g in (layout["group"] or []) if g not in (rows_axis, cols_axis)]


def block_axes_of(layout: dict, metrics: list) -> list:
    """The axes a block is made of: every label axis the table does not lay out as rows
    or columns (``metric`` only when several metrics are compared)."""
    rows_axis, cols_axis, _ = table_axes(layout)
    return [a for a in AXES if a not in (rows_axis, cols_axis) and (a != "metric" or len(metrics) > 1)]


def pair_axes(layout: dict) -> list:
    """The axes a cell's values differ by, and so pair on: every axis the table does
    not show (the seed, and any axis pooled into a cell) plus the pooled position,
    unless ``pair_positions: false`` (then a seed's pooled values are averaged into one
    value before any test: the seed is the unit, e.g. one condensed set per seed whose
    evaluation models share it)."""
    rows_axis, cols_axis, groups = table_axes(layout)
    positions = ("position",) if layout.get("pair_positions", True) else ()
    return [a for a in (*AXES, *positions) if a not in (rows_axis, cols_axis, *groups)]


def cell_samples(frame: pd.DataFrame, rows_axis: str, cols_axis: str, pairs: list) -> dict:
    """(row label, column label) -> the cell's raw values as {pair key: value}, the pair
    key a tuple over ``pairs`` (values sharing a key are averaged)."""
    collected = {}
    columns = [frame[a].tolist() for a in (rows_axis, cols_axis, *pairs)] + [frame["value"].tolist()]
    for r, c, *rest in zip(*columns):
        *key, value = rest
        collected.setdefault((r, c), {}).setdefault(tuple(key), []).append(value)
    return {cell: {k: v[0] if len(v) == 1 else float(np.mean(v)) for k, v in by_key.items()}
            for cell, by_key in collected.items()}


def paired(a: dict, b: dict) -> tuple:
    """The values of two cells on their common pair keys, in key order, as two arrays."""
    common = sorted(a.keys() & b.keys(), key=repr)
    return np.array([a[k] for k in common], dtype=float), np.array([b[k] for k in common], dtype=float)


def _decimals(fmt: str) -> int:
    found = re.search(r"mean:[^}]*\.(\d+)f", fmt)
    return int(found.group(1)) if found else 2


def confidence(layout: dict) -> Optional[float]:
    """The table's confidence level as a fraction (``ci: 95`` -> 0.95), or None."""
    return float(layout["ci"]) / 100 if layout.get("ci") else None


@dataclass
class Table:
    """One rendered table: header, row labels, cell strings, bold flags, caption; and,
    for figures and claims, the raw values behind each cell."""

    title: str
    header: list
    rows: list
    cells: list
    bold: list
    caption: str
    group: dict = field(default_factory=dict)
    row_values: list = field(default_factory=list)
    col_values: list = field(default_factory=list)
    samples: dict = field(default_factory=dict)  # (row, column) -> {pair key: raw value}
    pair_names: list = field(default_factory=list)  # the axes of a pair key
    means: Optional[np.ndarray] = None  # displayed (rounded, scaled) means, rows x columns
    marks: dict = field(default_factory=dict)  # (row, column) -> the protocol's signs on it (e.g. † unconverged)


def build_tables(suite, records: list) -> list[Table]:
    layout = suite.table
    frame = records_frame(records, layout["metric"], layout.get("pool"), metric_labels(layout))
    order = axis_labels(suite)
    rows_axis, cols_axis, groups = table_axes(layout)
    marks = table_marks(suite)
    tables = []
    for group_values in _group_values(order, groups):
        selected = frame
        for axis, value in zip(groups, group_values):
            selected = selected[selected[axis] == value]
        title = " · ".join(str(v) for v in group_values) or (layout["title"] or suite.name)
        in_group = [r for r in records if r.get("status") == "ok"
                    and all(r["labels"].get(a) == v for a, v in zip(groups, group_values))]
        marked = marked_cells(marks, in_group, rows_axis, cols_axis)
        table = _one_table(suite, selected, order[rows_axis], order[cols_axis], title, marked, marks)
        table.group = dict(zip(groups, group_values))
        for spec in layout.get("extra_rows") or []:
            _add_extra_row(table, spec, in_group, order[cols_axis], cols_axis, layout)
        tables.append(table)
    return tables


def table_marks(suite) -> list:
    """The suite protocol's per-record flags (``table_marks``: dicts with ``metric``,
    ``when``, ``sign``, ``text``); none when the protocol declares none or is unknown."""
    from amrbench.registry import default_registry

    try:
        protocol = default_registry().get("protocol", suite.protocol)
    except AmrbenchError:
        return []
    return list(protocol.table_marks or ())


def record_signs(marks: list, record: dict) -> list:
    """The signs of the marks an ok record raises (its metric equals the mark's ``when``)."""
    metrics = record.get("metrics") or {}
    return [m["sign"] for m in marks
            if m["metric"] in metrics and type(metrics[m["metric"]]) is type(m["when"]) and metrics[m["metric"]] == m["when"]]


def marked_cells(marks: list, records: list, rows_axis: str, cols_axis: str) -> dict:
    """(row label, column label) -> the signs raised by any of the cell's ok records."""
    out: dict = {}
    for r in records:
        if r.get("status") != "ok":
            continue
        for sign in record_signs(marks, r):
            signs = out.setdefault((r["labels"].get(rows_axis), r["labels"].get(cols_axis)), [])
            if sign not in signs:
                signs.append(sign)
    return out


def mark_warnings(suite, records: list) -> list:
    """One line per raised mark: how many of the suite's ok records (cells) raise it and why."""
    marks = table_marks(suite)
    ok = [r for r in records if r.get("status") == "ok"]
    lines = []
    for m in marks:
        n = sum(1 for r in ok if m["sign"] in record_signs([m], r))
        if n:
            lines.append(f"{suite.name}: {n} of {len(ok)} cells marked {m['sign']} ({m['text']}); "
                         f"never bold in the tables")
    return lines


def _add_extra_row(table, spec: dict, records: list, col_values: list, cols_axis: str, layout: dict) -> None:
    """A row from another metric (e.g. the SPC ratio, the whole-dataset accuracy): per
    column, one record per seed (they repeat the value across methods), its ``metric``
    (or the entries of its list ``pool``), mean ± std; never bold, no Avg or Rank."""
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
            found = metric_value(metrics, spec["pool"]) if spec.get("pool") else [metric_value(metrics, spec["metric"])]
            values += [float(v) for v in (found if isinstance(found, list) else []) if isinstance(v, (int, float))]
        if not values:
            texts.append("–")
            continue
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        texts.append(fmt.format(mean=float(np.mean(values)) * scale, std=std * scale))
    texts += [""] * (len(table.header) - 1 - len(texts))  # the Avg and Rank columns
    at = 0 if spec.get("position", "last") == "first" else len(table.rows)
    table.rows.insert(at, str(spec["label"]))
    table.cells.insert(at, texts)
    table.bold.insert(at, [False] * len(texts))


def _group_values(order: dict, groups: list) -> list:
    combos = [()]
    for axis in groups:
        combos = [c + (v,) for c in combos for v in order[axis]]
    return combos


def _cell_text(fmt: str, mean: float, std: float, values: dict, scale: float, level: Optional[float]) -> str:
    """The suite's ``format`` filled with the mean and the std (or the CI half-width)."""
    if level is None:
        return fmt.format(mean=mean * scale, std=std * scale)
    if len(values) < 2:  # no interval from one value: the mean alone
        found = re.search(r"\{mean(:[^}]*)?\}", fmt)
        return found.group(0).format(mean=mean * scale) if found else fmt.format(mean=mean * scale, std=float("nan"))
    _, low, high = stats.t_interval(list(values.values()), level)
    return fmt.format(mean=mean * scale, std=(high - low) / 2 * scale)


def _one_table(suite, frame, row_values, col_values, title, marked=None, marks=()) -> Table:
    layout = suite.table
    rows_axis, cols_axis, _ = table_axes(layout)
    scale, fmt, level = float(layout["scale"]), layout["format"], confidence(layout)
    digits = _decimals(fmt)
    samples = cell_samples(frame, rows_axis, cols_axis, pair_axes(layout))
    # mean, std and count as pandas aggregates them (the numbers committed tables show)
    summary = frame.groupby([rows_axis, cols_axis])["value"].agg(["mean", "std", "count"]) if len(frame) else None
    means = np.full((len(row_values), len(col_values)), np.nan)
    exact = np.full_like(means, np.nan)  # unrounded, to pick the reference among ties
    texts = [["–"] * len(col_values) for _ in row_values]
    counts = {int(n) for n in summary["count"]} if summary is not None else set()
    expected = len(suite.seeds) if "seed" in pair_axes(layout) else 1
    if layout.get("pool") and samples:
        expected = int(summary["count"].mode().iloc[0])  # pooled values per cell (e.g. seeds x models)
    for i, r in enumerate(row_values):
        for j, c in enumerate(col_values):
            values = samples.get((r, c))
            if values is None:
                continue
            mean, std, count = summary.loc[(r, c)]
            std = 0.0 if count < 2 or np.isnan(std) else float(std)
            exact[i, j] = float(mean) * scale
            means[i, j] = round(exact[i, j], digits)
            texts[i][j] = _cell_text(fmt, float(mean), std, values, scale, level) + \
                (f" (n={int(count)})" if count != expected else "") + "".join((marked or {}).get((r, c), []))
    cell_values = [[samples.get((r, c)) for c in col_values] for r in row_values]
    flagged = np.array([[(r, c) in (marked or {}) for c in col_values] for r in row_values], dtype=bool).reshape(
        len(row_values), len(col_values))
    eligible_means, eligible_exact = np.where(flagged, np.nan, means), np.where(flagged, np.nan, exact)
    bold = np.column_stack([_bold_column(eligible_means[:, j], eligible_exact[:, j],
                                         [None if flagged[i, j] else row[j] for i, row in enumerate(cell_values)], layout)
                            for j in range(len(col_values))]) if len(col_values) and len(row_values) else \
        np.zeros((len(row_values), len(col_values)), dtype=bool)
    header = [rows_axis.capitalize()] + [str(c) for c in col_values]
    if layout["avg"] and len(col_values) > 1:
        header.append("Avg")
        avg_texts, avg_bold = _avg_column(means, cell_values, layout, digits, flagged.any(axis=1))
        for i in range(len(row_values)):
            signs = [s for c in col_values for s in (marked or {}).get((row_values[i], c), [])]
            texts[i].append(avg_texts[i] + "".join(dict.fromkeys(signs)))
        bold = np.column_stack([bold, avg_bold])
    ranks = average_ranks(means[:, ranked_columns(layout, col_values)], layout) if layout.get("ranks", True) else None
    if ranks is not None:
        header.append("Rank")
        for i in range(len(row_values)):
            texts[i].append(f"{ranks[i]:.2f}" if np.isfinite(ranks[i]) else "–")
        bold = np.column_stack([bold, np.zeros(len(row_values), dtype=bool)])
    pairs = max((len(v) for v in samples.values()), default=0)
    caption = _caption(suite, frame, counts, expected, ranks is not None, pairs)
    raised = {s for signs in (marked or {}).values() for s in signs}
    for m in marks:
        if m["sign"] in raised:
            caption += f" {m['sign']} {m['text']} (in at least one of the cell's records): never bold."
    return Table(title, header, [str(r) for r in row_values], texts, bold.tolist(), caption,
                 row_values=list(row_values), col_values=list(col_values), samples=samples,
                 pair_names=pair_axes(layout), means=means, marks=dict(marked or {}))


def _bold_column(shown: np.ndarray, exact: np.ndarray, values: list, layout: dict) -> np.ndarray:
    """Bold flags of one column: the best shown value (ties all bold) and every cell
    not significantly worse than the best by the one-sided paired t-test; nothing when
    the best has fewer than two values."""
    bold = np.zeros(len(shown), dtype=bool)
    if np.isnan(shown).all():
        return bold
    higher = bool(layout["higher_is_better"])
    best = np.nanmax(shown) if higher else np.nanmin(shown)
    tied = np.flatnonzero(shown == best)
    reference = tied[np.argmax(exact[tied]) if higher else np.argmin(exact[tied])]
    if values[reference] is None or len(values[reference]) < 2:
        return bold
    bold[tied] = True
    for i, other in enumerate(values):
        if other is None or bold[i]:
            continue
        worse = stats.significantly_worse(*paired(values[reference], other), higher)
        bold[i] = worse is False
    return bold


def _avg_column(means: np.ndarray, cell_values: list, layout: dict, digits: int, flagged=None) -> tuple:
    """The Avg column's texts (mean of the displayed column means) and its bold flags,
    tested over each row's per-pair averages across the columns (pairs present in
    every column); a ``flagged`` row (a marked cell) is never bold."""
    full = ~np.isnan(means).any(axis=1)
    avg = np.array([round(float(np.mean(means[i])), digits) if full[i] else np.nan for i in range(len(means))])
    per_pair = []
    for i, row in enumerate(cell_values):
        if not full[i]:
            per_pair.append(None)
            continue
        common = set.intersection(*(set(cell) for cell in row))
        per_pair.append({k: float(np.mean([cell[k] for cell in row])) for k in common} or None)
    exact = np.array([float(np.mean(list(p.values()))) if p else np.nan for p in per_pair])
    texts = [f"{avg[i]:.{digits}f}" if full[i] else "–" for i in range(len(means))]
    if flagged is not None and flagged.any():
        avg, exact = np.where(flagged, np.nan, avg), np.where(flagged, np.nan, exact)
        per_pair = [None if f else p for f, p in zip(flagged, per_pair)]
    return texts, _bold_column(avg, exact, per_pair, layout)


def average_ranks(means: np.ndarray, layout: dict) -> Optional[list]:
    """Each row's average rank over the columns where every row with any value has one
    (1 = best, ties averaged; on displayed means), NaN for a row without values; None
    with fewer than 2 such rows or 2 such columns."""
    present = ~np.isnan(means).all(axis=1) if means.size else np.zeros(len(means), dtype=bool)
    shown = means[present]
    complete = shown[:, ~np.isnan(shown).any(axis=0)] if shown.size else shown
    if shown.shape[0] < 2 or complete.ndim < 2 or complete.shape[1] < 2:
        return None
    ranks = stats.average_ranks(pd.DataFrame(complete.T), bool(layout["higher_is_better"])).to_numpy()
    out = np.full(len(means), np.nan)
    out[present] = ranks
    return out.tolist()


def _caption(suite, frame, counts: set, expected: int, ranked: bool, pairs: int) -> str:
    """``pairs``: the most values any cell's tests see (seeds, or seeds x pooled positions)."""
    layout = suite.table
    scale, level = float(layout["scale"]), confidence(layout)
    n_text = ", ".join(str(n) for n in sorted(counts)) if counts else "0"
    pooled = bool(layout.get("pool"))
    over = f"the pooled {layout['pool']} (n = {n_text} per cell)" if pooled else f"n = {n_text} seed(s) per cell"
    spread = f"± half-width of the {layout['ci']:g} % t-interval" if level else "± std"
    if level and pooled and "position" not in pair_axes(layout):
        over += f", the interval over the means of the seeds' {layout['pool']}"
    text = layout["caption"] or (", ".join(metric_names(layout)) + (f" ×{scale:g}" if scale != 1 else ""))
    text = f"{text.rstrip('.')}; mean {spread} over {over}."
    if counts and counts != {expected}:
        text += (f" Cells marked (n=…) have a different number of values than the usual {expected}." if pooled
                 else f" Cells marked (n=…) have a different number of repeats than the suite's {expected}.")
    one_value = not counts or max(counts) < 2
    if one_value or pairs < 2:  # pairs < 2 with more values: pooled values of one seed, tested per seed
        text += " 1 value per cell: no comparison, nothing in bold." if pooled and one_value else \
            " 1 seed: no comparison, nothing in bold."
    else:
        text += (f" Bold: the best per column and every cell not significantly worse than it (one-sided paired "
                 f"t-test, α = {stats.ALPHA:g}, pairs share {_pairing_text(layout, frame)})"
                 + ("; Avg by the same test on per-pair averages." if layout["avg"] else "."))
    if ranked:
        listed = ranked_labels(layout)
        over_columns = "the columns" if listed is None else "the columns " + ", ".join(listed)
        text += f" Rank: average rank over {over_columns} (1 = best, ties averaged)."
    return text


def _pairing_text(layout: dict, frame: pd.DataFrame) -> str:
    """What values pair on, in words: 'the seed', or e.g. 'the seed and the position in accuracies'."""
    varying = [a for a in pair_axes(layout) if a != "position" and len(frame) and frame[a].nunique() > 1] or ["seed"]
    if layout.get("pool") and "position" not in pair_axes(layout):
        return " and ".join(f"the {a}" for a in varying) + f"; each pair is the mean of its {layout['pool']}"
    words = [f"the {a}" for a in varying] + ([f"the position in {layout['pool']}"] if layout.get("pool") else [])
    return " and ".join(words)


# --------------------------------------------------------------------------- the profile
def is_smoke(suite) -> bool:
    """Records of the ``quick`` profile (or the ``quick`` smoke suite itself) check the
    machinery; they do not rank methods."""
    return suite.profile == SMOKE_PROFILE or (suite.profile is None and suite.name == SMOKE_PROFILE)


def profile_text(suite, records: list) -> str:
    """One sentence on what made the records: the profile, the training-set size per
    dataset (records' ``n_train`` if present, else the dataset spec), seeds and epochs."""
    name = f"profile `{suite.profile}`" if suite.profile else "default profile"
    smoke = " (smoke test: not a ranking)" if is_smoke(suite) else ""
    train = {**suite.train, **((suite.settings or {}).get("classifier") or {})}
    epochs = train.get("epochs", "?")
    return (f"Records of the {name}{smoke}: training set {_train_sizes(suite, records)}; "
            f"{_seeds_text(suite, records)}; {epochs} epoch{'s' if epochs != 1 else ''}.")


def _seeds_text(suite, records: list) -> str:
    """How many of the suite's seeds the records hold: a partly run profile says so."""
    planned = len(suite.seeds)
    held = len({r["labels"].get("seed") for r in records
                if r.get("status") == "ok" and (r.get("labels") or {}).get("seed") in suite.seeds})
    if held in (0, planned):
        return f"{planned} seed{'s' if planned != 1 else ''}"
    return f"{held} of {planned} seeds stored"


def _train_sizes(suite, records: list) -> str:
    sizes = {}
    for r in records:
        n = (r.get("metrics") or {}).get("n_train") if r.get("status") == "ok" else None
        if isinstance(n, int) and not isinstance(n, bool):
            sizes.setdefault(r["labels"].get("dataset"), set()).add(n)
    raw = (suite.raw or {}).get("datasets") or []
    parts = []
    for i, dataset in enumerate(suite.datasets):
        found = sizes.get(dataset["label"])
        if found:
            lo, hi = min(found), max(found)
            count = f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"
            parts.append(f"{dataset['label']} {count} signals")
        else:
            given = raw[i].get("params") if i < len(raw) and isinstance(raw[i], dict) else None
            spec = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted((given or {}).items()))
            parts.append(f"{dataset['label']} (size not recorded; {dataset['name']}{': ' + spec if spec else ''})")
    return ", ".join(parts)


# --------------------------------------------------------------------------- ranks over all blocks
def rank_blocks(tables: list, layout: dict) -> pd.DataFrame:
    """One row per complete (group, column) block of displayed means, one column per
    row label that has any value: the blocks of the Friedman test and the
    critical-difference diagram (the columns ``ranks`` lists, when it lists some)."""
    if not tables or tables[0].means is None:
        return pd.DataFrame()
    blocks = [pd.Series(t.means[:, j], index=[str(r) for r in t.row_values], name=(t.title, str(t.col_values[j])))
              for t in tables for j in ranked_columns(layout, t.col_values)]
    frame = pd.DataFrame(blocks).dropna(axis=1, how="all")  # rows with no value anywhere take no part
    return frame.dropna(axis=0, how="any")


def rank_summary(suite, tables: list) -> Optional[str]:
    """Average ranks over every block and the Friedman test, in one sentence; None when
    the test cannot be computed."""
    blocks = rank_blocks(tables, suite.table)
    result = stats.friedman(blocks) if len(blocks) else None
    if result is None:
        return None
    ranks = stats.average_ranks(blocks, bool(suite.table["higher_is_better"]))
    listed = ", ".join(f"{k} {v:.2f}" for k, v in ranks.items())
    return (f"Average rank over {result.blocks} blocks (group × column): {listed}. "
            f"Friedman χ² = {result.statistic:.2f}, p = {result.pvalue:.3g}.")


# --------------------------------------------------------------------------- choosing a row on validation
def choices(suite, records: list, tables: list) -> list:
    """With ``table: {choose_by: METRIC}`` (e.g. ``val_accuracy``, the select protocol's
    accuracy on a held-out part of the training split), one line per table: in each
    column the row with the best mean METRIC over its records, and over all columns the
    row with the best mean of its column means (rows with a value in every column), each
    followed by the test value the table shows for that row. This is how to choose a
    hyper-parameter (rows = its values) without reading the test split: reporting the
    best *test* cell instead would overstate what the choice achieves. Ties go to the
    row listed first; "better" follows ``higher_is_better``."""
    metric = suite.table.get("choose_by")
    if not metric:
        return []
    layout = suite.table
    frame = records_frame(records, metric)
    compared = layout["choose_against"] is not None and isinstance(layout["metric"], str)
    shown = records_frame(records, layout["metric"], layout["pool"]) if compared else None
    return [_choice_line(t, frame, shown, metric, layout) for t in tables]


def _choice_line(table: Table, frame: pd.DataFrame, shown: Optional[pd.DataFrame], metric: str, layout: dict) -> str:
    rows_axis, cols_axis, _ = table_axes(layout)
    for axis, value in table.group.items():
        frame = frame[frame[axis] == value]
        shown = None if shown is None else shown[shown[axis] == value]
    means = frame.groupby([rows_axis, cols_axis])["value"].mean()
    among = None if layout["choose_from"] is None else {str(r) for r in layout["choose_from"]}
    grid = np.array([[means.get((r, c), np.nan) if among is None or str(r) in among else np.nan
                      for c in table.col_values] for r in table.row_values], dtype=float)
    grid = grid.reshape(len(table.row_values), len(table.col_values))
    if np.isnan(grid).all():
        return f"{table.title}: no record holds {metric}; nothing to choose."
    pick = np.nanargmax if layout["higher_is_better"] else np.nanargmin
    scale, digits = float(layout["scale"]), _decimals(layout["format"])
    parts = []
    for j, column in enumerate(table.col_values):
        if np.isnan(grid[:, j]).all():
            continue
        i = int(pick(grid[:, j]))
        parts.append(f"{column}: {table.row_values[i]} ({metric} {grid[i, j] * scale:.{digits}f}, "
                     f"test {_shown(table, i, str(column))})")
    complete = ~np.isnan(grid).any(axis=1)
    if complete.any():
        overall = grid.mean(axis=1)  # NaN for a row missing a column
        i = int(pick(overall))
        if len(table.col_values) > 1:
            parts.append(f"all columns: {table.row_values[i]} (mean {metric} {overall[i] * scale:.{digits}f}, "
                         f"test Avg {_shown(table, i, 'Avg')})")
        if layout["choose_against"] is not None:
            parts.append(_against(table.row_values[i], frame, shown, metric, layout))
    return f"{table.title}: " + "; ".join(parts) + "."


def _against(chosen, frame: pd.DataFrame, shown: Optional[pd.DataFrame], metric: str, layout: dict) -> str:
    """The row chosen over all columns against ``choose_against`` (e.g. the current
    default): the paired difference chosen - against of their ``choose_by`` values and of
    the test values the table shows, one pair per seed (and per value of any other axis
    the table does not show), each the mean over the columns both rows hold, with its
    t-interval at the table's ``ci`` level (95 % without one). The seed, not the (column,
    seed) cell, is the unit: within a seed the columns share the split, the held-out
    validation set and any shared artifact. Choosing the best of several rows on the same
    validation values makes its validation difference optimistic; the test difference,
    which the choice never read, is the estimate to report."""
    against = str(layout["choose_against"])
    if str(chosen) == against:
        return f"the chosen row is {against} (choose_against): nothing to compare"
    scale, digits = float(layout["scale"]), _decimals(layout["format"])
    level = confidence(layout) or stats.CONFIDENCE
    texts = []
    for name, values in ((metric, frame), ("test", shown)):
        if values is None:
            continue
        better, than = _paired_values(values, layout["rows"], layout["columns"], chosen, against)
        if len(better) < 2:
            texts.append(f"{name}: {len(better)} pair(s), no interval")
            continue
        d = stats.paired_difference(better, than, bool(layout["higher_is_better"]), level)
        texts.append(f"{name} {d.mean * scale:+.{digits}f} [{d.low * scale:+.{digits}f}, "
                     f"{d.high * scale:+.{digits}f}] (n = {d.n})")
    return (f"{chosen} − {against}: " + ", ".join(texts) +
            f" ({level * 100:g} % CI of the paired difference over seeds; positive: {chosen} better)")


def _paired_values(frame: pd.DataFrame, rows_axis: str, cols_axis: str, chosen, against) -> tuple:
    """Per pair key (every axis but the row and the column; pooled positions and the
    columns both rows hold averaged, non-finite values left out), the values of rows
    ``chosen`` and ``against``, in the same order."""
    keys = [a for a in AXES if a not in (rows_axis, cols_axis, "metric")]
    frame = frame[np.isfinite(frame["value"])].fillna({k: "" for k in (cols_axis, *keys)})
    cells = frame.groupby([rows_axis, cols_axis, *keys])["value"].mean()
    rows = cells.index.get_level_values(0).astype(str)
    better = cells[rows == str(chosen)].droplevel(0)
    than = cells[rows == str(against)].droplevel(0)
    common = better.index.intersection(than.index)
    by_key = list(range(1, len(keys) + 1))  # levels after the column's
    return (better[common].groupby(level=by_key).mean().to_numpy(),
            than[common].groupby(level=by_key).mean().to_numpy())


def _shown(table: Table, row: int, column: str) -> str:
    """The text the table shows for (row index among its row values, header column)."""
    if column not in table.header:
        return "–"
    return table.cells[table.rows.index(str(table.row_values[row]))][table.header.index(column) - 1]


CHOICE_NOTE = ("Chosen on {metric}: per column, and over all columns, the row with the best mean {metric} (a part "
               "of the training split held out from selection and training), and the test value the table shows "
               "for it. Choose by these, not by the best test cell.")
