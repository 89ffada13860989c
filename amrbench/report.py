"""``amrbench report``: a static HTML site of every results folder, the page a lab puts
on its website.

``results/site/`` (or ``--out``) gets an ``index.html`` and one page per results folder
(``<folder>/index.html``) holding:

- the suite's tables with their intervals, ranks and claim verdicts, as ``amrbench
  table --format html`` renders them (amrbench.render), and a tally of the verdicts;
- the profile and scale behind them: suite file, profile, cells stored of the grid,
  seeds, datasets, models, methods, budgets, epochs and the compute time the records took;
- the figures found in the folder, copied beside the page: accuracy-vs-budget curves
  (``curve-*``, with their CSV), critical-difference diagrams (``cd-*``, with the SVG)
  and every other figure (the explainers' and compressors' ``figures/``);
- condensation loss curves, drawn from the ``loss_curve`` of condense-protocol records;
- each record's provenance (git commit, CPU, threads, versions, start, wall time) in
  collapsed ``<details>``.

A folder with figures but no records (``amrbench explain --out``) gets a figures-only
page. Pages come from Jinja2 templates (``amrbench/report-templates/``, package data); images are
static files and nothing loads from the network, so the site opens offline. Output is
byte-stable: the same records and figures give the same files (no dates; PNG metadata
without the matplotlib version, as in amrbench.figures), so a site can be committed.

The site folder holds ``.amrbench-report``, the list of files the last report wrote. A
rerun removes those of them it no longer writes (a figure deleted from the results);
it never writes into a non-empty folder without that list, so it removes nothing else.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Optional
from urllib.parse import quote

from amrbench.basics import AmrbenchError

MARKER = ".amrbench-report"
TEMPLATES = "report-templates"  # package data; a name Python cannot import, so setuptools keeps it as data
LOSS_FOLDER = "loss-curves"  # inside a page's folder: the loss curves the report draws
IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif", ".webp")
PROVENANCE_FIELDS = ("git", "cpu", "cpu_capability", "threads", "host", "python", "torch", "numpy", "amrbench")
VERDICTS = ("holds", "fails", "undecided")
CELL_AXES = ("dataset", "model", "method", "budget", "seed")  # a cell in words, in the grid's order


def _figures_heading(protocol: Optional[str]) -> str:
    """"Selectors' figures" for a select suite: named by its protocol's method kind."""
    from amrbench.registry import default_registry

    try:
        kind = default_registry().get("protocol", protocol).method_kind if protocol else ""
    except AmrbenchError:
        kind = ""
    return f"{kind.capitalize()}s' figures" if kind else "Figures"


# --------------------------------------------------------------------------- what a page shows
@dataclass
class Figure:
    """One image on a page: its path inside the page folder and companion files."""

    src: str
    caption: str
    extras: list = field(default_factory=list)  # (text, href): the SVG, the CSV behind a curve
    wide: bool = False  # spans the page's width (a grid of panels)


@dataclass
class Page:
    """One results folder as the templates see it."""

    folder: str
    title: str
    kind: str  # "suite" (records) or "figures" (figures only)
    smoke: bool = False
    description: str = ""
    scale: list = field(default_factory=list)  # (term, text)
    tables_html: str = ""
    verdicts: dict = field(default_factory=dict)  # verdict -> number of claims
    figure_groups: list = field(default_factory=list)  # (heading, note, [Figure])
    environments: list = field(default_factory=list)  # (count, {field: value})
    records: list = field(default_factory=list)  # one dict of provenance columns per record
    provenance_columns: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)  # the index row's numbers
    copies: list = field(default_factory=list)  # (source file, path inside the page folder)
    drawn: list = field(default_factory=list)  # paths inside the page folder drawn by the report

    @property
    def href(self) -> str:
        return quote(self.folder) + "/index.html"


