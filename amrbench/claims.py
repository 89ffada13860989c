"""A suite's ``claims:``: what its paper says about the rows of its table, checked
against the records.

    claims:
      - label: "MDM beats DM at SPC 10"     # free text
        better: MDM                          # a label on the table's rows axis
        than: [DM]                           # row labels, one label, or `all` (every other row)
        where: {budget: 10}                  # optional filters on the other axes
        margin: 0.0                          # optional, in displayed units (after scale)

``where`` filters any axis but the rows axis and the seed: ``budget`` takes the suite's
spc or rate values (10, [10, 50], 0.01) or their labels ("SPC 10", "1%"); ``dataset``,
``model``, ``method`` and ``metric`` take labels; each a value or a list.

Verdict of one comparison (one table group, one column, one ``than`` row): the paired
differences better − than over the values that share a seed (and, with ``pool:``, the
position in the pooled list, unless ``pair_positions: false`` averages each seed's pooled
values into one pair), in displayed units and with the sign flipped when lower is
better; their t-interval (the table's ``ci`` level, else 95 %) **holds** when it lies
above the margin, **fails** when it lies below, and is **undecided** otherwise, or with
fewer than two pairs. A claim holds when every comparison holds: an intersection-union
test, at the claim's level without correction. It fails when some comparison fails
family-wise, its interval at the Bonferroni level 1 − (1 − level) / m for the claim's m
comparisons with two or more pairs lying below the margin: one of many comparisons failing
at the plain level is what chance gives (the first step of Holm's procedure is the same
test). Otherwise, and when no records match, the claim is undecided.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from amrbench import stats
from amrbench.api import did_you_mean
from amrbench.tables import axis_labels, paired

CLAIM_KEYS = {"label", "better", "than", "where", "margin"}
CLAIMS_NOTE = ("Each claim: the paired difference better − than (per seed, in the table's units, positive = "
               "better), its t-interval and the number of pairs n, for each group, column and compared row; "
               "holds when the interval lies above the margin, fails when below, undecided otherwise "
               "(and with n < 2). A claim holds when all its comparisons hold, and fails when one fails "
               "family-wise: its interval at the Bonferroni level over the claim's m comparisons lies below "
               "the margin.")
MARKED_NOTE = ("A comparison with a cell the table marks (e.g. † an unconverged condensation) is undecided "
               "whatever its interval: such a cell says nothing about its method.")


def claims_note(results: list) -> str:
    """The note above the claims: how verdicts are read, and what a mark does when a
    comparison meets one."""
    marked = any(c.marks for r in results for c in r.comparisons)
    return CLAIMS_NOTE + (" " + MARKED_NOTE if marked else "")


@dataclass
class Claim:
    label: str
    better: str
    than: list
    where: dict = field(default_factory=dict)  # axis -> list of labels
    margin: float = 0.0


@dataclass
class Comparison:
    place: str  # the group and column, e.g. "RML2016.10a · alexnet · SPC 10"
    than: str
    difference: stats.PairedDifference
    verdict: str
    marks: str = ""  # the table marks on either cell (e.g. "†"): the comparison is then undecided
    pairs: tuple = ()  # (better, than) values behind ``difference``, in displayed units
    familywise: Optional[stats.PairedDifference] = None  # at the Bonferroni level; set where ``verdict`` is fails
    familywise_verdict: str = ""  # that interval's verdict: fails or undecided
    group: str = ""  # the table group alone, e.g. "RML2016.10a · alexnet"


@dataclass
class ClaimResult:
    claim: Claim
    verdict: str
    comparisons: list
    level: float
    digits: int
    familywise_level: float = 0.0  # the level a failing comparison is tested at
    family: int = 0  # the comparisons that level counts: two or more pairs, no marked cell


# --------------------------------------------------------------------------- validation
def validate_claims(src, claims, suite) -> list:
    """The suite's ``claims`` block checked against its table (row labels, axis values)
    and the table's ``ci`` level and ``pair_positions`` flag; errors name file:line."""
    _validate_table_stats(src, suite.table)
    if claims is None:
        return []
    if not isinstance(claims, list):
        raise src.error(("claims",), "must be a list of {label, better, than, where, margin} mappings")
    return [_claim(src, suite, i, spec) for i, spec in enumerate(claims)]


def _validate_table_stats(src, table: dict) -> None:
    """``ci`` (the confidence level claims and cells use) and ``pair_positions`` (tests
    pair pooled values by position, or per seed); ``ranks`` is checked with the suite."""
    if not isinstance(table.get("pair_positions", True), bool):
        raise src.error(("table", "pair_positions"), "must be true or false (false: tests pair per seed, on the mean "
                                                     "of each seed's pooled values)")
    ci = table.get("ci")
    if ci is None or ci is False:
        return
    if isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 50 <= ci < 100:
        raise src.error(("table", "ci"), f"{ci!r} must be a confidence level in percent, e.g. 95 (or leave it out for ± std)")


