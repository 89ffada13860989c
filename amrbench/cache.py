"""Where generated datasets and shared artifacts live on disk (``AMRBENCH_CACHE``), and
what is there: entries by kind, their sizes, and their safe removal.

Layout: ``<cache root>/datasets/<name>-<16 hex>.h5`` (``amrbench.data.store``) and
``<artifact root>/<kind>/<24 hex>.pt`` with ``.sha256`` and ``.log`` beside it
(``amrbench.store.ArtifactCache``; the artifact root is ``<cache root>/artifacts`` unless
``--cache`` names another folder). Each file may have a ``.lock`` and temporary
``.tmp`` companions. An *entry* is a data file with its companions. Only files named
this way count: anything else in those folders, symbolic links, and paths that resolve
outside their root are listed as skipped and never removed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

DATASETS = "datasets"
ARTIFACTS = "artifacts"
_DATASET_FILE = re.compile(r"(?P<stem>.+-[0-9a-f]{16}\.h5)(?:\.lock|\.[^.]+\.tmp)?")
_ARTIFACT_FILE = re.compile(r"(?P<stem>[0-9a-f]{24})(?:\.pt(?:\.lock|\.tmp\d+)?|\.sha256(?:\.tmp\d+)?|\.log)")
DAY_S = 86400.0


def cache_root() -> Path:
    root = os.environ.get("AMRBENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "amrbench")
    return Path(root)


def artifact_root(cache: Optional[os.PathLike] = None) -> Path:
    """The artifact cache: ``cache`` (``--cache``) or ``<cache root>/artifacts``."""
    return Path(cache) if cache else cache_root() / ARTIFACTS


def stable_hash(config, length: int = 16) -> str:
    """sha256 of canonical JSON: key order, spacing and int/float spelling never matter."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def human_size(size: int) -> str:
    """Bytes in decimal units with three significant digits: 950 B, 21.8 MB, 218 MB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 999.5 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 99.95 else f"{value:.3g} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def shown_path(path: os.PathLike) -> str:
    """``path`` with the home folder written ``~``."""
    text, home = str(path), os.path.expanduser("~")
    if home not in ("", "/", "~") and (text == home or text.startswith(home.rstrip(os.sep) + os.sep)):
        return "~" + text[len(home.rstrip(os.sep)):]
    return text


@dataclass
class CacheEntry:
    """One cached dataset or artifact: its data file and companions."""

    kind: str  # "datasets" or "artifacts/<kind>"
    name: str  # the data file's name
    root: Path  # the resolved root every file must stay inside
    files: list = field(default_factory=list)
    size: int = 0
    mtime: float = 0.0  # the newest file's modification time

    def add(self, path: Path, stat: os.stat_result) -> None:
        self.files.append(path)
        self.size += stat.st_size
        self.mtime = max(self.mtime, stat.st_mtime)

    def age_days(self, now: Optional[float] = None) -> float:
        return ((time.time() if now is None else now) - self.mtime) / DAY_S


@dataclass
class CacheScan:
    """What the cache holds: its entries and the paths left alone (with why)."""

    datasets_dir: Path
    artifacts_dir: Path
    entries: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (path, why)

    def kinds(self) -> dict:
        """{kind: (entries, bytes)}, datasets first, then artifact kinds by name."""
        out: dict = {}
        for entry in sorted(self.entries, key=lambda e: (e.kind != DATASETS, e.kind)):
            count, size = out.get(entry.kind, (0, 0))
            out[entry.kind] = (count + 1, size + entry.size)
        return out

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)


def scan_cache(cache: Optional[os.PathLike] = None) -> CacheScan:
    """Every entry under the dataset cache and the artifact cache (``--cache``)."""
    datasets_dir, artifacts_dir = cache_root() / DATASETS, artifact_root(cache)
    scan = CacheScan(datasets_dir, artifacts_dir)
    _collect(scan, datasets_dir, DATASETS, _DATASET_FILE, _resolved(cache_root()))
    artifacts_real = _resolved(artifacts_dir)
    for folder in _subfolders(scan, artifacts_dir, artifacts_real):
        _collect(scan, folder, f"{ARTIFACTS}/{folder.name}", _ARTIFACT_FILE, artifacts_real)
    return scan


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, root: Path) -> bool:
    """``path`` (not a symbolic link itself) resolves to a place under ``root``."""
    if path.is_symlink():
        return False
    real = _resolved(path)
    return real != root and real.is_relative_to(root)


def _subfolders(scan: CacheScan, folder: Path, root: Path) -> Iterator[Path]:
    for item in _listing(folder):
        if item.is_dir(follow_symlinks=False) and _inside(Path(item.path), root):
            yield Path(item.path)
        else:
            scan.skipped.append((Path(item.path), "not an artifact kind folder"))


def _listing(folder: Path) -> list:
    try:
        with os.scandir(folder) as items:
            return sorted(items, key=lambda item: item.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _collect(scan: CacheScan, folder: Path, kind: str, pattern: re.Pattern, root: Path) -> None:
    """Group the files of ``folder`` into entries of ``kind``; record the others as skipped."""
    entries: dict = {}
    for item in _listing(folder):
        path, match = Path(item.path), pattern.fullmatch(item.name)
        if match is None or not item.is_file(follow_symlinks=False):
            scan.skipped.append((path, "not a cache file"))
        elif not _inside(path, root):
            scan.skipped.append((path, f"leads outside {root}"))
        else:
            stem = match["stem"]
            name = stem if kind == DATASETS else stem + ".pt"
            entries.setdefault(stem, CacheEntry(kind, name, root)).add(path, item.stat(follow_symlinks=False))
    scan.entries.extend(entries.values())


def select_entries(scan: CacheScan, kind: Optional[str] = None, older_than_days: Optional[float] = None,
                   now: Optional[float] = None) -> list:
    """The entries of ``kind`` ("datasets", "artifacts", an artifact kind with or without
    its "artifacts/" prefix; None: all) whose newest file is older than the given days."""
    chosen = scan.entries
    if kind is not None:
        chosen = [e for e in chosen if _kind_matches(e.kind, kind)]
    if older_than_days is not None:
        chosen = [e for e in chosen if e.age_days(now) > older_than_days]
    return sorted(chosen, key=lambda e: -e.size)


def _kind_matches(entry_kind: str, wanted: str) -> bool:
    wanted = wanted.strip("/")
    return entry_kind == wanted or entry_kind == f"{ARTIFACTS}/{wanted}" or (
        wanted == ARTIFACTS and entry_kind.startswith(ARTIFACTS + "/"))


def known_kind(scan: CacheScan, kind: str) -> bool:
    return kind.strip("/") in (DATASETS, ARTIFACTS) or any(_kind_matches(e.kind, kind) for e in scan.entries)


def remove_entry(entry: CacheEntry) -> Optional[str]:
    """Delete the entry's files; None when done, else why it was left (in use: another
    process holds its lock; or a file no longer resolves inside the root)."""
    from filelock import FileLock, Timeout

    if not all(_inside(path, entry.root) for path in entry.files):
        return f"a file leads outside {entry.root}"
    locks = [p for p in entry.files if p.name.endswith(".lock")]
    held = []
    for path in locks:
        lock = FileLock(str(path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            for other in held:
                other.release()
            return "in use (another process holds its lock)"
        held.append(lock)
    try:
        for path in entry.files:
            if path not in locks:
                _unlink(path)
    finally:
        for lock in held:
            lock.release()
    for path in locks:
        _unlink(path)
    return None


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
