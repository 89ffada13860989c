"""Readers of real AMR dataset files, shared by the file dataset plugins.

Every reader turns an unreadable, truncated or mis-shaped file into a one-line
:class:`AmrbenchError` naming the file and what was expected. Large files are read
lazily: labels and SNRs first, then only the kept signal rows, in sorted blocks.
Before anything is allocated, declared sizes are checked against the file and the memory
budget; as rows are read, samples must be finite (unless ``allow_nonfinite``) and labels
integer class indices in range (:mod:`amrbench.data.checks`).

- RML2016.10a/b pickles: :func:`load_restricted_pickle` uses :class:`RestrictedUnpickler`,
  which admits only numpy's array-reconstruction globals; anything else is refused.
- RML2018.01a HDF5: :func:`read_rml2018`.
- Sig2019-12 (.npz / .npy pair / HDF5): :func:`read_sig2019`.
- The generic amrbench format (HDF5 or NPZ): :func:`read_generic`.
"""
from __future__ import annotations

import codecs
import math
import pickle
import pickletools
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import numpy as np

from amrbench.api import AmrbenchError, SignalSet
from amrbench.data import checks
from amrbench.data.splits import random_rank_in_groups

RML2018_CLASSES_FIXED = [
    "OOK", "4ASK", "8ASK", "BPSK", "QPSK", "8PSK", "16PSK", "32PSK", "16APSK", "32APSK", "64APSK",
    "128APSK", "16QAM", "32QAM", "64QAM", "128QAM", "256QAM", "AM-SSB-WC", "AM-SSB-SC", "AM-DSB-WC",
    "AM-DSB-SC", "FM", "GMSK", "OQPSK"]
RML2018_CLASSES_DISTRIBUTED = [
    "32PSK", "16APSK", "32QAM", "FM", "GMSK", "32APSK", "OQPSK", "8ASK", "BPSK", "8PSK", "AM-SSB-SC",
    "4ASK", "16PSK", "64APSK", "128QAM", "128APSK", "AM-DSB-SC", "AM-SSB-WC", "64QAM", "QPSK", "256QAM",
    "AM-DSB-WC", "OOK", "16QAM"]
SIG2019_CLASSES = ["BPSK", "QPSK", "8PSK", "OQPSK", "4PAM", "8PAM", "16QAM", "32QAM", "64QAM",
                   "2FSK", "4FSK", "8FSK"]
BLOCK_BYTES = 16 << 20   # signal rows are read in blocks of about this size
LABEL_CHUNK = 1 << 16    # label/SNR rows read at a time
LABEL_ROW_BYTES = 40     # per file row: label, SNR, masks and indices kept while choosing rows


# --------------------------------------------------------------------------- errors
def require_file(path, dataset: str, what: str) -> Path:
    """The existing file ``path`` of parameter ``path`` of ``dataset``, or AmrbenchError."""
    if path is None or str(path) == "":
        raise AmrbenchError(f"dataset {dataset!r}: parameter 'path' is required ({what})")
    found = Path(str(path)).expanduser()
    if not found.is_file():
        raise AmrbenchError(f"dataset {dataset!r}: {found}: no such file (expected {what})")
    return found


def path_fingerprint(path, dataset: str, what: str) -> dict:
    """The content fingerprint (:func:`amrbench.data.fingerprint.file_fingerprint`) of the
    file a loader's parameter names; AmrbenchError when it is missing or unreadable."""
    from amrbench.data.fingerprint import file_fingerprint

    found = require_file(path, dataset, what)
    try:
        return file_fingerprint(found)
    except OSError as exc:
        raise AmrbenchError(f"dataset {dataset!r}: {found}: cannot read ({exc.strerror or exc}); "
                            "check the file's permissions") from None


