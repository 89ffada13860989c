"""Drop records that no profile of their suite can render any more (a plugin's version
changed, so its cells have new keys), keeping every other line byte for byte.

    python scripts/prune_stale_records.py results/foqus_table1-quick [more folders]   # dry run
    python scripts/prune_stale_records.py --write results/*/

A folder's suite comes from its ``suite.json``; the keys kept are those of the suite's
grid under every one of its profiles, so records of other profiles stay.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from amrbench.store import read_suite_meta
from amrbench.suite import expand, load_suite, resolve_suite_path
from amrbench.shipped import plain_yaml


def live_keys(suite_path: Path) -> set:
    profiles = plain_yaml(suite_path).get("profiles") or {}
    keys = set()
    for profile in [None, *profiles]:
        keys |= {cell["key"] for cell in expand(load_suite(suite_path, profile=profile))}
    return keys


def prune(folder: Path, write: bool) -> tuple:
    meta = read_suite_meta(folder)
    records = folder / "records.jsonl"
    if not meta or not records.exists():
        return 0, 0
    keys = live_keys(resolve_suite_path(meta["suite"]))
    lines = records.read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if not line.strip() or json.loads(line).get("key") in keys]
    if write and len(kept) != len(lines):
        tmp = records.with_suffix(".jsonl.tmp")
        tmp.write_bytes(b"".join(kept))
        tmp.replace(records)
    return len(lines), len(lines) - len(kept)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--write", action="store_true", help="rewrite records.jsonl (default: only report)")
    args = parser.parse_args(argv)
    for folder in args.folders:
        total, stale = prune(folder, args.write)
        print(f"{folder}: {stale} of {total} records stale{' (removed)' if args.write and stale else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
