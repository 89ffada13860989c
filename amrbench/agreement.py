"""Does a cheaper profile rank the rows (methods) as the full one does?

``amrbench agreement SUITE --profile A --against B`` compares two profiles' records of
one suite, table column by table column (e.g. rate by rate): on every block both hold
(every label but the table's rows and columns equal: dataset x model x seed), Kendall's
τ-b (``scipy.stats.kendalltau``, ties handled) between the rows' values in A and in B.
A τ alone says little with ten rows, so each is set against what reseeding does: the τ
between the block's seed and each other seed A holds of the same dataset x model, on
the same rows. The verdict of a column is ``kept`` when τ(A, B) is no lower than the
mean of those seed τ (the cut moves the ranking no more than a new seed does), else
``changed`` (docs/selectors.md, "The check of the cut").

``--against published`` takes the paper's own table, copied into the suite's
``published:`` block (amrbench.published), as profile B: the same τ per block and
column, set against the same seed baseline (docs/usage.md, "Agreement with the paper").

Values are the per-record metric (the table's, or ``--metric``), one per cell: the latest
ok record of each key, as tables use. Rows that only one profile holds are dropped from
that column's τ, with a note. ``--places`` adds, per column, each row's place (1 = best,
ties averaged, by the table's ``higher_is_better``) and value in B, in A and in A's other
seeds: which rows a cut moved, and whether reseeding moves them as much.
"""
from __future__ import annotations

import argparse
import math
import statistics
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from amrbench.basics import AmrbenchError, did_you_mean

# numpy, scipy and amrbench.tables (torch) load where used: `amrbench --help` builds this
# command's parser and must not pay for them

RULE = "kept when τ(A, B) ≥ the mean seed-baseline τ, else changed"
KEPT, CHANGED, NO_TAU, NO_BASELINE = "kept", "changed", "no τ", "no baseline"
MIN_ROWS = 3  # rows a τ needs


# --------------------------------------------------------------------------- the numbers
@dataclass
class ColumnCheck:
    """One block's one column: the rows compared, τ(A, B) with its p-value, and the seed
    baseline (other seed of A -> τ between the block's seed and it, same rows)."""

    block: tuple
    column: str
    rows: list
    tau: float
    p: float
    seed_taus: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)  # profile -> the compared block's rows it lacks
    values: dict = field(default_factory=dict)  # "B", "A", "A seed s" -> {row: value}, for --places

    @property
    def baseline_mean(self) -> float:
        finite = [t for t in self.seed_taus.values() if math.isfinite(t)]
        return statistics.fmean(finite) if finite else math.nan

    @property
    def baseline_min(self) -> float:
        finite = [t for t in self.seed_taus.values() if math.isfinite(t)]
        return float(min(finite)) if finite else math.nan

    @property
    def verdict(self) -> str:
        return verdict(self.tau, list(self.seed_taus.values()))


@dataclass
class Agreement:
    """Every column check of two profiles, the axes behind them and what was left out."""

    profile_a: str
    profile_b: str
    metric: str
    rows_axis: str
    cols_axis: str
    block_axes: list
    checks: list
    notes: list
    higher_is_better: bool = True
    source: str = ""  # where profile B's numbers come from, when B is the paper's table


def verdict(tau: float, seed_taus: list) -> str:
    """``kept`` when ``tau`` is no lower than the mean of the finite ``seed_taus`` (up to
    rounding), ``changed`` when lower; ``no τ`` / ``no baseline`` when either is missing."""
    finite = [t for t in seed_taus if math.isfinite(t)]
    if not math.isfinite(tau):
        return NO_TAU
    if not finite:
        return NO_BASELINE
    return KEPT if tau >= statistics.fmean(finite) - 1e-12 else CHANGED


def kendall(a: dict, b: dict, rows: list) -> tuple:
    """(τ-b, two-sided p) of the values ``a`` and ``b`` give ``rows``; NaN for fewer than
    ``MIN_ROWS`` rows or a constant side (no ranking to compare). Two rows always give
    τ = ±1: a seed that has run two rows of a column would otherwise weigh in the seed
    baseline as a perfect (dis)agreement."""
    from scipy import stats as scipy_stats

    if len(rows) < MIN_ROWS:
        return math.nan, math.nan
    with warnings.catch_warnings():  # a constant side: scipy warns and returns NaN, reported as "no τ"
        warnings.simplefilter("ignore")
        result = scipy_stats.kendalltau([a[r] for r in rows], [b[r] for r in rows])
    return float(result.statistic), float(result.pvalue)