@contextmanager
def reading(path, expected: str):
    """Turn any failure while reading ``path`` into a one-line AmrbenchError."""
    try:
        yield
    except (AmrbenchError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # h5py, pickle, zipfile and numpy raise many types
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise AmrbenchError(f"{path}: cannot read {expected} ({type(exc).__name__}: {reason})") from None


def _bad(path, message: str):
    raise AmrbenchError(f"{path}: {message}")


# --------------------------------------------------------------------------- pickles
def _latin1_encode(text, encoding="latin1"):
    if str(encoding).lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _check_array_size(shape, dtype, limit: int, path) -> None:
    """Refuse an array whose declared size exceeds ``limit`` (the pickle's size: its data
    must come from the file) before numpy allocates it."""
    try:
        dims = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
        nbytes = math.prod(dims) * np.dtype(dtype).itemsize
    except (TypeError, ValueError) as exc:
        raise pickle.UnpicklingError(f"bad array shape or dtype ({exc})") from None
    if nbytes > limit:
        raise AmrbenchError(f"{path}: cannot read a pickle of numpy arrays (an array declares shape {dims}, "
                            f"{nbytes} bytes, more than the file's {limit}: the file is bogus or hostile)")


def _allowed_globals(limit: int, path) -> dict:
    """The globals a dataset pickle may name; the array constructors refuse declared
    sizes above ``limit`` bytes."""
    from numpy._core import multiarray

    def ndarray(shape, dtype=float, *args, **kwargs):
        _check_array_size(shape, dtype, limit, path)
        return np.ndarray(shape, dtype, *args, **kwargs)

    def reconstruct(subtype, shape, dtype):
        _check_array_size(shape, dtype, limit, path)
        return multiarray._reconstruct(np.ndarray if subtype is ndarray else subtype, shape, dtype)

    return {("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy", "ndarray"): ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): _latin1_encode}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that builds plain containers and numpy arrays only: ``find_class``
    admits numpy's array reconstruction helpers (and a latin-1-only ``_codecs.encode``
    for protocol 2 bytes) and refuses every other global with an AmrbenchError. Arrays
    may not declare more bytes than ``limit`` (by default the file's size)."""

    def __init__(self, file, path, limit: Optional[int] = None):
        super().__init__(file, encoding="latin1")
        self.path = path
        self.allowed = _allowed_globals(Path(path).stat().st_size if limit is None else limit, path)

    def find_class(self, module, name):
        found = self.allowed.get((module, name))
        if found is None:
            raise AmrbenchError(f"{self.path}: refusing pickle global {module}.{name} "
                                "(only numpy arrays may be loaded from a dataset pickle)")
        return found

    def persistent_load(self, pid):
        raise AmrbenchError(f"{self.path}: refusing pickle persistent id {pid!r}")


# length-prefixed pickle arguments: how the length is stored
_LENGTH_PREFIXES = {pickletools.TAKEN_FROM_ARGUMENT1: "<B", pickletools.TAKEN_FROM_ARGUMENT4: "<i",
                    pickletools.TAKEN_FROM_ARGUMENT4U: "<I", pickletools.TAKEN_FROM_ARGUMENT8U: "<Q"}


def _read_exactly(f, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise pickle.UnpicklingError("the pickle ends inside an opcode (truncated file)")
    return data


def scan_pickle(f, path) -> None:
    """Walk the opcodes of the pickle file ``f`` (then rewind it) without building
    anything, refusing any declared length (BINBYTES8, BINUNICODE8, FRAME, ...) beyond
    the file's end: the C unpickler allocates a declared length before reading it, so a
    2**60-byte claim would be a MemoryError, not an error message. Length-prefixed values
    are skipped with a seek, so the scan costs a fraction of the unpickling."""
    size = Path(path).stat().st_size

    def require(n: int) -> None:
        left = size - f.tell()
        if not 0 <= n <= left:
            raise AmrbenchError(f"{path}: cannot read a pickle of numpy arrays (a value at byte {f.tell()} "
                                f"declares {n} bytes, more than the {left} left in the file: the file is "
                                "truncated or hostile)")

    while True:
        code = f.read(1)
        opcode = pickletools.code2op.get(code.decode("latin-1"))
        if opcode is None:
            raise pickle.UnpicklingError(f"unknown opcode {code!r}" if code else "the pickle ends before its STOP")
        arg = opcode.arg
        if arg is not None and arg.n in _LENGTH_PREFIXES:
            fmt = _LENGTH_PREFIXES[arg.n]
            length = struct.unpack(fmt, _read_exactly(f, struct.calcsize(fmt)))[0]
            require(length)
            f.seek(length, 1)
        elif arg is not None and arg.n == pickletools.UP_TO_NEWLINE and arg.name != "stringnl_noescape_pair":
            f.readline()  # one line of protocol 0 text: skipped, not decoded
        elif arg is not None:
            value = arg.reader(f)
            if opcode.name == "FRAME":
                require(value)
        if opcode.name == "STOP":
            break
    f.seek(0)


def load_restricted_pickle(path):
    """Unpickle ``path`` with :class:`RestrictedUnpickler`, after :func:`scan_pickle` and a
    memory-budget check (the arrays and their float32 copy take about twice the file)."""
    checks.require_budget(path, 2 * Path(path).stat().st_size, "the pickle's arrays")
    with reading(path, "a pickle of numpy arrays"), open(path, "rb") as f:
        scan_pickle(f, path)
        return RestrictedUnpickler(f, path).load()


def _check_key_dict(table, path) -> None:
    if not isinstance(table, dict) or not table:
        _bad(path, f"expected a non-empty dict {{(modulation, snr): array (N, 2, L)}}, got {type(table).__name__}")
    lengths = set()
    for key, value in table.items():
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], (str, bytes))
                and isinstance(key[1], (int, np.integer, float))):
            _bad(path, f"expected keys (modulation str, snr int), got {key!r}")
        if not (isinstance(value, np.ndarray) and value.ndim == 3 and value.shape[1] == 2
                and value.dtype.kind in "fiu"):
            shape = getattr(value, "shape", type(value).__name__)
            _bad(path, f"expected a float array (N, 2, L) for key {key!r}, got {shape}")
        lengths.add(value.shape[2])
    if len(lengths) != 1:
        _bad(path, f"expected one signal length for all keys, got {sorted(lengths)}")