# --------------------------------------------------------------------------- finding folders
def results_folders(root: Path, out: Path) -> list:
    """The sub-folders of ``root`` a report covers, sorted: those with records or
    figures; never the site itself (``out``, or any folder holding a report's marker)."""
    out = out.resolve()
    folders = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.resolve() == out or (folder / MARKER).exists():
            continue
        folders.append(folder)
    return folders


def folder_images(folder: Path) -> list:
    """Image files under ``folder`` (any depth), as sorted relative POSIX paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


# --------------------------------------------------------------------------- figures
def figure_groups(folder: Path, images: list, protocol: Optional[str]) -> tuple:
    """(groups, copies): the folder's figures as (heading, note, [Figure]) groups,
    curves and CD diagrams first, and the (source file, page-relative path) pairs to
    copy. A PNG and an SVG of the same name show once, the PNG, with the SVG linked;
    a curve's CSV is linked and copied too."""
    names = set(images)
    copies = [(folder / p, p) for p in images]
    curves, cds, others = [], [], []
    for path in map(PurePosixPath, images):
        if path.suffix == ".svg" and str(path.with_suffix(".png")) in names:
            continue
        extras = []
        for suffix in (".svg", ".csv") if path.suffix == ".png" else ():
            companion = str(path.with_suffix(suffix))
            if (folder / companion).is_file():
                extras.append((f"{suffix[1:].upper()} file", quote(companion)))
                copies += [(folder / companion, companion)] if suffix == ".csv" else []
        figure = Figure(quote(str(path)), str(path), extras)
        (curves if path.name.startswith("curve-") else cds if path.name.startswith("cd-") else others).append(figure)
    groups = [g for g in (
        ("Accuracy vs budget", "Each row's mean per budget; the band is the table's t-interval.", curves),
        ("Critical-difference diagram", "Average ranks over every (group, column) block; bars join rows the "
                                        "Nemenyi test cannot tell apart.", cds),
        (_figures_heading(protocol), "Figures written into this results folder.", others),
    ) if g[2]]
    return groups, copies


def loss_curve_figures(suite, records: list, page_dir: Path) -> list:
    """The condensation loss curves of a condense suite's records
    (``amrbench.figures.write_loss_curves``), drawn afresh into the page's
    ``LOSS_FOLDER``; returns the Figures."""
    from amrbench.figures import write_loss_curves

    written = write_loss_curves(suite, records, page_dir / LOSS_FOLDER, prefix="")
    return [Figure(quote(f"{LOSS_FOLDER}/{path.name}"), f"{LOSS_FOLDER}/{path.name}", wide=True) for path in written]


# --------------------------------------------------------------------------- provenance and scale
def provenance(records: list, order: dict) -> tuple:
    """(environments, rows, columns): the distinct record environments with their
    record counts, and one row per record in the suite's ``order`` of axis labels (key,
    cell, status, device, start, wall time and each environment field any record has)."""
    env_fields = [f for f in PROVENANCE_FIELDS if any(f in (r.get("env") or {}) for r in records)]
    env_fields += sorted({k for r in records for k in (r.get("env") or {})} - set(env_fields))
    counts: dict = {}
    for r in records:
        env = r.get("env") or {}
        key = tuple(str(env.get(f, "–")) for f in env_fields)
        counts[key] = counts.get(key, 0) + 1
    by_count = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    environments = [(n, dict(zip(env_fields, key))) for key, n in by_count]
    columns = ["key", "cell", "status", "device", "started", "wall (s)", *env_fields]
    rows = []
    for r in sorted(records, key=lambda r: _record_order(r, order)):
        env = r.get("env") or {}
        labels = r.get("labels") or {}
        cell = " · ".join(f"seed {labels[a]}" if a == "seed" else str(labels[a]) for a in CELL_AXES if a in labels)
        rows.append({"key": str(r.get("key", ""))[:12], "cell": cell,
                     "status": str(r.get("status", "")) + (f": {r['error']}" if r.get("error") else ""),
                     "device": str(r.get("device", "–")), "started": str(r.get("started_at") or "–"),
                     "wall (s)": _seconds(r.get("wall_time_s")), **{f: str(env.get(f, "–")) for f in env_fields}})
    return environments, rows, columns