def cell_values(frame, rows_axis: str, cols_axis: str, block_axes: list) -> dict:
    """(block, column) -> {row: value}; a block is a tuple over ``block_axes`` (values of
    one key are averaged: there is one per cell)."""
    if not len(frame):
        return {}
    means = frame.groupby([*block_axes, cols_axis, rows_axis], sort=False)["value"].mean()
    out: dict = {}
    for (*block, column, row), value in means.items():
        out.setdefault((tuple(plain(v) for v in block), plain(column)), {})[plain(row)] = float(value)
    return out


def plain(value):
    """A pandas/numpy scalar as the Python value the labels hold (``np.int64(0)`` -> 0)."""
    return value.item() if hasattr(value, "item") else value


def in_order(names, order: list) -> list:
    """``names`` in the suite's ``order`` (any others after, sorted)."""
    names = set(names)
    return [n for n in order if n in names] + sorted(names - set(order), key=str)


def block_order(order: dict, axes: list):
    """A sort key putting blocks in the suite's order of each axis (unknown labels last)."""
    def key(block: tuple) -> tuple:
        return tuple((order[a].index(v), "") if v in order[a] else (len(order[a]), str(v)) for a, v in zip(axes, block))
    return key


def other_seed_blocks(block: tuple, blocks, seed_at: Optional[int]) -> list:
    """The blocks equal to ``block`` except at the seed position ``seed_at``."""
    if seed_at is None:
        return []
    return sorted((b for b in blocks if b[seed_at] != block[seed_at]
                   and all(x == y for i, (x, y) in enumerate(zip(b, block)) if i != seed_at)), key=repr)


def other_seed_values(values_a: dict, block: tuple, column: str, seed_at: Optional[int]) -> dict:
    """Other seed of A -> its {row: value} in ``column`` (the block equal to ``block``
    except at the seed)."""
    blocks = {b for b, c in values_a if c == column}
    return {other[seed_at]: values_a[(other, column)] for other in other_seed_blocks(block, blocks, seed_at)}


def seed_taus(here: dict, others: dict, rows: list) -> dict:
    """Other seed -> τ between the block's values ``here`` and that seed's (``others``:
    seed -> {row: value}), on the ``rows`` compared that the other seed also holds."""
    return {seed: kendall(here, there, [r for r in rows if r in there])[0] for seed, there in others.items()}


def places(values: dict, higher_is_better: bool = True) -> dict:
    """Row -> place among ``values``' rows (1 = best, ties share the average place): the
    tables' average rank over this one block."""
    import pandas as pd

    from amrbench.stats import average_ranks

    return {r: float(p) for r, p in average_ranks(pd.DataFrame([values]), higher_is_better).items()}


def compare(suite_a, records_a: list, suite_b, records_b: list, metric: Optional[str] = None) -> Agreement:
    """Profile A's records against profile B's, laid out by A's table (``metric``
    replaces the table's metric); an error when no block is in both."""
    values_a, axes, labels = table_values(suite_a, records_a, metric)
    values_b = table_values(suite_a, records_b, metric)[0]
    return _compare_values(suite_a, values_a, values_b, suite_b.profile, axes, labels)


def compare_published(suite, records: list) -> Agreement:
    """A profile's records against the paper's table in the suite's ``published:`` block
    (profile B is named ``published``), on the table's own metric; an error when no
    block of the run matches."""
    from amrbench.published import NAME, published_values
    from amrbench.tables import axis_labels

    values, axes, labels = table_values(suite, records, None)
    paper, notes = published_values(suite.published, axes, {b for b, _ in values}, axis_labels(suite))
    try:
        found = _compare_values(suite, values, paper, NAME, axes, labels)
    except NoCommonBlock as exc:
        exc.why = notes
        raise
    found.source, found.notes = suite.published.source, notes + found.notes
    return found


def table_values(suite, records: list, metric: Optional[str]) -> tuple:
    """((block, column) -> {row: value}, (rows axis, columns axis, block axes), metric
    labels) of ``records`` laid out by ``suite``'s table (``metric`` replaces its metric)."""
    from amrbench.tables import block_axes_of, metric_labels, metric_names, records_frame, table_axes

    layout = suite.table
    metrics, labels = ([metric], [metric]) if metric else (metric_names(layout), metric_labels(layout))
    rows_axis, cols_axis, _ = table_axes(layout)
    blocks_on = block_axes_of(layout, metrics)
    values = cell_values(records_frame(records, metrics, None, labels), rows_axis, cols_axis, blocks_on)
    return values, (rows_axis, cols_axis, blocks_on), labels