def key_dict_to_signalset(table: dict, path, name: str, snr: Optional[tuple] = None,
                          per_class_per_snr: Optional[int] = None, seed: int = 0,
                          allow_nonfinite: bool = False) -> SignalSet:
    """RML2016-style {(modulation, snr): (N, 2, L)} -> SignalSet; classes sorted by name,
    rows ordered by (class, snr); optional SNR filter and seeded subsample per key.
    Entries are popped from ``table`` as they are copied, to bound peak memory; each
    key's rows must be finite unless ``allow_nonfinite``."""
    _check_key_dict(table, path)
    for key in [k for k in table if isinstance(k[0], bytes)]:
        table[(key[0].decode("latin1"), key[1])] = table.pop(key)
    classes = sorted({mod for mod, _ in table})
    keys = sorted(k for k in table if snr is None or float(snr[0]) <= float(k[1]) <= float(snr[1]))
    if not keys:
        _bad(path, f"no (modulation, snr) key with snr in {list(snr)}")
    rng = np.random.default_rng(seed)
    picks = {k: _pick(len(table[k]), per_class_per_snr, rng) for k in keys}
    total = sum(len(p) for p in picks.values())
    length = next(iter(table.values())).shape[2]
    x = np.empty((total, 2, length), dtype=np.float32)
    y = np.empty(total, dtype=np.int64)
    snrs = np.empty(total, dtype=np.float32)
    row = 0
    for key in keys:
        rows = table.pop(key)[picks[key]]
        x[row:row + len(rows)] = rows
        if not allow_nonfinite:
            checks.check_finite_rows(x[row:row + len(rows)], picks[key], path, f"key {key!r}: row")
        y[row:row + len(rows)] = classes.index(key[0])
        snrs[row:row + len(rows)] = float(key[1])
        row += len(rows)
    return SignalSet(x, y, snrs, classes, name=name)


def _pick(size: int, per: Optional[int], rng) -> np.ndarray:
    if per is None or per >= size:
        return np.arange(size)
    return np.sort(rng.choice(size, per, replace=False))