def _claim(src, suite, i: int, spec) -> Claim:
    where = ("claims", i)
    if not isinstance(spec, dict):
        raise src.error(where, "must be a mapping with label, better and than")
    for key in spec:
        if key not in CLAIM_KEYS:
            raise src.error(where + (key,), f"unknown key{did_you_mean(key, CLAIM_KEYS)}")
    for key in ("label", "better", "than"):
        if key not in spec:
            raise src.error(where, f"missing {key!r}; a claim needs label, better and than")
    if not isinstance(spec["label"], str) or not spec["label"].strip():
        raise src.error(where + ("label",), "must be a non-empty string")
    labels = axis_labels(suite)
    rows_axis = suite.table["rows"]
    better = _resolve(src, suite, labels, where + ("better",), rows_axis, spec["better"])
    than_spec = spec["than"]
    if than_spec == "all":
        than = [r for r in labels[rows_axis] if r != better]
    else:
        items = than_spec if isinstance(than_spec, list) else [than_spec]
        if not items:
            raise src.error(where + ("than",), "must name at least one row label, or be `all`")
        than = [_resolve(src, suite, labels, where + ("than", k), rows_axis, v) for k, v in enumerate(items)]
        if better in than:
            raise src.error(where + ("than",), f"{better!r} is also `better`; a row is not compared with itself")
    margin = spec.get("margin", 0.0)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)):
        raise src.error(where + ("margin",), "must be a number in the table's displayed units, e.g. 1.0")
    return Claim(spec["label"], better, than, _where(src, suite, labels, where + ("where",), spec.get("where")), float(margin))


def _where(src, suite, labels: dict, where: tuple, spec) -> dict:
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise src.error(where, "must be a mapping such as {budget: 10, dataset: RML2016.10a}")
    allowed = [a for a in labels if a not in ("seed", suite.table["rows"])]
    out = {}
    for axis, value in spec.items():
        if axis not in allowed:
            hint = (" (the rows axis: compare rows with better/than)" if axis == suite.table["rows"]
                    else did_you_mean(str(axis), allowed))
            raise src.error(where + (axis,), f"cannot filter on {axis!r}{hint}; allowed: {', '.join(allowed)}")
        items = value if isinstance(value, list) else [value]
        if not items:
            raise src.error(where + (axis,), "must name at least one value")
        out[axis] = [_resolve(src, suite, labels, where + (axis,), axis, v) for v in items]
    return out


def _resolve(src, suite, labels: dict, where: tuple, axis: str, value) -> str:
    """The label on ``axis`` that ``value`` names: a label, or for budgets also the
    suite's spc or rate value."""
    known = labels[axis]
    if axis == "budget" and isinstance(value, (int, float)) and not isinstance(value, bool):
        for budget, label in zip(suite.budgets, known):
            if budget is not None and (budget.spc == value if budget.spc is not None
                                       else math.isclose(budget.rate, float(value), rel_tol=1e-9)):
                return label
    elif str(value) in [str(k) for k in known]:
        return next(k for k in known if str(k) == str(value))
    listed = ", ".join(str(k) for k in known)
    extra = " (give the spc or rate value, e.g. 10 or 0.01, or the label)" if axis == "budget" else ""
    raise src.error(where, f"{value!r} is not a {axis} of this suite{did_you_mean(str(value), [str(k) for k in known])}; "
                           f"it has: {listed}{extra}")


# --------------------------------------------------------------------------- evaluation
def evaluate_claims(suite, records: list, tables: Optional[list] = None) -> list:
    """Each claim's verdict and comparisons, from the tables' per-cell values."""
    from amrbench.tables import _decimals, build_tables, confidence

    claims = getattr(suite, "claims", None) or []
    if not claims:
        return []
    tables = tables if tables is not None else build_tables(suite, records)
    layout = suite.table
    level = confidence(layout) or stats.CONFIDENCE
    scale, higher, digits = float(layout["scale"]), bool(layout["higher_is_better"]), _decimals(layout["format"])
    cols_axis = layout["columns"]
    return [_evaluate(claim, tables, cols_axis, scale, higher, level, digits) for claim in claims]


def _evaluate(claim: Claim, tables: list, cols_axis: str, scale: float, higher: bool, level: float, digits: int) -> ClaimResult:
    comparisons = []
    for table in tables:
        if any(axis in claim.where and value not in claim.where[axis] for axis, value in table.group.items()):
            continue
        for column in table.col_values:
            if cols_axis in claim.where and column not in claim.where[cols_axis]:
                continue
            group = " · ".join(str(v) for v in table.group.values() if str(v))
            place = " · ".join(p for p in (group, str(column)) if p)
            for than in claim.than:
                comparison = _compare(table, column, claim, than, place, scale, higher, level)
                comparison.group = group
                comparisons.append(comparison)
    family = sum(c.difference.n >= 2 and not c.marks for c in comparisons)
    familywise = familywise_level(level, family)
    for c in comparisons:
        if c.verdict == "fails":
            c.familywise = stats.paired_difference(*c.pairs, higher, familywise)
            c.familywise_verdict = "fails" if c.familywise.high < claim.margin else "undecided"
    verdicts = {c.verdict for c in comparisons}
    if any(c.familywise_verdict == "fails" for c in comparisons):
        verdict = "fails"
    else:
        verdict = "holds" if verdicts == {"holds"} else "undecided"
    return ClaimResult(claim, verdict, comparisons, level, digits, familywise, family)