def _compare_values(suite_a, values_a: dict, values_b: dict, profile_b: str, axes: tuple, labels: list) -> Agreement:
    from amrbench.tables import axis_labels

    rows_axis, cols_axis, blocks_on = axes
    order = axis_labels(suite_a)
    blocks_a, blocks_b = ({b for b, _ in values} for values in (values_a, values_b))
    by_order = block_order(order, blocks_on)
    common_blocks = blocks_a & blocks_b
    if not common_blocks:
        raise NoCommonBlock(blocks_on, sorted(blocks_a, key=by_order), sorted(blocks_b, key=by_order))
    found = Agreement(suite_a.profile, profile_b, ", ".join(labels), rows_axis, cols_axis, blocks_on, [], [],
                      bool(suite_a.table.get("higher_is_better", True)))
    for block in sorted(common_blocks, key=by_order):
        _check_block(found, values_a, values_b, block, order)
    return found


def _check_block(found: Agreement, values_a: dict, values_b: dict, block: tuple, order: dict) -> None:
    """Add ``block``'s column checks to ``found``, and a note for the columns and rows that
    only one profile holds."""
    columns_a = {c for b, c in values_a if b == block}
    columns_b = {c for b, c in values_b if b == block}
    where = block_text(found.block_axes, block)
    for lacking, only in ((found.profile_b, columns_a - columns_b), (found.profile_a, columns_b - columns_a)):
        if only:
            listed = ", ".join(map(str, in_order(only, order[found.cols_axis])))
            found.notes.append(f"{where}, {listed}: not in profile {lacking}; "
                               f"{'column' if len(only) == 1 else 'columns'} left out")
    seed_at = found.block_axes.index("seed") if "seed" in found.block_axes else None
    for column in in_order(columns_a & columns_b, order[found.cols_axis]):
        check = _column_check(values_a, values_b, block, column, order[found.rows_axis], seed_at,
                              (found.profile_a, found.profile_b))
        found.checks.append(check)
        found.notes += [f"{where}, {column}: dropped {', '.join(map(str, rows))} (not in profile {name})"
                        for name, rows in check.dropped.items()]


def _column_check(values_a, values_b, block, column, row_order, seed_at, names) -> ColumnCheck:
    """One column of one block: τ(A, B) on the rows both hold, and the seed baseline."""
    (name_a, name_b), a, b = names, values_a[(block, column)], values_b[(block, column)]
    rows = in_order(a.keys() & b.keys(), row_order)
    dropped = {name_a: in_order(set(b) - set(a), row_order), name_b: in_order(set(a) - set(b), row_order)}
    tau, p = kendall(a, b, rows)
    others = other_seed_values(values_a, block, column, seed_at)
    seed = f" seed {block[seed_at]}" if seed_at is not None else ""
    values = {name_b: b, f"{name_a}{seed}": a, **{f"{name_a} seed {s}": v for s, v in others.items()}}
    return ColumnCheck(block, column, rows, tau, p, seed_taus(a, others, rows),
                       {name: rows_ for name, rows_ in dropped.items() if rows_},
                       {name: {r: v[r] for r in rows if r in v} for name, v in values.items()})


class NoCommonBlock(AmrbenchError):
    """No block in both profiles' records: the blocks each holds, for the message."""

    def __init__(self, axes: list, blocks_a: list, blocks_b: list):
        self.axes, self.blocks_a, self.blocks_b = axes, blocks_a, blocks_b
        self.why: list = []  # what left B's blocks out, where B is the paper's table
        super().__init__(f"no block ({' x '.join(axes)}) in both profiles")


# --------------------------------------------------------------------------- the text
def block_text(axes: list, block: tuple) -> str:
    """A block as ``RML2016.10a · CNN2D · seed 0`` (an empty label, e.g. no budget, left out)."""
    return " · ".join(f"seed {v}" if a == "seed" else str(v) for a, v in zip(axes, block) if v != "")


def _number(value: float, fmt: str) -> str:
    return format(value, fmt) if math.isfinite(value) else "–"


