"""``amrbench leaderboard``: results/LEADERBOARD.md rebuilt from every committed
``results/<suite>/records.jsonl``, rendered with the suite (and profile) that produced
them (``results/<suite>/suite.json``). Deterministic, so CI can check it is current."""
from __future__ import annotations

import json
from pathlib import Path

from amrbench.api import AmrbenchError
from amrbench.store import RecordStore
from amrbench.suite import expand, load_suite
from amrbench.tables import render


def _suite_for(folder: Path, suites_dir: Path):
    meta_path = folder / "suite.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    path = Path(meta.get("suite") or suites_dir / f"{folder.name}.yaml")
    if not path.exists():
        raise AmrbenchError(f"{folder}: cannot find the suite that produced these records ({path}); "
                            f"add suite.json or suites/{folder.name}.yaml")
    return load_suite(path, profile=meta.get("profile"))


def build_leaderboard(root: Path, suites_dir: Path) -> str:
    parts = ["# amrbench leaderboard", "",
             "Rebuilt by `amrbench leaderboard` from every committed `results/*/records.jsonl`; "
             "CI fails when this file is stale. Each section is the suite's paper-style table.", ""]
    for records_path in sorted(root.glob("*/records.jsonl")):
        suite = _suite_for(records_path.parent, suites_dir)
        keys = {c["key"] for c in expand(suite)}
        records = [r for k, r in RecordStore(records_path).latest().items() if k in keys]
        meta = json.loads((records_path.parent / "suite.json").read_text()) if (records_path.parent / "suite.json").exists() else {}
        profile = f" (profile `{meta['profile']}`)" if meta.get("profile") else ""
        body = render(suite, records, "markdown").replace("\n# ", "\n### ").replace("\n## ", "\n#### ")
        body = body.split("\n", 1)[1] if body.startswith("# ") else body
        parts += [f"## {suite.name}{profile}", "", f"Suite `{meta.get('suite', suite.path)}`, "
                  f"{len(records)} of {len(keys)} cells stored.", "", body.strip(), ""]
    return "\n".join(parts)