def _record_order(record: dict, order: dict) -> tuple:
    """A record's place in the grid: the index of each of its labels in the suite's order."""
    labels = record.get("labels") or {}
    places = []
    for axis in CELL_AXES:
        known = order.get(axis) or []
        value = labels.get(axis)
        places.append((known.index(value), "") if value in known else (len(known), str(value)))
    return (*places, str(record.get("key")))


def _seconds(value) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds / 60:.1f} min"


def scale_terms(suite, meta: dict, records: list, grid: int, outside: int) -> list:
    """The profile and scale of the folder's tables, as (term, text) pairs."""
    ok = [r for r in records if r.get("status") == "ok"]
    failed = len(records) - len(ok)
    wall = sum(r.get("wall_time_s") or 0.0 for r in records if isinstance(r.get("wall_time_s"), (int, float)))
    stored = f"{len(records)} of {grid}" + (f" ({failed} failed)" if failed else "")
    if outside:
        stored += f"; {outside} more record(s) in the file belong to another profile or plugin version, not shown"
    train = {**suite.train, **((suite.settings or {}).get("classifier") or {})}
    return [
        ("suite", str(meta.get("suite") or suite.path)),
        ("profile", meta.get("profile") or "default (no --profile)"),
        ("protocol", suite.protocol),
        ("cells stored", stored),
        ("seeds", ", ".join(str(s) for s in suite.seeds)),
        ("datasets", ", ".join(d["label"] for d in suite.datasets)),
        ("models", ", ".join(m["label"] for m in suite.models)),
        ("methods", ", ".join(m["label"] for m in suite.methods)),
        ("budgets", ", ".join(b.label() for b in suite.budgets if b) or "–"),
        ("epochs", str(train.get("epochs", "–"))),
        ("compute", f"{_duration(wall)} of cell wall time (one thread per cell unless the records say otherwise)"),
    ]


# --------------------------------------------------------------------------- pages
def folder_suite(folder: Path, meta: dict, suites_dir: Path):
    """The suite (and profile) that produced a folder's records: ``suite.json`` names
    it (a file, or ``suites/<file>`` of a shipped suite, found from any folder); without
    it, ``<suites_dir>/<folder>.yaml`` or the shipped suite of the folder's name."""
    from amrbench.suite import load_suite, resolve_suite_path

    spec = meta.get("suite")
    if not spec:
        own = suites_dir / f"{folder.name}.yaml"
        spec = own if own.is_file() else folder.name
    try:
        path = resolve_suite_path(spec)
    except AmrbenchError as exc:
        raise AmrbenchError(f"{folder}: cannot find the suite that produced these records ({exc}); "
                            f"add a suite.json naming it, or pass --suites") from None
    return load_suite(path, profile=meta.get("profile"))