def render(agreement: Agreement) -> str:
    """The checks as a Markdown table, the notes and a one-line summary."""
    from tabulate import tabulate

    a, b = agreement.profile_a, agreement.profile_b
    rows = [[block_text(agreement.block_axes, c.block), c.column, len(c.rows), _number(c.tau, ".3f"),
             _number(c.p, ".3g"), _number(c.baseline_mean, ".3f"), _number(c.baseline_min, ".3f"),
             ", ".join(str(s) for s in c.seed_taus) or "–", c.verdict] for c in agreement.checks]
    headers = ["block", agreement.cols_axis, "n", f"τ({a}, {b})", "p", "seed τ mean", "seed τ min",
               f"other seeds of {a}", "verdict"]
    intro = (f"Kendall τ-b of the {agreement.rows_axis} rows' {agreement.metric} per {agreement.cols_axis}: "
             f"profile {a} against {b} on each block both hold; seed baseline: τ between the block's seed "
             f"and each other seed of {a} on the same rows. Verdict: {RULE}.")
    if agreement.source:
        intro += f" Profile {b}: the paper's table in the suite, {agreement.source}."
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    notes = "".join(f"note: {n}\n" for n in agreement.notes)
    return f"{intro}\n\n{table}\n\n{notes}{summary(agreement)}\n"


def render_places(agreement: Agreement) -> str:
    """Per column check: each compared row's place (value) in B, in A and in A's other
    seeds, rows in B's order."""
    from tabulate import tabulate

    out = []
    for check in agreement.checks:
        ranked = {name: places(v, agreement.higher_is_better) for name, v in check.values.items()}
        first = next(iter(check.values))
        rows = sorted(check.rows, key=lambda r: ranked[first][r])
        table = [[r] + [f"{_place(ranked[n].get(r))} ({_number(v[r], '.4g')})" if r in v else "–"
                        for n, v in check.values.items()] for r in rows]
        out.append(f"{block_text(agreement.block_axes, check.block)}, {check.column}: place (value), 1 = best\n\n"
                   + tabulate(table, headers=[agreement.rows_axis, *check.values], tablefmt="github",
                              disable_numparse=True))
    return "\n\n".join(out) + "\n"


def _place(place) -> str:
    return "–" if place is None else (f"{place:.0f}" if float(place).is_integer() else f"{place:.1f}")


def summary(agreement: Agreement) -> str:
    """One line: how many columns kept the ranking, under the rule."""
    verdicts = [c.verdict for c in agreement.checks]
    blocks = len({c.block for c in agreement.checks})
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in (CHANGED, NO_TAU, NO_BASELINE) if verdicts.count(v))
    taus = [c.tau for c in agreement.checks if math.isfinite(c.tau)]
    mean_tau = f"; mean τ({agreement.profile_a}, {agreement.profile_b}) {statistics.fmean(taus):.3f}" if taus else ""
    return (f"{agreement.profile_a} vs {agreement.profile_b}: {verdicts.count(KEPT)} of {len(verdicts)} columns kept"
            f"{', ' + counts if counts else ''} on {blocks} block(s) ({RULE}){mean_tau}")