# --------------------------------------------------------------------------- HDF5 helpers
def open_hdf5(path):
    import h5py

    with reading(path, "an HDF5 file"):
        return h5py.File(path, "r")


def hdf5_dataset(f, path, names, expected: str):
    """The first of ``names`` present in the open HDF5 file ``f``, once the file is known
    to back its declared size (:func:`checks.check_hdf5_storage`)."""
    import h5py

    for name in names:
        if name in f:
            found = f[name]
            if not isinstance(found, h5py.Dataset):
                _bad(path, f"{name!r} is a group, not a dataset (expected {expected})")
            checks.check_hdf5_storage(found, path)
            return found
    _bad(path, f"missing dataset {names[0]!r} (expected {expected}); found {sorted(f.keys())}")


def output_bytes(rows: int, length: int) -> int:
    """Bytes of the float32 (rows, 2, length) array a loader fills."""
    return rows * 2 * length * 4


def read_chunked(dataset, chunk: Optional[int] = None):
    """Yield (first row, block) for consecutive row blocks of ``dataset`` (h5py or numpy)
    of ``chunk`` rows (default LABEL_CHUNK)."""
    chunk = chunk or LABEL_CHUNK
    for lo in range(0, dataset.shape[0], chunk):
        yield lo, np.asarray(dataset[lo:lo + chunk])