def suite_page(folder: Path, suites_dir: Path, page_dir: Path) -> Page:
    """The page of a folder with records: tables, scale, figures, loss curves, provenance."""
    from amrbench.claims import evaluate_claims
    from amrbench.store import RecordStore, read_suite_meta
    from amrbench.suite import expand
    from amrbench.render import render
    from amrbench.tables import axis_labels, build_tables, is_smoke

    meta = read_suite_meta(folder)
    suite = folder_suite(folder, meta, suites_dir)
    keys = {c["key"] for c in expand(suite)}
    latest = RecordStore(folder / "records.jsonl").latest()
    records = [r for k, r in latest.items() if k in keys]
    tables_html = render(suite, records, "html")
    if tables_html.startswith("<h1>"):  # the page has its own title
        tables_html = tables_html.split("\n", 1)[1]
    tables_html = tables_html.replace("<h2>", "<h3>").replace("</h2>", "</h3>")
    claims = evaluate_claims(suite, records, build_tables(suite, records))
    verdicts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS} if claims else {}
    losses = loss_curve_figures(suite, records, page_dir)
    images = folder_images(folder)
    if losses:  # the page draws them afresh: not the copies a run wrote beside table.md
        from amrbench.figures import LOSS_PREFIX

        images = [p for p in images if not ("/" not in p and p.startswith(LOSS_PREFIX))]
    groups, copies = figure_groups(folder, images, suite.protocol)
    if losses:
        groups.append(("Condensation loss curves", "The condensation loss per iteration of each record (bin means of "
                       "its loss_curve), a panel per method and budget, a line per seed.", losses))
    environments, rows, columns = provenance(records, axis_labels(suite))
    page = Page(folder.name, suite.name, "suite", smoke=is_smoke(suite), description=suite.description or "",
                scale=scale_terms(suite, meta, records, len(keys), len(latest) - len(records)),
                tables_html=tables_html, verdicts=verdicts, figure_groups=groups, environments=environments,
                records=rows, provenance_columns=columns, copies=copies, drawn=[f.caption for f in losses])
    page.summary = {"protocol": suite.protocol, "profile": meta.get("profile") or "default",
                    "cells": f"{len(records)} of {len(keys)}",
                    "failed": sum(r.get("status") != "ok" for r in records),
                    "figures": sum(len(g[2]) for g in groups)}
    return page


def figures_page(folder: Path, images: list) -> Page:
    """The page of a folder with figures and no records (e.g. `amrbench explain --out`)."""
    groups, copies = figure_groups(folder, images, None)
    page = Page(folder.name, folder.name, "figures", figure_groups=groups, copies=copies,
                description="Figures only: this folder holds no records.")
    page.summary = {"figures": sum(len(g[2]) for g in groups)}
    return page


# --------------------------------------------------------------------------- writing the site
def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("amrbench", TEMPLATES),
                              autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


@dataclass
class ReportResult:
    out: Path
    pages: list
    problems: list  # (folder name, one-line reason) of folders that could not be rendered
    written: list  # site-relative paths, sorted

    def lines(self) -> list:
        found = [f"amrbench: warning: {name}: not in the report ({why})" for name, why in self.problems]
        return found + [f"wrote {len(self.pages)} page(s), {len(self.written)} file(s) in {self.out}; "
                        f"open {self.out / 'index.html'}"]


def build_report(root, out, suites_dir="suites") -> ReportResult:
    """Write the site for every results folder under ``root`` into ``out``."""
    root, out, suites_dir = Path(root), Path(out), Path(suites_dir)
    if not root.is_dir():
        raise AmrbenchError(f"--results-root {root}: no such folder; give the folder holding one results folder "
                            f"per suite (default $AMRBENCH_RESULTS, else ./results)")
    previous = _previous_files(out)
    pages, problems, empty = [], [], []
    for folder in results_folders(root, out):
        before = len(problems)
        page = _page_for(folder, suites_dir, out / folder.name, problems)
        if page is not None:
            pages.append(page)
        elif len(problems) == before:
            empty.append(folder.name)
    env = _environment()
    written = _write_pages(env, out, pages)
    sections = [("Runs", [p for p in pages if p.kind == "suite" and not p.smoke]),
                ("Smoke tests: not a ranking", [p for p in pages if p.kind == "suite" and p.smoke]),
                ("Figures without records", [p for p in pages if p.kind == "figures"])]
    _write(out / "index.html", env.get_template("index.html").render(
        sections=[s for s in sections if s[1]], problems=problems, empty=empty, root=root.name, up=""))
    written = sorted(written | {"index.html"})
    _remove_stale(out, previous, set(written))
    _write(out / MARKER, "".join(f"{p}\n" for p in written))
    return ReportResult(out, pages, problems, written)