# --------------------------------------------------------------------------- the command
def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``agreement SUITE --profile A --against B [--metric M] [--results-a DIR --results-b DIR]``."""
    p = subparsers.add_parser("agreement", help="does profile A rank the rows (methods) like profile B? Kendall τ "
                              "per table column on their common blocks, against the τ between seeds of A",
                              description=__doc__.splitlines()[0])
    p.add_argument("suite", help="a suite YAML file, or a shipped suite by file name or name: (foqus_table1)")
    p.add_argument("--profile", required=True, help="profile A, usually the cut one (e.g. evidence)")
    p.add_argument("--against", required=True, help="profile B, usually the uncut one (e.g. evidence_uncut); "
                   "`published`: the paper's own table, from the suite's published: block")
    p.add_argument("--metric", help="the record metric to rank by (default: the table's metric)")
    p.add_argument("--results-a", help="profile A's results folder (default <root>/<suite name>-<A>)")
    p.add_argument("--results-b", help="profile B's results folder (default <root>/<suite name>-<B>)")
    p.add_argument("--places", action="store_true", help="also print, per column, each row's place and value "
                   "in B, in A and in A's other seeds (which rows moved)")
    p.set_defaults(handler=cmd_agreement)
    return p


def cmd_agreement(args, registry=None) -> int:
    from amrbench.published import NAME
    from amrbench.suite import resolve_suite_path

    path = resolve_suite_path(args.suite)
    if args.profile == args.against:
        raise AmrbenchError(f"--profile and --against are both {args.profile!r}; name two profiles of {path}")
    suite_a, records_a, folder_a = profile_records(path, args.suite, "--profile", args.profile, args.results_a, registry)
    if args.metric:
        check_metric(args.metric, records_a, folder_a)
    if args.against == NAME:
        for option, value in (("--metric", args.metric), ("--results-b", args.results_b)):
            if value:
                raise AmrbenchError(f"{option} does not go with --against {NAME}: the paper's table in {path} holds "
                                    f"the suite table's own metric and lives in the suite")
        agreement = _against_published(path, suite_a, records_a, folder_a)
    else:
        suite_b, records_b, folder_b = profile_records(path, args.suite, "--against", args.against, args.results_b,
                                                       registry)
        try:
            agreement = compare(suite_a, records_a, suite_b, records_b, args.metric)
        except NoCommonBlock as exc:
            raise AmrbenchError(no_common_block_message(exc, args.suite, args.against, folder_a, folder_b)) from None
    print(render(agreement), end="")
    if args.places:
        print("\n" + render_places(agreement), end="")
    return 0


def _against_published(path: Path, suite, records: list, folder) -> Agreement:
    """``--against published``: the run against the paper's table in the suite."""
    if suite.published is None:
        raise AmrbenchError(f"{path}: no published: block to compare with; copy the paper's table into the suite "
                            f"(docs/usage.md, \"Agreement with the paper\")")
    try:
        return compare_published(suite, records)
    except NoCommonBlock as exc:
        raise AmrbenchError(f"{folder}: no block of the run ({_blocks_text(exc.axes, exc.blocks_a)}) matches a block "
                            f"of {path}'s published: table ({'; '.join(exc.why) or 'check its where: labels'})") from None


def profile_records(path: Path, suite_arg: str, option: str, profile: str, folder, registry) -> tuple:
    """(suite, the stored records of its grid, results folder) of one profile, or a
    one-line error naming the folder and the run that makes them."""
    from amrbench.shipped import plain_yaml, suite_results_dir
    from amrbench.store import RecordStore
    from amrbench.suite import expand, load_suite, require_records

    profiles = list((plain_yaml(path).get("profiles") or {}).keys())
    if profile not in profiles:
        raise AmrbenchError(f"{path}: {option} {profile!r} is not one of its profiles{did_you_mean(profile, profiles)}"
                            f" (it has: {', '.join(map(str, profiles)) or 'none'}); `amrbench suites` lists them")
    suite = load_suite(path, profile=profile, registry=registry)
    folder = Path(folder) if folder else suite_results_dir(suite.name, profile)
    store = RecordStore(folder / "records.jsonl")
    if not store.path.exists():
        results_option = "--results-a" if option == "--profile" else "--results-b"
        raise AmrbenchError(f"{store.path}: no records of profile {profile!r}; run `amrbench run {suite_arg} "
                            f"--profile {profile}` first (or pass its folder with {results_option})")
    latest = store.latest()
    keys = {c["key"] for c in expand(suite, registry)}
    records = [r for k, r in latest.items() if k in keys]
    require_records(suite, records, set(latest), store.path)
    return suite, records, folder


def check_metric(metric: str, records: list, folder) -> None:
    """``--metric`` must be a numeric metric of some ok record."""
    known = sorted({k for r in records if r.get("status") == "ok" for k, v in (r.get("metrics") or {}).items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)})
    if metric not in known:
        raise AmrbenchError(f"{folder}: --metric {metric!r} is no number of its records{did_you_mean(metric, known)}; "
                            f"they hold: {', '.join(known) or 'none'}")


def _blocks_text(axes: list, blocks: list) -> str:
    shown = "; ".join(block_text(axes, b) for b in blocks[:4]) + (" …" if len(blocks) > 4 else "")
    return shown or "none with an ok value"


def no_common_block_message(exc: NoCommonBlock, suite_arg: str, against: str, folder_a, folder_b) -> str:
    return (f"{folder_a} and {folder_b}: no block ({' x '.join(exc.axes)}) in both (A has: "
            f"{_blocks_text(exc.axes, exc.blocks_a)}; B has: {_blocks_text(exc.axes, exc.blocks_b)}); "
            f"run `amrbench run {suite_arg} --profile {against}` on one of A's blocks")
