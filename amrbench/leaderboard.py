"""``amrbench leaderboard``: results/LEADERBOARD.md rebuilt from every committed
``results/<suite>/records.jsonl``, rendered with the suite (and profile) that produced
them (``results/<suite>/suite.json``). Deterministic, so CI can check it is current."""
from __future__ import annotations

from pathlib import Path

from amrbench.api import AmrbenchError
from amrbench.store import RecordStore, read_suite_meta
from amrbench.suite import expand, load_suite
from amrbench.render import render
from amrbench.tables import SMOKE_PROFILE, is_smoke


def _suite_for(folder: Path, suites_dir: Path):
    meta = read_suite_meta(folder)
    path = Path(meta.get("suite") or suites_dir / f"{folder.name}.yaml")
    if not path.exists():
        raise AmrbenchError(f"{folder}: cannot find the suite that produced these records ({path}); "
                            f"add suite.json or suites/{folder.name}.yaml")
    return load_suite(path, profile=meta.get("profile"))


def build_leaderboard(root: Path, suites_dir: Path) -> str:
    """Every stored suite's tables: the real runs first, then, in a section of their
    own, the smoke tests (the ``quick`` profile), which check the machinery and rank
    nothing. Each table states the profile and scale that made its records."""
    real, smoke = [], []
    for records_path in sorted(root.glob("*/records.jsonl")):
        suite = _suite_for(records_path.parent, suites_dir)
        (smoke if is_smoke(suite) else real).extend(_section(suite, records_path))
    parts = ["# amrbench leaderboard", "",
             "Rebuilt by `amrbench leaderboard` from every committed `results/*/records.jsonl`; "
             "CI fails when this file is stale. Each section is the suite's paper-style table, "
             "under a line naming the profile, training-set size, seeds and epochs behind it.", "",
             "The same results as a website, with their figures, condensation loss curves and each record's "
             "provenance: `amrbench report` writes it to `results/site/` (open `results/site/index.html`).", ""]
    parts += real or ["No full-protocol results are committed yet.", ""]
    if smoke:
        parts += ["# Smoke tests: not a ranking", "",
                  f"Records of the `{SMOKE_PROFILE}` profile (tiny data, few epochs): they show that every "
                  "suite runs end to end; their numbers rank nothing.", ""] + smoke
    return "\n".join(parts)


def _section(suite, records_path: Path) -> list:
    keys = {c["key"] for c in expand(suite)}
    records = [r for k, r in RecordStore(records_path).latest().items() if k in keys]
    meta = read_suite_meta(records_path.parent)
    profile = f" (profile `{meta['profile']}`)" if meta.get("profile") else ""
    smoke = " — smoke test: not a ranking" if is_smoke(suite) else ""
    body = render(suite, records, "markdown").replace("\n# ", "\n### ").replace("\n## ", "\n#### ")
    body = body.split("\n", 1)[1] if body.startswith("# ") else body
    return [f"## {suite.name}{profile}{smoke}", "", f"Suite `{meta.get('suite', suite.path)}`, "
            f"{len(records)} of {len(keys)} cells stored.", "", body.strip(), ""]
