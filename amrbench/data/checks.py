"""Checks that keep a dataset file from being trusted blindly, shared by the file loaders.

- Declared sizes: an HDF5 dataset, an NPZ member, an .npy file or a pickle value states
  its own size, and a bogus or truncated file can state terabytes. Every declared size is
  checked against what the file can hold (:func:`check_hdf5_storage`,
  :func:`check_npz_members`, :func:`check_npy_file`) and every planned allocation
  against a memory budget (:func:`require_budget`) *before* anything is allocated, so a
  hostile file gives one line instead of a MemoryError or an hours-long read.
- Contents: samples must be finite (:func:`check_finite_rows`, called on every block as
  it is read, so no second full copy), labels integer class indices in range
  (:func:`integer_labels`), one-hot rows exactly one 1 (:func:`onehot_labels`).
"""
from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from amrbench.api import AmrbenchError

BUDGET_ENV = "AMRBENCH_MAX_BYTES"
BUDGET_FRACTION = 0.8   # of the memory available when the data is loaded
NONFINITE_FIX = "fix the file, or set the dataset parameter allow_nonfinite: true to load it anyway"


def _bad(path, message: str):
    raise AmrbenchError(f"{path}: {message}")


def declared_bytes(shape, dtype) -> int:
    """Bytes an array of ``shape`` and ``dtype`` needs (exact Python integers, no overflow)."""
    return math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize


