"""On-disk cache of SignalSets (HDF5) shared by the dataset plugins.

A cached set lives at ``cache_root()/datasets/<name>-<stable_hash(key)>.h5`` in the
generic ``file`` dataset format (datasets ``x`` (N, 2, L) float32, ``y`` (N,) int64,
``snr`` (N,) float32, ``classes`` strings), so a cache file is also a valid input of the
``file`` dataset plugin. Files are written to a temporary name in the same folder and
moved into place with ``os.replace``, so a reader never sees a half-written file; a lock
file keeps two processes from generating the same set twice; a corrupt file is
regenerated. The first set a process writes is announced on stderr (where, how big),
once per process.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Callable

from amrbench.api import AmrbenchError, SignalSet
from amrbench.cache import cache_root, stable_hash

log = logging.getLogger("amrbench.data")
FORMAT = "amrbench-signalset"


def datasets_dir() -> Path:
    return cache_root() / "datasets"


def cache_path(name: str, key: dict) -> Path:
    """Where the set identified by ``key`` (any JSON-able config) is cached."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return datasets_dir() / f"{safe}-{stable_hash(key)}.h5"


def write_signalset(path, data: SignalSet) -> None:
    """Write ``data`` atomically (temporary file + os.replace) in the generic format."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("x", data=data.x.cpu().numpy())
            f.create_dataset("y", data=data.y.cpu().numpy())
            f.create_dataset("snr", data=data.snr.cpu().numpy())
            f.create_dataset("classes", data=[str(c) for c in data.classes], dtype=h5py.string_dtype())
            f.attrs["format"] = FORMAT
            f.attrs["name"] = data.name
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_signalset(path, snr=None, allow_nonfinite: bool = False) -> SignalSet:
    """Read a file written by :func:`write_signalset` (only rows with lo <= snr <= hi when
    ``snr`` is given); AmrbenchError if it is unreadable or fails the loaders' checks."""
    from amrbench.data.loaders import read_generic

    return read_generic(path, snr=snr, allow_nonfinite=allow_nonfinite)


def cached_signalset(path, make: Callable[[], SignalSet], snr=None, allow_nonfinite: bool = False) -> SignalSet:
    """The set cached at ``path``, or ``make()`` written there first (under a file lock,
    so concurrent processes generate it once); a corrupt cache file is regenerated.
    ``snr`` = (lo, hi) returns only those rows (the whole set is cached);
    ``allow_nonfinite`` admits NaN/Inf samples when reading the cache (for sets made
    with that loader parameter, which must then be part of the cache key)."""
    from filelock import FileLock

    from amrbench.data.splits import filter_snr

    path = Path(path)
    found = _try_read(path, snr, allow_nonfinite)
    if found is not None:
        return found
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        found = _try_read(path, snr, allow_nonfinite)
        if found is not None:
            return found
        data = make()
        write_signalset(path, data)
        _note_first_write(path, data.name)
        return filter_snr(data, snr)


_noted_write = False


def _note_first_write(path: Path, name: str) -> None:
    """Say once per process where a generated set was cached and how big it is: it can
    take hundreds of MB of disk the user never asked for by name."""
    global _noted_write
    if _noted_write:
        return
    _noted_write = True
    from amrbench import progress
    from amrbench.cache import human_size, shown_path

    progress.note(f"amrbench: cached {name} ({human_size(path.stat().st_size)}) in {shown_path(path.parent)}; "
                  "`amrbench cache info` shows the cache")


def _try_read(path: Path, snr, allow_nonfinite: bool):
    if not path.exists():
        return None
    try:
        return read_signalset(path, snr, allow_nonfinite)
    except AmrbenchError as exc:
        log.warning("regenerating corrupt dataset cache file: %s", exc)
        return None
