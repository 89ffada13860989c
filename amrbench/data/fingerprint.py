"""Content fingerprints of dataset files, folded into the keys of the cells that read them.

A file-backed dataset's parameters hold only a path; a cell keyed by the path alone would
be reused after the file at that path changed. :func:`file_fingerprint` identifies the
contents instead:

- files up to FULL_HASH_BYTES (256 MiB): the SHA-256 of the whole file: exact, and
  independent of where the file lies or when it was copied;
- larger files (RML2018.01a is 20 GB): the size, the modification time (ns) and the
  SHA-256 of SAMPLE_BLOCKS blocks of 1 MiB at fixed offsets spread over the file (the
  first and the last included). Hashing 20 GB on every suite load would take minutes;
  this takes milliseconds and catches any ordinary rewrite (size, mtime) and any
  same-size, same-mtime change that touches a sampled block. Copying such a file without
  keeping its mtime (``cp`` without ``-p``) gives new cells: stale numbers are never
  passed off as current, at the price of a rerun.

Fingerprints are memoised within a process per (path, size, mtime, inode, ctime): any
write or ``touch`` changes the ctime, so a memoised fingerprint is never stale beyond
the filesystem's timestamp resolution.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Optional

FULL_HASH_BYTES = 256 << 20
SAMPLE_BLOCKS = 16
SAMPLE_BLOCK_BYTES = 1 << 20
_READ_BYTES = 8 << 20


def file_fingerprint(path) -> dict:
    """The content fingerprint of the file ``path`` (see the module docstring)."""
    path = Path(path).expanduser().resolve()
    stat = path.stat()
    return dict(_fingerprint(str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns))


@lru_cache(maxsize=64)
def _fingerprint(path: str, size: int, mtime_ns: int, inode: int, ctime_ns: int) -> tuple:
    if size <= FULL_HASH_BYTES:
        return (("sha256", _full_digest(path)),)
    return (("size", size), ("mtime_ns", mtime_ns), ("sampled_sha256", _sampled_digest(path, size)))


def _full_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_READ_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def sample_offsets(size: int) -> list:
    """SAMPLE_BLOCKS offsets evenly spread from the first to the last block of a file."""
    span = max(0, size - SAMPLE_BLOCK_BYTES)
    return [span * i // (SAMPLE_BLOCKS - 1) for i in range(SAMPLE_BLOCKS)]


def _sampled_digest(path: str, size: int) -> str:
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        for offset in sample_offsets(size):
            f.seek(offset)
            digest.update(f.read(SAMPLE_BLOCK_BYTES))
    return digest.hexdigest()


# --------------------------------------------------------------------------- stored cells
def _source(dataset: dict) -> Optional[tuple]:
    """(dataset name, path parameter) of a file-backed dataset config, else None."""
    path = (dataset.get("params") or {}).get("path")
    return (dataset.get("name"), str(path)) if path else None


def changed_file_note(cells: list, records) -> Optional[str]:
    """Why stored cells are not reused: the stored records that read the same file path
    as ``cells`` (the cells still to run) but whose fingerprint differs (or that predate
    fingerprints). One line, or None when there are none."""
    current = {}
    for cell in cells:
        dataset = cell["config"]["dataset"]
        if dataset.get("fingerprint") is not None and _source(dataset):
            current[_source(dataset)] = dataset["fingerprint"]
    stale: dict = {}
    for record in records:
        dataset = (record.get("config") or {}).get("dataset") or {}
        source = _source(dataset)
        if source in current and dataset.get("fingerprint") != current[source]:
            stale[source] = stale.get(source, 0) + 1
    if not stale:
        return None
    (name, path), count = next(iter(stale.items()))
    others = f" (and {len(stale) - 1} other file(s))" if len(stale) > 1 else ""
    return (f"{count} stored cell(s) of dataset {name!r} read {path}{others} when it held other contents (its "
            f"content fingerprint differs): they stay in the store, but this run's cells are keyed by the file's "
            f"current contents and run anew")
