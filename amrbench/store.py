"""Append-only result records (JSONL) and the artifact cache.

Records: one JSON object per line in ``records.jsonl``, appended under a file lock in a
single write, flushed and fsynced, never rewritten. A torn last line (a crash mid-write)
is detected, moved aside to ``records.jsonl.torn`` and ignored with a warning; a corrupt
line in the middle is an error naming the line.

Artifacts: expensive shared results (training dynamics, trained models, condensed sets)
saved with ``torch.save`` under ``<cache>/<kind>/<hash>.pt``, computed once under a file
lock so concurrent workers wait for the first instead of recomputing.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
from filelock import FileLock

from amrbench.api import AmrbenchError
from amrbench.cache import cache_root, stable_hash

SCHEMA_VERSION = 1


class RecordStore:
    def __init__(self, path):
        self.path = Path(path)
        self.lock = FileLock(str(self.path) + ".lock")

    def _repair_torn_tail(self) -> None:
        """Cut a trailing fragment without newline (a crash mid-append) so the next
        record does not glue onto it; keep the fragment in ``.torn`` for inspection."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            if data.endswith(b"\n"):
                return
            cut = data.rfind(b"\n") + 1
            with open(str(self.path) + ".torn", "ab") as torn:
                torn.write(data[cut:] + b"\n")
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        warnings.warn(f"{self.path}: ignored a truncated last record (crash mid-write); moved it to {self.path}.torn")

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=True, default=str) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            self._repair_torn_tail()
            with open(self.path, "ab") as f:
                f.write(line.encode())
                f.flush()
                os.fsync(f.fileno())

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        records = []
        lines = self.path.read_bytes().split(b"\n")
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                records.append(json.loads(raw))
            except json.JSONDecodeError:
                if number == len(lines):  # last line without newline: a torn tail
                    warnings.warn(f"{self.path}:{number}: ignored a truncated last record (crash mid-write)")
                    continue
                raise AmrbenchError(f"{self.path}:{number}: corrupt record (not JSON); remove or repair that line") from None
        return records

    def latest(self) -> dict:
        """The last record per key, preferring an ``ok`` one over later failures."""
        out: dict = {}
        for record in self.read():
            key = record.get("key")
            if key is None:
                continue
            if record.get("status") == "ok" or out.get(key, {}).get("status") != "ok":
                out[key] = record
        return out

    def done_keys(self) -> set:
        return {k for k, r in self.latest().items() if r.get("status") == "ok"}


class ArtifactCache:
    def __init__(self, root: Optional[os.PathLike] = None):
        self.root = Path(root) if root else cache_root() / "artifacts"

    def path(self, kind: str, config: Any) -> Path:
        return self.root / kind / f"{stable_hash(config, 24)}.pt"

    def get_or_compute(self, kind: str, config: Any, compute: Callable[[], Any]) -> Any:
        path = self.path(kind, config)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if path.exists():
                try:
                    return torch.load(path, map_location="cpu", weights_only=False)
                except Exception:
                    warnings.warn(f"{path}: unreadable cached artifact; recomputing it")
            value = compute()
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save(value, tmp)
            os.replace(tmp, path)
            with open(path.with_suffix(".log"), "a") as log:
                log.write(json.dumps({"computed_by_pid": os.getpid(), "config": config}, default=str) + "\n")
            return value

    def computations(self, kind: str) -> int:
        """How many times artifacts of this kind were computed (for tests and reports)."""
        folder = self.root / kind
        if not folder.exists():
            return 0
        return sum(len(p.read_text().splitlines()) for p in folder.glob("*.log"))
