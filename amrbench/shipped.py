"""The suites that ship with amrbench, found and listed without importing torch.

``amrbench suites`` must answer in well under two seconds, so this module reads the
suite files as plain YAML (no validation, no plugins) and the committed records as JSON
lines: per shipped suite its ``name:``, file, profiles, each profile's results folder,
and the CPU time its stored records took (the sum of their ``cpu_time_s``, else
``wall_time_s``) per profile that made them (the results folders' ``suite.json``).
Estimates for grids not yet run need the cost model (``amrbench suites --cost``,
:mod:`amrbench.cost`), which loads the plugins.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import yaml

from amrbench.basics import metric_seconds, record_seconds

RESULTS_ENV = "AMRBENCH_RESULTS"
def shipped_suites_dir() -> Optional[Path]:
    """The folder of the suites that ship with amrbench: the installed package data
    ``amrbench_suites`` (pyproject maps the repository's ``suites/`` to it), else the
    checkout's ``suites/`` beside the ``amrbench`` package (an editable install)."""
    import importlib.util

    spec = importlib.util.find_spec("amrbench_suites")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if any(Path(location).glob("*.yaml")):
            return Path(location)
    checkout = Path(__file__).resolve().parent.parent / "suites"
    return checkout if checkout.is_dir() else None


def shipped_suites() -> dict:
    """File stem -> path of every shipped suite, sorted by stem."""
    folder = shipped_suites_dir()
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder else {}


def results_root() -> Path:
    """Where suites' results folders go: ``$AMRBENCH_RESULTS``, else ``./results``."""
    return Path(os.environ.get(RESULTS_ENV) or "results")


def results_folder_name(suite_name: str, profile: Optional[str] = None) -> str:
    """A suite's results folder under the root: ``<suite name>`` for its default profile,
    ``<suite name>-<profile>`` for a named one, so that running a second profile never
    rewrites the first one's table.md and suite.json."""
    return f"{suite_name}-{profile}" if profile else str(suite_name)


def suite_results_dir(suite_name: str, profile: Optional[str] = None, root=None) -> Path:
    """``<root>/<suite name>[-<profile>]``, the root being ``results_root()`` unless given."""
    return Path(root if root is not None else results_root()) / results_folder_name(suite_name, profile)


def plain_yaml(path: Path) -> dict:
    """The suite file as a plain mapping ({} when it is not one or cannot be read)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def declared_name(path: Path) -> str:
    """A suite file's top-level ``name:`` (its file stem when absent or unreadable)."""
    name = plain_yaml(path).get("name")
    return str(name) if name not in (None, "") else path.stem


def stored_cpu_hours(roots) -> dict:
    """(suite file stem, profile or None) -> (records, CPU-hours) of the ok records in
    every ``<root>/*/records.jsonl`` whose ``suite.json`` names a shipped suite file: the
    cells' wall times plus, once each, the shared artifacts' times the records carry (a
    condensation, the whole-dataset models, a fitted compressor or classifier: hours of
    a condensation suite's time are there, not in its cells)."""
    totals: dict = {}
    for root in roots:
        for meta_path in sorted(Path(root).glob("*/suite.json")):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(meta, dict) or not meta.get("suite"):
                continue
            key = (Path(str(meta["suite"])).stem, meta.get("profile"))
            records = list(_ok_records(meta_path.parent / "records.jsonl"))
            count, seconds = totals.get(key, (0, 0.0))
            totals[key] = (count + len(records), seconds + _cpu_seconds(records, _time_metrics(meta)))
    return {key: (count, seconds / 3600) for key, (count, seconds) in totals.items()}


def _time_metrics(meta: dict) -> set:
    """The record metrics timing shared artifacts: as the run wrote them in suite.json,
    else as the cached plugin catalogue knows them (none when neither says)."""
    if isinstance(meta.get("artifact_times"), list):
        return {str(m) for m in meta["artifact_times"]}
    from amrbench.catalog import cached_catalog

    catalog = cached_catalog()
    return set(catalog.artifact_times.values()) if catalog is not None else set()


def _cpu_seconds(records, time_metrics: set) -> float:
    """The cells' times and each shared artifact's time once (records sharing an artifact
    carry the same value of its metric), each read as ``amrbench.basics.record_seconds``
    and ``metric_seconds`` do (CPU time first)."""
    artifacts = {(metric, value) for record in records for metric in time_metrics
                 if (value := metric_seconds(record, metric)) is not None}
    return sum(record_seconds(r) or 0.0 for r in records) + sum(v for _, v in artifacts)


def _ok_records(path: Path):
    """The ok records of a records file, one per key (the last), unreadable lines skipped."""
    latest: dict = {}
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return []
    for raw in lines:
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("status") == "ok" and record.get("key"):
            latest[record["key"]] = record
    return latest.values()


def suites_rows(roots=None) -> list:
    """One row per shipped suite and profile: name, file, profile, its results folder
    under the results root, and the CPU-hours of the records stored for it ("-" when
    none)."""
    checkout = Path(__file__).resolve().parent.parent / "results"
    roots = roots if roots is not None else [results_root()] + ([checkout] if checkout.is_dir() else [])
    stored = stored_cpu_hours(dict.fromkeys(Path(r).resolve() for r in roots if Path(r).is_dir()))
    rows = []
    for stem, path in shipped_suites().items():
        data = plain_yaml(path)
        profiles = data.get("profiles") if isinstance(data.get("profiles"), dict) else {}
        for profile in [None, *profiles]:
            count, hours = stored.get((stem, profile), (0, 0.0))
            name = declared_name(path)
            rows.append([name, f"suites/{path.name}", profile or "(default)", results_folder_name(name, profile) + "/",
                         f"{hours:.2f} ({count} cells)" if count else "-"])
    return rows


def suites_table(roots=None) -> str:
    from tabulate import tabulate

    return tabulate(suites_rows(roots), headers=["suite", "file", "profile", "results folder", "stored CPU-hours"],
                    tablefmt="simple")