def _size(nbytes: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""


# --------------------------------------------------------------------------- memory budget
def available_memory() -> Optional[int]:
    """Bytes of memory available to new allocations (MemAvailable on Linux, else the
    physical memory), or None when the platform does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget() -> int:
    """The most bytes one dataset load may allocate: ``AMRBENCH_MAX_BYTES`` when set (e.g.
    ``8e9``), else BUDGET_FRACTION of the memory available now."""
    text = os.environ.get(BUDGET_ENV)
    if text:
        try:
            value = int(float(text))
        except ValueError:
            value = -1
        if value <= 0:
            raise AmrbenchError(f"{BUDGET_ENV}={text!r}: must be a positive number of bytes, e.g. 8e9")
        return value
    available = available_memory()
    return int(available * BUDGET_FRACTION) if available else 1 << 62


def require_budget(path, nbytes: int, what: str) -> None:
    """AmrbenchError when loading ``what`` from ``path`` would allocate more than the budget."""
    budget = memory_budget()
    if nbytes > budget:
        _bad(path, f"loading {what} needs {_size(nbytes)}, more than the memory budget of {_size(budget)}; "
                   f"load fewer rows (snr filter, per_class_per_snr, classes) or raise {BUDGET_ENV} "
                   f"if the machine has the memory")


# --------------------------------------------------------------------------- declared sizes
def _compressed(plist) -> bool:
    """Whether a dataset creation property list has a filter that compresses (anything
    but shuffle and fletcher32)."""
    import h5py

    passive = {h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32}
    return any(plist.get_filter(i)[0] not in passive for i in range(plist.get_nfilters()))


def check_hdf5_storage(ds, path) -> int:
    """The declared bytes of the h5py dataset ``ds``, after checking the file backs them:
    a contiguous (or compact, or chunked uncompressed) dataset cannot declare more bytes
    than it stores or than the file holds; a chunked one must have every chunk written
    (an unwritten chunk reads as fill values: the shape claims rows the file lacks).
    Only a compressed chunked dataset may exceed the file size; what is read from it is
    bound by :func:`require_budget`. Virtual and external datasets are bound by the
    budget alone."""
    import h5py

    declared = declared_bytes(ds.shape or (), ds.dtype)
    plist = ds.id.get_create_plist()
    if ds.is_virtual or plist.get_external_count():
        return declared
    name = ds.name
    if plist.get_layout() == h5py.h5d.CHUNKED:
        expected = math.prod(-(-int(n) // int(c)) for n, c in zip(ds.shape, ds.chunks))
        written = ds.id.get_num_chunks()
        if written < expected:
            _bad(path, f"dataset {name!r} declares shape {tuple(ds.shape)} but only {written} of its {expected} "
                       f"chunks hold data: the file is truncated or declares rows it does not contain")
        if not _compressed(plist) and declared > os.path.getsize(ds.file.filename):
            _bad(path, f"dataset {name!r} declares {_size(declared)} uncompressed, more than the whole file")
        return declared
    file_size = os.path.getsize(ds.file.filename)
    stored = ds.id.get_storage_size()
    if declared > file_size or stored < declared:
        _bad(path, f"dataset {name!r} declares shape {tuple(ds.shape)} ({_size(declared)}) but the file stores "
                   f"{_size(stored)} of it ({_size(file_size)} in all): the file is truncated or its shape is bogus")
    return declared


def _npy_header(f, path, where: str) -> tuple:
    """(shape, dtype) from the header of an .npy stream ``f``."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(f)
        reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, dtype = reader(f)
    except (ValueError, OSError, EOFError) as exc:
        _bad(path, f"{where}: not an .npy array ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
    return shape, dtype


def check_npz_members(path, names) -> int:
    """Total declared bytes of the arrays ``names`` of the NPZ archive ``path`` (each is
    loaded whole), read from their .npy headers before any is loaded: a stored
    (uncompressed) member cannot declare more than the archive holds, and no member
    more than its own uncompressed size."""
    path = Path(path)
    archive = path.stat().st_size
    total = 0
    with zipfile.ZipFile(path) as z:
        for name in names:
            info = z.getinfo(name + ".npy")
            with z.open(info) as f:
                shape, dtype = _npy_header(f, path, f"array {name!r}")
            declared = declared_bytes(shape, dtype)
            limit = min(info.file_size, archive) if info.compress_type == zipfile.ZIP_STORED else info.file_size
            if declared > limit:
                _bad(path, f"array {name!r} declares shape {tuple(shape)} ({_size(declared)}) but its member holds "
                           f"{_size(info.file_size)}: the file is truncated or its header is bogus")
            total += declared
    return total


def check_npy_file(path) -> int:
    """Declared bytes of the .npy file ``path`` after checking the file holds them."""
    path = Path(path)
    with open(path, "rb") as f:
        shape, dtype = _npy_header(f, path, "header")
        left = path.stat().st_size - f.tell()
    declared = declared_bytes(shape, dtype)
    if declared > left:
        _bad(path, f"declares shape {tuple(shape)} ({_size(declared)}) but holds {_size(left)} of data: "
                   "the file is truncated or its header is bogus")
    return declared


# --------------------------------------------------------------------------- contents
def check_finite_rows(rows: np.ndarray, row_numbers, path, what: str = "signal row") -> None:
    """AmrbenchError naming the first row of ``rows`` (a block just read; ``row_numbers``
    maps its positions to the file's row numbers) that holds a NaN or an infinity."""
    if rows.dtype.kind not in "fc" or np.isfinite(rows).all():
        return
    bad = np.flatnonzero(~np.isfinite(rows.reshape(len(rows), -1)).all(axis=1))[0]
    _bad(path, f"{what} {row_numbers[bad]} holds a non-finite sample (NaN or Inf); {NONFINITE_FIX}")


def integer_labels(values: np.ndarray, num_classes: int, path, what: str) -> np.ndarray:
    """``values`` as int64 class indices, or AmrbenchError naming the first row whose
    ``what`` is not an integer (a float such as 1.5, NaN) or lies outside
    0..num_classes-1. Float arrays holding whole numbers are accepted (Sig2019 stores
    its labels as float)."""
    values = np.asarray(values)
    if values.dtype.kind not in "iuf":
        _bad(path, f"{what} must be integer class indices, got dtype {values.dtype}")
    if values.dtype.kind == "f":
        whole = np.isfinite(values) & (values == np.round(values))
        if not whole.all():
            first = int(np.flatnonzero(~whole)[0])
            _bad(path, f"{what} in row {first} is {values[first]:g}, not an integer class index")
    outside = (values < 0) | (values >= num_classes)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        _bad(path, f"{what} in row {first} is {values[first]:g}, outside 0..{num_classes - 1} "
                   f"(one index per class name)")
    return values.astype(np.int64)


def onehot_labels(block: np.ndarray, first_row: int, path, what: str = "Y") -> np.ndarray:
    """Class indices of a block of one-hot rows, or AmrbenchError naming the first row
    that is not exactly one 1 among 0s (all zeros, NaN, two hot entries, soft values)."""
    valid = ((block == 0) | (block == 1)).all(axis=1) & (block.sum(axis=1) == 1)
    if not valid.all():
        bad = int(np.flatnonzero(~valid)[0])
        _bad(path, f"{what} row {first_row + bad} is not one-hot (exactly one 1, the rest 0): "
                   f"{np.array2string(block[bad], threshold=8)}")
    return np.argmax(block, axis=1)
