"""A suite's ``published:``: the paper's own table, copied into the suite, so that
``amrbench agreement SUITE --profile P --against published`` can set a run's ranking of
the rows against the paper's, column by column.

    published:
      source: "Lu et al. 2025, Table I (mean of 3 runs)"   # where the numbers come from
      scale: 1                       # paper number x scale = the records' units (0.01 for %)
      columns: ["1%", "5%", "10%", "20%", "30%"]          # labels on the table's columns axis, as shown
      blocks:
        - where: {dataset: RML2016.10a, model: cnn1d}     # labels on the table's other axes
          rows:                                           # row label -> one number per column
            Uniform: [0.2907, 0.4587, 0.5257, 0.5572, 0.5793]

The numbers are the paper's as printed (a block's axes not named in ``where`` match any
label; no two blocks may match the same one). Columns and ``where`` take labels as the
table shows them ("1%", "SPC 10"), not rates or SPC numbers. Labels the chosen profile lacks (a profile with fewer datasets or rates) are
left out of the comparison with a note, not an error: one ``published`` serves every
profile of the suite.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from amrbench.api import did_you_mean

PUBLISHED_KEYS = {"source", "scale", "columns", "blocks"}
BLOCK_KEYS = {"where", "rows"}
NAME = "published"  # what --against takes (a suite may not name a profile so)


@dataclass
class PublishedBlock:
    where: dict  # axis -> label
    rows: dict  # row label -> {column label: value in the records' units}


@dataclass
class Published:
    source: str
    columns: list
    blocks: list = field(default_factory=list)


def validate_published(src, spec, suite):
    """The suite's ``published`` block checked (keys, axes, one number per column) and
    scaled into the records' units; None when absent. Errors name file:line."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise src.error((NAME,), "must be a mapping with source, columns and blocks (docs/usage.md)")
    for key in spec:
        if key not in PUBLISHED_KEYS:
            raise src.error((NAME, key), f"unknown key{did_you_mean(key, PUBLISHED_KEYS)}")
    for key in ("source", "columns", "blocks"):
        if key not in spec:
            raise src.error((NAME,), f"missing {key!r}; published needs source, columns and blocks")
    if not isinstance(spec["source"], str) or not spec["source"].strip():
        raise src.error((NAME, "source"), "must name the paper and its table, e.g. \"Lu et al. 2025, Table I\"")
    scale = spec.get("scale", 1)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise src.error((NAME, "scale"), f"{scale!r} must be a positive number (0.01 when the paper prints percent)")
    columns = spec["columns"]
    if not isinstance(columns, list) or not columns or len(set(map(str, columns))) != len(columns):
        raise src.error((NAME, "columns"), "must be a list of distinct column labels, e.g. [\"1%\", \"5%\"]")
    blocks = spec["blocks"]
    if not isinstance(blocks, list) or not blocks:
        raise src.error((NAME, "blocks"), "must be a list of {where, rows} mappings")
    axes = _block_axes(suite)
    found = [_block(src, i, b, axes, len(columns), float(scale)) for i, b in enumerate(blocks)]
    _no_overlap(src, found)
    return Published(spec["source"].strip(), [str(c) for c in columns], found)


def _no_overlap(src, blocks: list) -> None:
    """Two blocks whose ``where`` can match the same run block would leave one of them
    unread: an error naming the second."""
    for j, later in enumerate(blocks):
        for i, earlier in enumerate(blocks[:j]):
            if all(earlier.where[a] == later.where[a] for a in earlier.where.keys() & later.where.keys()):
                raise src.error((NAME, "blocks", j, "where"), f"matches the same blocks as blocks[{i}]; "
                                                             f"tell them apart by a label on another axis")


def _block_axes(suite) -> list:
    """The axes ``where`` may name: the blocks' axes `amrbench agreement` compares on, less the seed."""
    from amrbench.tables import block_axes_of, metric_names

    return [a for a in block_axes_of(suite.table, metric_names(suite.table)) if a != "seed"]


def _block(src, i: int, spec, axes: list, width: int, scale: float) -> PublishedBlock:
    path = (NAME, "blocks", i)
    if not isinstance(spec, dict):
        raise src.error(path, "must be a mapping with where and rows")
    for key in spec:
        if key not in BLOCK_KEYS:
            raise src.error(path + (key,), f"unknown key{did_you_mean(key, BLOCK_KEYS)}")
    where = spec.get("where") or {}
    if not isinstance(where, dict):
        raise src.error(path + ("where",), "must map axes to labels, e.g. {dataset: RML2016.10a, model: cnn1d}")
    for axis, label in where.items():
        if axis not in axes:
            raise src.error(path + ("where", axis), f"not an axis a block is made of{did_you_mean(axis, axes)}")
        if isinstance(label, (list, dict, bool)) or label is None:
            raise src.error(path + ("where", axis), f"must be one label as the table shows it, e.g. RML2016.10a or "
                                                    f"\"1%\" (one block per label)")
    rows = spec.get("rows")
    if not isinstance(rows, dict) or not rows:
        raise src.error(path + ("rows",), "must map row labels to one number per column")
    return PublishedBlock({a: str(v) for a, v in where.items()},
                          {str(row): _numbers(src, path + ("rows", row), values, width, scale)
                           for row, values in rows.items()})


def _numbers(src, path, values, width: int, scale: float) -> list:
    if (not isinstance(values, list) or len(values) != width
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values)):
        raise src.error(path, f"must be a list of {width} numbers, one per published column")
    return [float(v) * scale for v in values]


def published_values(published: Published, axes: tuple, blocks: set, order: dict) -> tuple:
    """(values, notes): (block, column) -> {row: paper value} for every run block in
    ``blocks`` (seed included) that a published block matches, and a note per published
    label the run's profile lacks. ``axes`` = (rows axis, columns axis, block axes)."""
    rows_axis, cols_axis, block_axes = axes
    known = {axis: set(map(str, labels)) for axis, labels in order.items()}
    notes = [f"published column {c!r}: not a column of this profile; left out"
             for c in published.columns if c not in known[cols_axis]]
    values: dict = {}
    for entry in published.blocks:
        where = _where_text(entry)
        missing = [f"{a} {v!r}" for a, v in entry.where.items() if v not in known[a]]
        if missing:
            notes.append(f"published block {where}: no {', '.join(missing)} in this profile; left out")
            continue
        unknown = [r for r in entry.rows if r not in known[rows_axis]]
        notes += [f"published block {where}: row {r!r} not in this profile; left out" for r in unknown]
        for block in blocks:
            if all(str(block[block_axes.index(a)]) == v for a, v in entry.where.items() if a in block_axes):
                for k, column in enumerate(published.columns):
                    if column in known[cols_axis]:
                        values[(block, column)] = {r: v[k] for r, v in entry.rows.items() if r not in unknown}
    return values, notes


def _where_text(entry: PublishedBlock) -> str:
    return " · ".join(entry.where.values()) or "(all)"