def familywise_level(level: float, comparisons: int) -> float:
    """The Bonferroni confidence level for ``comparisons`` simultaneous intervals."""
    return 1.0 - (1.0 - level) / max(comparisons, 1)


def _compare(table, column, claim: Claim, than: str, place: str, scale, higher, level) -> Comparison:
    better_values = _filtered(table.samples.get((claim.better, column)), claim.where, table.pair_names)
    than_values = _filtered(table.samples.get((than, column)), claim.where, table.pair_names)
    if better_values is None or than_values is None:
        return Comparison(place, than, stats.PairedDifference(math.nan, math.nan, math.nan, 0), "undecided")
    better_array, than_array = paired(better_values, than_values)
    pairs = (better_array * scale, than_array * scale)
    difference = stats.paired_difference(*pairs, higher, level)
    marks = "".join(dict.fromkeys(s for row in (claim.better, than) for s in table.marks.get((row, column), [])))
    if difference.n < 2 or marks:
        verdict = "undecided"
    elif difference.low > claim.margin:
        verdict = "holds"
    elif difference.high < claim.margin:
        verdict = "fails"
    else:
        verdict = "undecided"
    return Comparison(place, than, difference, verdict, marks, pairs)


def _filtered(values, where: dict, names: list):
    """A cell's {pair key: value} restricted to ``where`` on the axes pooled into the
    cell (those in its pair key, named by ``names``); None when nothing is left."""
    if values is None:
        return None
    for axis, allowed in where.items():
        if axis in names:
            at = names.index(axis)
            values = {k: v for k, v in values.items() if k[at] in allowed}
    return values or None


def claim_line(result: ClaimResult, markdown: bool = False) -> str:
    """One line: verdict, label, margin, the tally, then each comparison's difference,
    interval, n and verdict, grouped by table group and column. Comparisons without
    records (blocks not yet run) are only counted, not listed."""
    claim, d = result.claim, result.digits
    verdict = f"**{result.verdict}**" if markdown else result.verdict
    margin = f" (margin {claim.margin:g})" if claim.margin else ""
    if not result.comparisons:
        return f"{verdict} — {claim.label}{margin}: no records match"
    tally = {v: sum(c.verdict == v for c in result.comparisons) for v in ("holds", "fails", "undecided")}
    missing = sum(c.difference.n == 0 for c in result.comparisons)
    unrun = f" ({missing} of them without records yet)" if missing else ""
    familywise = (f"; a fail is retested family-wise at {result.familywise_level * 100:.4g} % "
                  f"(Bonferroni over {result.family} comparisons)" if tally["fails"] else "")
    head = (f"{verdict} — {claim.label}{margin}; {result.level * 100:g} % CI of the paired difference; "
            f"{tally['holds']} hold, {tally['fails']} fail, {tally['undecided']} undecided{unrun}{familywise}")
    places = {}
    for c in result.comparisons:
        if c.difference.n == 0:
            continue
        why = f" (a {c.marks} cell)" if c.marks else ""
        if c.familywise is not None:
            why = f" (family-wise [{c.familywise.low:+.{d}f}, {c.familywise.high:+.{d}f}] {c.familywise_verdict})"
        places.setdefault(c.place, []).append(f"vs {c.than} {_numbers(c.difference, d)} {c.verdict}{why}")
    if not places:
        return head
    return head + ": " + "; ".join(f"{place + ': ' if place else ''}{', '.join(items)}" for place, items in places.items())


def verdicts_by_group(results: list) -> tuple:
    """Each claim's tally per table group, "hold / fail / undecided" (comparisons with
    records; "–" where the claim has none in that group), as (header, rows); empty when
    the claims meet fewer than two groups, where the claim lines already say it all."""
    groups = list(dict.fromkeys(c.group for r in results for c in r.comparisons if c.difference.n))
    if len(groups) < 2:
        return [], []
    rows = []
    for result in results:
        cells = []
        for group in groups:
            verdicts = [c.verdict for c in result.comparisons if c.group == group and c.difference.n]
            cells.append(" / ".join(str(verdicts.count(v)) for v in ("holds", "fails", "undecided"))
                         if verdicts else "–")
        rows.append([result.claim.label, *cells])
    return ["Claim", *groups], rows


def _numbers(diff: stats.PairedDifference, digits: int) -> str:
    if diff.n < 2:
        return f"{diff.mean:+.{digits}f} (n=1)"
    return f"{diff.mean:+.{digits}f} [{diff.low:+.{digits}f}, {diff.high:+.{digits}f}] (n={diff.n})"
