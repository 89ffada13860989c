"""Files written beside a suite's table.md: accuracy-vs-budget curves, condensation loss
curves and the critical-difference diagram (matplotlib, Agg backend).

- ``curve-<table slug>.png`` and ``.csv``: for every table whose columns are the budget
  axis (2+ budgets), each row's mean per budget with its t-interval as a band (the
  table's ``ci`` level, else 95 %); the CSV holds the plotted numbers.
- ``loss-<dataset>-<model>.png``: for a condense suite, each record's condensation loss
  per iteration (its ``loss_curve``), a panel per method and budget, a line per seed;
- ``cd-<slug>.png`` and ``.svg``: the critical-difference diagram of the whole table
  (one per suite): average ranks over every complete (group, column) block of displayed
  means, the Friedman test, then the Nemenyi post-hoc test of scikit-posthocs (the
  optional extra ``amrbench[stats]``). Without the extra the diagram is skipped with a
  note; it never fails a run.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from amrbench import stats
from amrbench.tables import build_tables, confidence, rank_blocks

POSTHOC = "Nemenyi"


def slug(text: str) -> str:
    """A file-name-safe, lowercase form of a table title."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "table"


def write_figures(suite, records: list, out_dir) -> list:
    """The curves and the CD diagram into ``out_dir`` (beside table.md); returns one-line
    notes on what was written or skipped. A figure that cannot be written is a note,
    not an error: the records are stored and ``amrbench table --write`` redoes it."""
    out_dir = Path(out_dir)
    tables = build_tables(suite, records)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        written = write_curves(suite, tables, out_dir)
        losses = write_loss_curves(suite, records, out_dir)
        cd, note = write_cd_diagram(suite, tables, out_dir)
    except OSError as exc:
        return [f"{out_dir}: figures not written ({exc.strerror or exc}); rerun `amrbench table --write` when it is writable"]
    notes = [f"wrote {len(written)} curve(s) (curve-*.png/.csv) in {out_dir}"] if written else []
    notes += [f"wrote {len(losses)} condensation loss curve(s) ({LOSS_PREFIX}*.png) in {out_dir}"] if losses else []
    notes += [f"wrote {cd} and {cd.with_suffix('.svg').name}"] if cd else []
    return notes + ([note] if note else [])


def _budget_positions(suite) -> dict:
    """Budget label -> x position (signals per class, or percent of the training set)."""
    return {b.label(): (float(b.spc) if b.spc is not None else 100 * float(b.rate)) for b in suite.budgets if b}


def curve_points(suite, table) -> list:
    """The plotted numbers of one table: (row, budget label, x, mean, low, high, n) per
    cell, in displayed units."""
    positions = _budget_positions(suite)
    scale, level = float(suite.table["scale"]), confidence(suite.table) or stats.CONFIDENCE
    points = []
    for r in table.row_values:
        for c in table.col_values:
            values = table.samples.get((r, c))
            if values is None or c not in positions:
                continue
            mean, low, high = stats.t_interval(list(values.values()), level)
            points.append((str(r), str(c), positions[c], mean * scale, low * scale, high * scale, len(values)))
    return points


def write_curves(suite, tables: list, out_dir: Path) -> list:
    """One curve per table whose columns are 2+ budgets; returns the PNG paths."""
    if suite.table["columns"] != "budget" or len(_budget_positions(suite)) < 2:
        return []
    written, used = [], set()
    for table in tables:
        points = curve_points(suite, table)
        if not points:
            continue
        name = _unique(f"curve-{slug(table.title)}", used)
        _write_curve_csv(out_dir / f"{name}.csv", points)
        _plot_curve(suite, table.title, points, out_dir / f"{name}.png")
        written.append(out_dir / f"{name}.png")
    return written


def _unique(name: str, used: set) -> str:
    candidate, k = name, 2
    while candidate in used:
        candidate, k = f"{name}-{k}", k + 1
    used.add(candidate)
    return candidate


def _write_curve_csv(path: Path, points: list) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["row", "budget", "x", "mean", "low", "high", "n"])
        for row, label, x, mean, low, high, n in points:
            writer.writerow([row, label, f"{x:g}", *(f"{v:.6g}" if np.isfinite(v) else "" for v in (mean, low, high)), n])


STABLE_PNG = {"Software": None}  # no matplotlib version in the file: same records, same bytes
LOSS_PREFIX = "loss-"  # condensation loss curves beside table.md


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_curve(suite, title: str, points: list, path: Path) -> None:
    plt = _pyplot()
    level = confidence(suite.table) or stats.CONFIDENCE
    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        for row in dict.fromkeys(p[0] for p in points):
            mine = sorted((p for p in points if p[0] == row), key=lambda p: p[2])
            x, mean = np.array([p[2] for p in mine]), np.array([p[3] for p in mine])
            low, high = np.array([p[4] for p in mine]), np.array([p[5] for p in mine])
            line, = ax.plot(x, mean, marker="o", label=row)
            ax.fill_between(x, low, high, where=np.isfinite(low), color=line.get_color(), alpha=0.2, linewidth=0)
        xs = sorted({p[2] for p in points})
        if min(xs) > 0 and max(xs) / min(xs) >= 10:
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        spc = any(b.spc is not None for b in suite.budgets if b)
        ax.set_xlabel("signals per class" if spc else "budget (% of the training set)")
        metric = ", ".join(str(m) for m in ([suite.table["metric"]] if isinstance(suite.table["metric"], str)
                                            else suite.table["metric"]))
        scale = float(suite.table["scale"])
        ax.set_ylabel(metric + (f" ×{scale:g}" if scale != 1 else ""))
        ax.set_title(f"{title}\nmean, band: {level * 100:g} % t-interval", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=120, metadata=STABLE_PNG)
    finally:
        plt.close(fig)