def _page_for(folder: Path, suites_dir: Path, page_dir: Path, problems: list) -> Optional[Page]:
    """A folder's page, None for a folder with neither records nor figures; a folder
    whose suite cannot be loaded is a problem line, and the report goes on."""
    images = folder_images(folder)
    if not (folder / "records.jsonl").is_file():
        return figures_page(folder, images) if images else None
    try:
        return suite_page(folder, suites_dir, page_dir)
    except AmrbenchError as exc:
        problems.append((folder.name, str(exc)))
        return None


def _write_pages(env, out: Path, pages: list) -> set:
    """The style sheet, each page and its figures; returns the site-relative paths."""
    from markupsafe import Markup

    _write(out / "style.css", (Path(__file__).parent / TEMPLATES / "style.css").read_text())
    written = {"style.css"}
    for page in pages:
        for source, target in page.copies:
            _copy(source, out / page.folder / target)
        written |= {f"{page.folder}/{name}" for name in [t for _, t in page.copies] + page.drawn + ["index.html"]}
        html = env.get_template("suite.html").render(page=page, tables=Markup(page.tables_html), up="../")
        _write(out / page.folder / "index.html", html)
    return written


def _previous_files(out: Path) -> set:
    """The files the last report wrote into ``out``; an error if ``out`` holds files
    but was not written by a report (nothing of the user's is ever removed)."""
    if not out.exists():
        return set()
    if not out.is_dir():
        raise AmrbenchError(f"--out {out}: is a file; give a folder for the site")
    marker = out / MARKER
    if not marker.is_file():
        if any(out.iterdir()):
            raise AmrbenchError(f"--out {out}: the folder holds files that `amrbench report` did not write (no "
                                f"{MARKER}); give an empty or new folder")
        return set()
    return {line for line in marker.read_text(encoding="utf-8").splitlines() if line and ".." not in line.split("/")}


def _remove_stale(out: Path, previous: set, written: set) -> None:
    """Remove the files the last report wrote and this one did not, and the folders
    that leaves empty (a results folder gone, a figure deleted)."""
    top = out.resolve()
    for name in sorted(previous - written):
        path = out / name
        if not (path.is_file() and top in path.resolve().parents):
            continue
        path.unlink()
        for parent in path.resolve().parents:
            if parent == top or any(parent.iterdir()):
                break
            parent.rmdir()


def _write(path: Path, text: str) -> None:
    from amrbench.store import write_text_file

    write_text_file(path, text, "choose a writable --out folder")


def _copy(source: Path, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    except OSError as exc:
        raise AmrbenchError(f"{target}: cannot copy {source} ({exc.strerror or exc}); choose a writable --out "
                            f"folder") from None


# --------------------------------------------------------------------------- command line
def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``report [--results-root DIR] [--out DIR] [--suites DIR]``."""
    p = subparsers.add_parser("report", help="write a static HTML report of every results folder (tables, figures, "
                              "loss curves, provenance) to results/site/",
                              description="Write a static HTML site of every results folder: index.html and a "
                                          "page per folder with its tables, figures, condensation loss curves and "
                                          "each record's provenance. It opens offline; the same records give the "
                                          "same files.")
    p.add_argument("--results-root", help="folder holding one results folder per suite (default $AMRBENCH_RESULTS, "
                   "else ./results)")
    p.add_argument("--out", help="folder for the site (default <results-root>/site)")
    p.add_argument("--suites", default="suites", help="folder of suite files, for folders without suite.json")
    p.set_defaults(handler=cmd_report)
    return p


def cmd_report(args, registry=None) -> int:
    """Write the site; exit 1 when a folder could not be rendered (the others are)."""
    from amrbench.shipped import results_root

    root = Path(args.results_root) if args.results_root else results_root()
    result = build_report(root, Path(args.out) if args.out else root / "site", args.suites)
    for line in result.lines():
        print(line, file=sys.stderr if line.startswith("amrbench:") else sys.stdout)
    return 1 if result.problems else 0