def read_rows(dataset, indices: np.ndarray, out: np.ndarray, channel_last: bool, path,
              allow_nonfinite: bool = False) -> None:
    """Copy rows ``indices`` (sorted) of a (N, L, 2), (N, 2, L) or complex (N, L) ``dataset`` into ``out``
    (K, 2, L) float32, reading contiguous blocks of about BLOCK_BYTES. Each block is
    checked for NaN/Inf once converted (a float64 beyond float32's range is an Inf too),
    unless ``allow_nonfinite``; the error names the file's row."""
    row_bytes = max(1, int(np.prod(dataset.shape[1:])) * np.dtype(dataset.dtype).itemsize)
    block = max(1, BLOCK_BYTES // row_bytes)
    bounds = np.flatnonzero(np.diff(indices // block)) + 1
    start = 0
    for part in np.split(indices, bounds):
        if not len(part):
            continue
        lo, hi = int(part[0]), int(part[-1]) + 1
        rows = np.asarray(dataset[lo:hi])[part - lo]
        target = out[start:start + len(part)]
        with np.errstate(over="ignore"):  # an overflow becomes an Inf, which the check names
            target[...] = _as_iq_rows(rows, channel_last)
        if not allow_nonfinite:
            checks.check_finite_rows(target, part, path)
        start += len(part)


def _as_iq_rows(rows: np.ndarray, channel_last: bool) -> np.ndarray:
    """Rows of a file's signal array as (K, 2, L): complex (K, L) split into real and
    imaginary parts, (K, L, 2) transposed, (K, 2, L) as they are."""
    if np.iscomplexobj(rows):
        return np.stack([rows.real, rows.imag], axis=1)
    return rows.transpose(0, 2, 1) if channel_last else rows


def subsample_groups(labels: np.ndarray, snrs: np.ndarray, per: Optional[int], seed: int) -> np.ndarray:
    """Sorted positions keeping at most ``per`` random rows of every (label, snr) group."""
    if per is None:
        return np.arange(len(labels))
    _, rank = random_rank_in_groups(labels, snrs, np.random.default_rng(seed))
    return np.flatnonzero(rank < per)


def _snr_mask(snrs: np.ndarray, snr: Optional[tuple]) -> np.ndarray:
    if snr is None:
        return np.ones(len(snrs), dtype=bool)
    return (snrs >= float(snr[0])) & (snrs <= float(snr[1]))


def _class_mask(labels: np.ndarray, order: list, classes: Optional[list], path) -> tuple:
    """(mask of kept labels, output class names, old label -> new label map)."""
    if classes is None:
        return np.ones(len(labels), dtype=bool), list(order), np.arange(len(order))
    unknown = [c for c in classes if c not in order]
    if unknown:
        _bad(path, f"unknown class {unknown[0]!r}; the file's classes are {', '.join(order)}")
    kept = [c for c in order if c in set(classes)]
    remap = np.array([kept.index(c) if c in kept else -1 for c in order])
    return np.isin(labels, [order.index(c) for c in kept]), kept, remap


# --------------------------------------------------------------------------- RML2018.01a
def _file_class_list(f) -> Optional[list]:
    """The class names an HDF5 file names itself (a ``classes`` dataset or attribute), or None."""
    import h5py

    if "classes" in f and isinstance(f["classes"], h5py.Dataset):
        return _decode_classes(f["classes"][()])
    if "classes" in f.attrs:
        return _decode_classes(f.attrs["classes"])
    return None


def _rml2018_order(f, class_order: str, name: str, notes: list) -> list:
    """The class names of Y's columns: the file's own list when it has one, else the
    24 RML2018.01a names in ``class_order``."""
    own = _file_class_list(f)
    if own is not None:
        notes.append(f"classes: the file's own list of {len(own)} (class_order does not apply)")
        return own
    order = {"fixed": RML2018_CLASSES_FIXED, "distributed": RML2018_CLASSES_DISTRIBUTED}.get(class_order)
    if order is None:
        raise AmrbenchError(f"dataset {name!r}: class_order must be 'fixed' or 'distributed', got {class_order!r}")
    return order


def read_rml2018(path, snr: Optional[tuple] = None, classes: Optional[list] = None,
                 per_class_per_snr: Optional[int] = None, seed: int = 0, class_order: str = "fixed",
                 name: str = "rml2018", allow_nonfinite: bool = False, notes: Optional[list] = None) -> SignalSet:
    """RML2018.01a ``GOLD_XYZ_OSC.0001_1024.hdf5``: X (N, L, 2), one-hot Y (N, C), Z (N, 1)
    SNR. C is the length of the file's own class list (a ``classes`` dataset or
    attribute, said in ``notes``), else the 24 RML2018.01a classes. Declared sizes are
    checked against the file and the memory budget first; labels (every row exactly
    one-hot) and SNRs are read in chunks; then only the kept rows of X."""
    notes = [] if notes is None else notes
    f = open_hdf5(path)
    with f, reading(path, "RML2018.01a HDF5 (X (N, 1024, 2), Y (N, 24), Z (N, 1))"):
        order = _rml2018_order(f, class_order, name, notes)
        x_ds = hdf5_dataset(f, path, ["X"], "X (N, 1024, 2) float32")
        y_ds = hdf5_dataset(f, path, ["Y"], f"one-hot Y (N, {len(order)})")
        z_ds = hdf5_dataset(f, path, ["Z"], "Z (N, 1) SNR")
        n = x_ds.shape[0]
        if x_ds.ndim != 3 or x_ds.shape[2] != 2 or y_ds.shape != (n, len(order)) or z_ds.shape[0] != n:
            _bad(path, f"expected X (N, L, 2), Y (N, {len(order)}), Z (N, 1); got X {x_ds.shape}, "
                       f"Y {y_ds.shape}, Z {z_ds.shape}")
        checks.require_budget(path, n * LABEL_ROW_BYTES, "the labels and SNRs")
        labels = np.concatenate([checks.onehot_labels(c, lo, path) for lo, c in read_chunked(y_ds)]) \
            if n else np.zeros(0, int)
        snrs = np.concatenate([c.reshape(len(c), -1)[:, 0] for _, c in read_chunked(z_ds)]).astype(np.float32) \
            if n else np.zeros(0, np.float32)
        keep_class, kept_classes, remap = _class_mask(labels, order, classes, path)
        candidates = np.flatnonzero(keep_class & _snr_mask(snrs, snr))
        chosen = candidates[subsample_groups(labels[candidates], snrs[candidates], per_class_per_snr, seed)]
        checks.require_budget(path, output_bytes(len(chosen), x_ds.shape[1]), f"{len(chosen)} signals")
        x = np.empty((len(chosen), 2, x_ds.shape[1]), dtype=np.float32)
        read_rows(x_ds, chosen, x, True, path, allow_nonfinite)
    return SignalSet(x, remap[labels[chosen]], snrs[chosen], kept_classes, name=name)


# --------------------------------------------------------------------------- Sig2019-12
SIG2019_LAYOUT = ("X (N, L, 2) or (N, 2, L) with Y (N, 2) = [label, snr]: an .npz with arrays X, Y; "
                  "an HDF5 file with datasets X, Y; or an .npy X file plus `labels` = .npy Y file")


def _open_sig2019(path, labels_path):
    """(X array-like, Y array, the file Y came from, bytes held in memory, closer) of the
    accepted Sig2019 layouts; declared sizes are checked before anything is loaded."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = np.load(path, allow_pickle=False)
        try:
            missing = [k for k in ("X", "Y") if k not in arrays.files]
            if missing:
                _bad(path, f"missing array {missing[0]!r} (expected {SIG2019_LAYOUT}); found {arrays.files}")
            held = checks.check_npz_members(path, ["X", "Y"])
            checks.require_budget(path, held, "arrays X and Y")
            return arrays["X"], np.asarray(arrays["Y"]), path, held, arrays.close
        except BaseException:
            arrays.close()
            raise
    if suffix == ".npy":
        if labels_path is None:
            _bad(path, "an .npy X file needs the `labels` parameter (an .npy file of [label, snr] rows)")
        labels = require_file(labels_path, "sig2019", "an .npy file of [label, snr] rows")
        with reading(labels, "an .npy array (N, 2) of [label, snr]"):
            held = checks.check_npy_file(labels)
            checks.require_budget(labels, held, "the labels")
            y = np.load(labels, allow_pickle=False)
        checks.check_npy_file(path)
        return np.load(path, mmap_mode="r", allow_pickle=False), y, labels, held, lambda: None
    f = open_hdf5(path)
    try:
        x = hdf5_dataset(f, path, ["X", "x"], SIG2019_LAYOUT)
        y_ds = hdf5_dataset(f, path, ["Y", "y"], SIG2019_LAYOUT)
        held = checks.declared_bytes(y_ds.shape, y_ds.dtype)
        checks.require_budget(path, held, "dataset Y")
        return x, np.asarray(y_ds[()]), path, held, f.close
    except BaseException:
        f.close()
        raise


def read_sig2019(path, labels_path=None, snr: Optional[tuple] = None, class_names: Optional[list] = None,
                 per_class_per_snr: Optional[int] = None, seed: int = 0, name: str = "sig2019",
                 allow_nonfinite: bool = False) -> SignalSet:
    """Sig2019-12 signals in one of the layouts of :data:`SIG2019_LAYOUT`; labels must be
    whole numbers in range, samples finite unless ``allow_nonfinite``."""
    class_names = list(class_names or SIG2019_CLASSES)
    path = Path(path)
    with reading(path, SIG2019_LAYOUT):
        x_src, y, label_file, held, close = _open_sig2019(path, labels_path)
        try:
            if x_src.ndim != 3 or 2 not in x_src.shape[1:] or y.ndim != 2 or y.shape != (x_src.shape[0], 2):
                _bad(path, f"expected {SIG2019_LAYOUT}; got X {tuple(x_src.shape)}, Y {tuple(y.shape)}")
            channel_last = x_src.shape[2] == 2 and x_src.shape[1] != 2
            labels = checks.integer_labels(y[:, 0], len(class_names), label_file, "the label Y[:, 0]")
            snrs = y[:, 1].astype(np.float32)
            candidates = np.flatnonzero(_snr_mask(snrs, snr))
            chosen = candidates[subsample_groups(labels[candidates], snrs[candidates], per_class_per_snr, seed)]
            length = x_src.shape[1] if channel_last else x_src.shape[2]
            checks.require_budget(path, held + output_bytes(len(chosen), length), f"{len(chosen)} signals")
            x = np.empty((len(chosen), 2, length), dtype=np.float32)
            read_rows(x_src, chosen, x, channel_last, path, allow_nonfinite)
        finally:
            close()
    return SignalSet(x, labels[chosen], snrs[chosen], class_names, name=name)


# --------------------------------------------------------------------------- generic format
GENERIC_LAYOUT = ("x (N, 2, L), (N, L, 2) or complex (N, L); y (N,), (N, 1) or one-hot (N, C); snr (N,) or (N, 1), "
                  "optional; classes (C,) strings (HDF5 datasets or attribute `classes`; NPZ arrays)")


def _decode_classes(values) -> list:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]


def _npz_object_member(path, name: str) -> np.ndarray:
    """The NPZ member ``name`` stored as an object array (a pickle after the .npy header),
    read by :class:`RestrictedUnpickler`: strings and numpy arrays only, no code runs."""
    import io
    import zipfile

    from numpy.lib import format as npy

    with zipfile.ZipFile(path) as z:
        info = z.getinfo(name + ".npy")
        checks.require_budget(path, 2 * info.file_size, f"array {name!r}")
        with z.open(info) as f:
            version = npy.read_magic(f)
            (npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0)(f)
            body = io.BytesIO(f.read())
    scan_pickle(body, path)
    return np.asarray(RestrictedUnpickler(body, path, limit=info.file_size).load())


def _npz_classes(arrays, path, notes: list) -> list:
    """The NPZ's class names, from a string array or (said in ``notes``) an object array."""
    try:
        return _decode_classes(arrays["classes"])
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise
    notes.append("classes: an object array, read without running code (strings only)")
    return _decode_classes(_npz_object_member(path, "classes"))


def _generic_npz(path, notes: list):
    arrays = np.load(path, allow_pickle=False)
    try:
        missing = [k for k in ("x", "y", "classes") if k not in arrays.files]
        if missing:
            _bad(path, f"missing array {missing[0]!r} (expected {GENERIC_LAYOUT}); found {arrays.files}")
        held = checks.check_npz_members(path, [k for k in ("x", "y", "snr", "classes") if k in arrays.files])
        checks.require_budget(path, held, "arrays x, y, snr and classes")
        snr = arrays["snr"] if "snr" in arrays.files else None
        return arrays["x"], arrays["y"], snr, _npz_classes(arrays, path, notes), None, held, arrays.close
    except BaseException:
        arrays.close()
        raise


def _generic_hdf5(path):
    f = open_hdf5(path)
    try:
        x = hdf5_dataset(f, path, ["x"], GENERIC_LAYOUT)
        y_ds = hdf5_dataset(f, path, ["y"], GENERIC_LAYOUT)
        snr_ds = hdf5_dataset(f, path, ["snr"], GENERIC_LAYOUT) if "snr" in f else None
        held = sum(checks.declared_bytes(d.shape, d.dtype) for d in (y_ds, snr_ds) if d is not None)
        checks.require_budget(path, held, "datasets y and snr")
        y, snr = np.asarray(y_ds[()]), (None if snr_ds is None else np.asarray(snr_ds[()]))
        if "classes" in f:
            classes = _decode_classes(hdf5_dataset(f, path, ["classes"], GENERIC_LAYOUT)[()])
        elif "classes" in f.attrs:
            classes = _decode_classes(f.attrs["classes"])
        else:
            _bad(path, f"missing `classes` (expected {GENERIC_LAYOUT})")
        stored = f.attrs.get("name")
        return x, y, snr, classes, (stored.decode() if isinstance(stored, bytes) else stored), held, f.close
    except BaseException:
        f.close()
        raise


def _generic_arrays(path, notes: list):
    """(x array-like, y, snr or None, classes, stored name, bytes held in memory, closer)
    of an HDF5 or NPZ generic file; declared sizes are checked before anything is loaded."""
    return _generic_npz(path, notes) if path.suffix.lower() == ".npz" else _generic_hdf5(path)


def _signal_layout(shape: tuple, dtype, path, notes: list) -> tuple:
    """(channel_last, length) of a generic file's ``x``: (N, 2, L) as written by amrbench;
    (N, L, 2) channel-last and complex (N, L) are detected and said in ``notes``. An x of
    shape (N, 2, 2) is read channel-first."""
    if np.dtype(dtype).kind == "c":
        if len(shape) != 2:
            _bad(path, f"complex x must have shape (N, L), got {tuple(shape)} (expected {GENERIC_LAYOUT})")
        notes.append(f"x: complex (N, L) = {tuple(shape)}; I = real part, Q = imaginary part")
        return False, shape[1]
    if len(shape) == 3 and shape[1] == 2:
        return False, shape[2]
    if len(shape) == 3 and shape[2] == 2:
        notes.append(f"x: channel-last (N, L, 2) = {tuple(shape)}; read as (N, 2, L)")
        return True, shape[1]
    _bad(path, f"x must be (N, 2, L), (N, L, 2) or complex (N, L), got {tuple(shape)} {np.dtype(dtype)} "
               f"(expected {GENERIC_LAYOUT})")


def _generic_labels(y: np.ndarray, n: int, classes: list, path, notes: list) -> np.ndarray:
    """Class indices from y (N,), (N, 1) or one-hot (N, C); the layout said in ``notes``."""
    if y.ndim == 2 and y.shape == (n, 1):
        notes.append("y: (N, 1) column of class indices")
        y = y[:, 0]
    elif y.ndim == 2 and y.shape[0] == n and y.shape[1] > 1:
        if y.shape[1] != len(classes):
            _bad(path, f"one-hot y has {y.shape[1]} columns but the file names {len(classes)} classes")
        notes.append(f"y: one-hot (N, C) = {tuple(y.shape)}; class = the column holding the 1")
        return np.concatenate([checks.onehot_labels(c, lo, path, "y") for lo, c in read_chunked(y)]) \
            if n else np.zeros(0, np.int64)
    if y.shape != (n,):
        _bad(path, f"y must be (N,), (N, 1) or one-hot (N, C) with N = {n} signals, got {tuple(y.shape)}")
    return checks.integer_labels(y, len(classes), path, "the label y")


def _generic_snrs(snrs: Optional[np.ndarray], n: int, path, notes: list) -> np.ndarray:
    """SNRs in dB from snr (N,) or (N, 1); NaN for every signal when the file has none."""
    if snrs is None:
        notes.append("snr: absent; every SNR is NaN (unknown)")
        return np.full(n, np.nan, dtype=np.float32)
    if snrs.shape == (n, 1):
        notes.append("snr: (N, 1) column")
        snrs = snrs[:, 0]
    if snrs.shape != (n,) or snrs.dtype.kind not in "iuf":
        _bad(path, f"snr must be numbers (N,) or (N, 1) with N = {n} signals, got {tuple(snrs.shape)} {snrs.dtype}")
    return snrs.astype(np.float32)


def read_generic(path, snr: Optional[tuple] = None, name: Optional[str] = None,
                 allow_nonfinite: bool = False, notes: Optional[list] = None) -> SignalSet:
    """A generic amrbench file (:data:`GENERIC_LAYOUT`); only rows in the SNR range. Every
    label must be a whole number in 0..C-1; kept samples finite unless ``allow_nonfinite``.
    Layouts other than amrbench's own are detected and described in ``notes`` (a list
    the caller passes to hear them)."""
    path = Path(path)
    notes = [] if notes is None else notes
    with reading(path, GENERIC_LAYOUT):
        x_src, y, snrs, classes, stored_name, held, close = _generic_arrays(path, notes)
        try:
            n = x_src.shape[0]
            channel_last, length = _signal_layout(tuple(x_src.shape), x_src.dtype, path, notes)
            labels = _generic_labels(np.asarray(y), n, classes, path, notes)
            snrs = _generic_snrs(None if snrs is None else np.asarray(snrs), n, path, notes)
            keep = np.flatnonzero(_snr_mask(snrs, snr))
            checks.require_budget(path, held + output_bytes(len(keep), length), f"{len(keep)} signals")
            x = np.empty((len(keep), 2, length), dtype=np.float32)
            read_rows(x_src, keep, x, channel_last, path, allow_nonfinite)
        finally:
            close()
    return SignalSet(x, labels[keep], snrs[keep], classes, name=name or stored_name or path.stem)
