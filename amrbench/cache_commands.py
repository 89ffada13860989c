"""``amrbench cache info|clean``: see and trim the dataset and artifact caches.

``info`` shows where the caches are (``AMRBENCH_CACHE`` or ``~/.cache/amrbench``; the
artifact cache may be elsewhere with ``--cache``, as for ``amrbench run``), their size
by kind and the largest entries. ``clean`` removes entries (a data file with its
``.lock``, ``.sha256``, ``.log`` and temporary companions) chosen by ``--kind`` and
``--older-than DAYS`` (the entry's newest file); without ``--yes`` it only lists what it
would remove and removes nothing, so a script or a typo never deletes by surprise.
Only files named as the cache names them, inside the cache's resolved folders, are ever
removed (``amrbench.cache``); an entry another process holds the lock of is left.
"""
from __future__ import annotations

import argparse
import os

from amrbench.basics import AmrbenchError, did_you_mean
from amrbench.cache import (ARTIFACTS, DATASETS, CacheEntry, CacheScan, cache_root, human_size, known_kind,
                            remove_entry, scan_cache, select_entries, shown_path)

TOP_DEFAULT = 10


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``cache info`` and ``cache clean`` to the main parser's ``subparsers``."""
    parser = subparsers.add_parser("cache", help="show or clean the dataset and artifact caches",
                                   description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cache_command", metavar="{info,clean}")
    sub.required = True
    info = sub.add_parser("info", help="where the caches are, their size by kind, the largest entries")
    info.add_argument("--top", type=int, default=TOP_DEFAULT, help=f"largest entries shown (default {TOP_DEFAULT})")
    clean = sub.add_parser("clean", help="remove cache entries (lists them only, unless --yes)")
    clean.add_argument("--older-than", type=float, metavar="DAYS", help="only entries not written for DAYS days")
    clean.add_argument("--kind", help=f"only this kind: {DATASETS}, {ARTIFACTS}, or an artifact kind (e.g. dynamics)")
    clean.add_argument("--yes", action="store_true", help="remove them (without it: list what would be removed)")
    for p in (info, clean):
        p.add_argument("--cache", help="artifact cache directory, as given to `amrbench run --cache` "
                       "(default $AMRBENCH_CACHE/artifacts)")
    info.set_defaults(handler=cmd_info, loads_plugins=False)
    clean.set_defaults(handler=cmd_clean, loads_plugins=False)
    return parser


def _where(scan: CacheScan) -> list:
    origin = "from AMRBENCH_CACHE" if os.environ.get("AMRBENCH_CACHE") else "default; set AMRBENCH_CACHE to move it"
    return [f"cache root  {shown_path(cache_root())} ({origin})",
            f"datasets    {shown_path(scan.datasets_dir)}",
            f"artifacts   {shown_path(scan.artifacts_dir)}"]


def _age(days: float) -> str:
    """How long ago, in the unit that reads best: 40 min, 5 h, 12 days."""
    if days >= 2:
        return f"{days:.0f} days"
    hours = days * 24
    return f"{hours:.0f} h" if hours >= 2 else f"{max(hours * 60, 0):.0f} min"


def _entry_line(entry: CacheEntry) -> str:
    return f"  {human_size(entry.size):>8}  {_age(entry.age_days()):>8}  {entry.kind}/{entry.name}"


def cmd_info(args, registry=None) -> int:
    if args.top < 0:
        raise AmrbenchError(f"--top {args.top}: give a count >= 0")
    scan = scan_cache(args.cache)
    lines = _where(scan) + [""]
    kinds = scan.kinds()
    if not kinds:
        lines.append("the cache is empty")
    else:
        width = max(len("kind"), *map(len, kinds))
        lines.append(f"{'kind':<{width}}  {'entries':>7}  {'size':>8}")
        for kind, (count, size) in kinds.items():
            lines.append(f"{kind:<{width}}  {count:>7}  {human_size(size):>8}")
        lines.append(f"{'total':<{width}}  {len(scan.entries):>7}  {human_size(scan.size):>8}")
        if args.top:
            lines += ["", "largest entries (size, age, kind/file):"]
            lines += [_entry_line(e) for e in select_entries(scan)[:args.top]]
    if scan.skipped:
        lines += ["", f"left alone: {len(scan.skipped)} path(s) that are not cache files or lead outside the cache "
                      "(`amrbench cache clean` never removes them)"]
    print("\n".join(lines))
    return 0


def cmd_clean(args, registry=None) -> int:
    if args.older_than is not None and not args.older_than >= 0:
        raise AmrbenchError(f"--older-than {args.older_than}: give a number of days >= 0")
    scan = scan_cache(args.cache)
    if args.kind is not None and not known_kind(scan, args.kind):
        present = sorted({e.kind.split("/", 1)[-1] for e in scan.entries if e.kind != DATASETS})
        choices = [DATASETS, ARTIFACTS, *present]
        raise AmrbenchError(f"--kind {args.kind!r}: nothing of that kind in the cache{did_you_mean(args.kind, choices)}")
    chosen = select_entries(scan, args.kind, args.older_than)
    total = human_size(sum(e.size for e in chosen))
    if not chosen:
        print("nothing to remove: no cache entry matches")
        return 0
    if not args.yes:
        print(f"would remove {len(chosen)} entr{'y' if len(chosen) == 1 else 'ies'} ({total}):")
        print("\n".join(_entry_line(e) for e in chosen))
        print("nothing removed; rerun with --yes to remove them")
        return 0
    left = [(entry, why) for entry in chosen for why in [remove_entry(entry)] if why]
    removed = [e for e in chosen if all(e is not other for other, _ in left)]
    print(f"removed {len(removed)} entr{'y' if len(removed) == 1 else 'ies'} "
          f"({human_size(sum(e.size for e in removed))})")
    for entry, why in left:
        print(f"  left {entry.kind}/{entry.name}: {why}")
    return 0