def write_loss_curves(suite, records: list, out_dir: Path, prefix: str = LOSS_PREFIX) -> list:
    """One PNG per (dataset, condensation network) of a condense suite's records that
    carry a ``loss_curve``: the condensation loss per iteration (its bin means), a panel
    per method and budget, a line per seed (dashed when the record is unconverged), named
    ``<prefix><dataset>-<network>.png``. The network is the record's ``condense_net`` (the
    model axis where a record has none): the evaluation models of a cross-architecture
    table share one condensation, drawn once. Returns the paths written (none without
    curves)."""
    from amrbench.tables import axis_labels

    curves = [r for r in records if r.get("status") == "ok" and (r.get("metrics") or {}).get("loss_curve")]
    order = axis_labels(suite) if curves else {}
    written, used = [], set()
    for dataset in order.get("dataset", ()):
        mine = [r for r in curves if r["labels"].get("dataset") == dataset]
        by_net = {}
        for model in order["model"]:
            for r in sorted((r for r in mine if r["labels"].get("model") == model), key=lambda r: r["key"]):
                by_net.setdefault(condensation_net(r), {}).setdefault(
                    (r["labels"].get("method"), r["labels"].get("budget"), r["labels"].get("seed")), r)
        for net, drawn in by_net.items():
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / (_unique(f"{prefix}{slug(f'{dataset}-{net}')}", used) + ".png")
            _plot_losses(list(drawn.values()), order, f"{dataset} · condensed with {net}", path)
            written.append(path)
    return written


def condensation_net(record: dict) -> str:
    """The network a condense record's set was learned with (its model label if unrecorded)."""
    return str((record.get("metrics") or {}).get("condense_net") or record["labels"].get("model"))


def _plot_losses(records: list, order: dict, title: str, path: Path) -> None:
    methods = [m for m in order["method"] if any(r["labels"].get("method") == m for r in records)]
    budgets = [b for b in order["budget"] if any(r["labels"].get("budget") == b for r in records)]
    plt = _pyplot()
    fig, axes = plt.subplots(len(methods), len(budgets), squeeze=False,
                             figsize=(0.8 + 3.0 * len(budgets), 0.9 + 2.3 * len(methods)))
    try:
        for i, method in enumerate(methods):
            for j, budget in enumerate(budgets):
                _loss_panel(axes[i][j], [r for r in records if r["labels"].get("method") == method
                                         and r["labels"].get("budget") == budget], f"{method} · {budget}")
        fig.suptitle(f"{title}: condensation loss per iteration (bin means); dashed: unconverged", fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=100, metadata=STABLE_PNG)
    finally:
        plt.close(fig)


def _loss_panel(ax, records: list, title: str) -> None:
    ax.set_title(title, fontsize=8)
    if not records:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no loss curve", ha="center", va="center", fontsize=8, transform=ax.transAxes)
        return
    low, high = float("inf"), float("-inf")
    for r in sorted(records, key=lambda r: (str(r["labels"].get("seed")), r["key"])):
        x, y = zip(*r["metrics"]["loss_curve"])
        low, high = min(low, *y), max(high, *y)
        unconverged = r["metrics"].get("converged") is False
        ax.plot(x, y, linestyle="--" if unconverged else "-", linewidth=1,
                label=f"seed {r['labels'].get('seed')}" + (" (unconverged)" if unconverged else ""))
    if low > 0 and high / low >= 10:  # a loss falling by decades reads best on a log axis
        ax.set_yscale("log")
    ax.set_xlabel("iteration", fontsize=7)
    ax.tick_params(which="both", labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)


def write_cd_diagram(suite, tables: list, out_dir: Path) -> tuple:
    """The critical-difference diagram of the suite's table: (PNG path or None, note or None)."""
    name = f"cd-{slug(suite.table.get('title') or suite.name)}"
    blocks = rank_blocks(tables, suite.table)
    result = stats.friedman(blocks) if len(blocks) else None
    if result is None:
        return None, (f"{name}: skipped, the Friedman test needs 3+ rows and 2+ complete (group, column) blocks "
                      f"with some difference")
    if not stats.have_posthocs():
        return None, f"{name}: skipped, the critical-difference diagram needs `pip install amrbench[stats]` (scikit-posthocs)"
    import scikit_posthocs

    ranks = stats.average_ranks(blocks, bool(suite.table["higher_is_better"]))
    pvalues = stats.nemenyi(blocks)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.3 * len(ranks)))
    try:
        drawn = scikit_posthocs.critical_difference_diagram(ranks, pvalues, ax=ax, alpha=stats.ALPHA,
                                                            label_fmt_left="{label} ({rank:.2f})",
                                                            label_fmt_right="({rank:.2f}) {label}")
        for lines in drawn.get("crossbars", ()):  # a crossbar's points come in set order, which
            for line in lines:                   # varies with PYTHONHASHSEED: sort them, same bytes
                x, y = line.get_data()
                line.set_data(sorted(x), y)
        ax.set_title(f"{suite.table.get('title') or suite.name}\naverage rank (1 = best) over {result.blocks} "
                     f"(group, column) blocks; Friedman p = {result.pvalue:.3g}\nbars join rows the {POSTHOC} "
                     f"test cannot tell apart (α = {stats.ALPHA:g})", fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / f"{name}.png", dpi=120, bbox_inches="tight", metadata=STABLE_PNG)
        with plt.rc_context({"svg.hashsalt": "amrbench"}):  # the same records give the same bytes
            fig.savefig(out_dir / f"{name}.svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        plt.close(fig)
    return out_dir / f"{name}.png", None
