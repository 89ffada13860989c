"""Append-only result records (JSONL), the results folder's ``suite.json``, and the
artifact cache.

Records: one JSON object per line in ``records.jsonl``, appended under a file lock in one
write, flushed and fsynced, never rewritten. One record per finished cell: under the lock
an append first reads the bytes appended since its last look and skips a record whose
key already has an ``ok`` record (two runs into one folder store each cell once), except
for ``run --rerun``, whose records supersede the stored ones (readers take the last ``ok``
record of a key; the older ones stay as history). A
torn last line (a crash mid-write) is moved aside to ``records.jsonl.torn`` and ignored
with a warning; a write that fails (full disk, file-size limit, read-only folder) is
undone before the error is raised. A bad line in the middle is an error naming the line.

Artifacts: expensive shared results (training dynamics, trained weights, condensed sets)
under ``<cache>/<kind>/<hash>.pt``, computed once under a file lock so concurrent
workers wait for the first instead of recomputing. They are data, never code: the file
holds dicts, lists, tuples, sets, strings, numbers and tensors only (SignalSets and numpy
values are stored as small tagged dicts and rebuilt), is read with
``torch.load(weights_only=True)`` and is checked against the sha256 in ``<hash>.sha256``.
A file that fails the check or will not load as plain data is reported in one warning
line and recomputed; a value that is not plain data, or that cannot be written (disk
full), is used but not cached, with a warning. Who computed what is logged as JSON lines
in ``<hash>.log``; leftover ``*.tmp<pid>`` files of killed writers are removed.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import time
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
from filelock import FileLock

from amrbench.api import AmrbenchError, SignalSet
from amrbench.cache import cache_root, stable_hash

SCHEMA_VERSION = 1


# --------------------------------------------------------------------------- records
_JSON_TYPE_NAMES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true/false",
                    type(None): "null"}
_TAIL_BLOCK = 1 << 16


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


class RecordStore:
    """The records of one results folder: ``append`` (one per finished cell), ``read``,
    ``latest`` per key and ``done_keys``."""

    def __init__(self, path):
        self.path = Path(path)
        self.lock = FileLock(str(self.path) + ".lock")
        self._reset_scan(None)

    # ---- parsing
    def _parse(self, raw: bytes, number: int) -> dict:
        """One line as a record, or an error naming ``file:line`` and the fix."""
        where = f"{self.path}:{number}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AmrbenchError(f"{where}: corrupt record (byte 0x{raw[exc.start]:02x} at column {exc.start + 1} "
                                f"is not UTF-8); remove or repair that line") from None
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            raise AmrbenchError(f"{where}: corrupt record (not JSON); remove or repair that line") from None
        if not isinstance(record, dict):
            kind = _JSON_TYPE_NAMES.get(type(record), type(record).__name__)
            raise AmrbenchError(f"{where}: corrupt record ({kind}, not a JSON object); remove or repair that line")
        return record

    def _read_bytes(self) -> Optional[bytes]:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise AmrbenchError(f"{self.path}: is a directory, not a records file; move it aside or pass "
                                f"another --results folder") from None
        except OSError as exc:
            raise AmrbenchError(f"{self.path}: cannot read the records ({_os_reason(exc)}); "
                                f"check the file's permissions") from None

    # ---- reading
    def read(self) -> list[dict]:
        data = self._read_bytes()
        if not data:
            return []
        records = []
        lines = data.split(b"\n")
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                records.append(self._parse(raw, number))
            except AmrbenchError:
                if number == len(lines):  # last line without newline: a torn tail
                    warnings.warn(f"{self.path}:{number}: ignored a truncated last record (crash mid-write)")
                    continue
                raise
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

    def latest_ok(self) -> dict:
        """The last ``ok`` record per key, for the keys that have one."""
        return {k: r for k, r in self.latest().items() if r.get("status") == "ok"}

    def done_keys(self) -> set:
        return set(self.latest_ok())

    # ---- appending
    def append(self, record: dict, supersede: bool = False) -> bool:
        """Store ``record`` unless an ``ok`` record of its key is already stored (another
        run into this folder finished the cell first); with ``supersede`` (``run
        --rerun``) store it anyway, after the one it replaces. Returns whether it was written."""
        line = (json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=True, default=str) + "\n").encode()
        key = record.get("key")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.lock:
                self._repair_torn_tail()
                if key is not None and not supersede and key in self._stored_ok_keys():
                    return False
                self._write_line(line)
        except OSError as exc:
            raise AmrbenchError(self._append_error(exc, key)) from None
        return True

    def _append_error(self, exc: OSError, key) -> str:
        cell = f" of cell {str(key)[:12]}" if key is not None else ""
        if isinstance(exc, IsADirectoryError) and self.path.is_dir():
            return f"{self.path}: is a directory, not a records file; move it aside or pass another --results folder"
        return (f"{self.path}: cannot append the record{cell} ({_os_reason(exc)}); make the results folder writable, "
                f"free disk space or raise the file-size limit (ulimit -f), then rerun: stored cells are kept")

    def _write_line(self, line: bytes) -> None:
        """Append ``line`` whole or not at all: a failed write is cut off again."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            start = os.fstat(fd).st_size
            try:
                written = 0
                while written < len(line):
                    count = os.write(fd, line[written:])
                    if count == 0:
                        raise OSError(errno.EIO, "no bytes written")
                    written += count
                os.fsync(fd)
            except OSError:
                try:
                    os.ftruncate(fd, start)
                except OSError:
                    pass  # the next read or append repairs the torn tail
                raise
        finally:
            os.close(fd)

    def _reset_scan(self, identity) -> None:
        self._ok_keys: set = set()
        self._scanned_bytes = 0
        self._scanned_lines = 0
        self._scanned_file = identity

    def _stored_ok_keys(self) -> set:
        """Keys with an ``ok`` record in the file, reading only the complete lines added
        since the last call (the file only grows; a replaced or shorter file is reread)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._reset_scan(None)
            return self._ok_keys
        identity = (stat.st_dev, stat.st_ino)
        if identity != self._scanned_file or stat.st_size < self._scanned_bytes:
            self._reset_scan(identity)
        if stat.st_size > self._scanned_bytes:
            with open(self.path, "rb") as f:
                f.seek(self._scanned_bytes)
                chunk = f.read(stat.st_size - self._scanned_bytes)
            end = chunk.rfind(b"\n") + 1
            for raw in chunk[:end].split(b"\n")[:-1]:
                self._scanned_lines += 1
                if raw.strip():
                    record = self._parse(raw, self._scanned_lines)
                    if record.get("status") == "ok" and record.get("key") is not None:
                        self._ok_keys.add(record["key"])
            self._scanned_bytes += end
        return self._ok_keys

    def _repair_torn_tail(self) -> None:
        """End the file with a newline so the next record does not glue onto a fragment:
        a whole record that only lacks its newline gets it; a torn fragment (a crash
        mid-append) is cut and kept in ``.torn`` for inspection."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0:
            return
        with open(self.path, "rb+") as f:
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            cut = _last_line_start(f, size)
            f.seek(cut)
            fragment = f.read()
            whole = _is_record(fragment)
            if whole:
                f.seek(size)
                f.write(b"\n")
            else:
                with open(str(self.path) + ".torn", "ab") as torn:
                    torn.write(fragment + b"\n")
                f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        if not whole:
            warnings.warn(f"{self.path}: ignored a truncated last record (crash mid-write); moved it to {self.path}.torn")


def _last_line_start(f, size: int) -> int:
    """Offset just after the last newline of a file of ``size`` bytes (0 if none)."""
    pos = size
    while pos > 0:
        step = min(_TAIL_BLOCK, pos)
        pos -= step
        f.seek(pos)
        found = f.read(step).rfind(b"\n")
        if found >= 0:
            return pos + found + 1
    return 0


def _is_record(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw.decode("utf-8")), dict)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return False


# --------------------------------------------------------------------------- results folder files
SUITE_META = "suite.json"
_SUITE_META_FIX = ('rewrite it as {"suite": "<suite file>", "profile": null} or delete it '
                   '(the suite is then looked up as suites/<folder name>.yaml)')


def read_suite_meta(folder) -> dict:
    """A results folder's ``suite.json`` (which suite and profile produced its records);
    ``{}`` when there is none."""
    path = Path(folder) / SUITE_META
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise AmrbenchError(f"{path}: malformed {SUITE_META} (not UTF-8 text); {_SUITE_META_FIX}") from None
    except OSError as exc:
        raise AmrbenchError(f"{path}: cannot read ({_os_reason(exc)}); {_SUITE_META_FIX}") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AmrbenchError(f"{path}:{exc.lineno}: malformed {SUITE_META} ({exc.msg}); {_SUITE_META_FIX}") from None
    if not isinstance(meta, dict):
        raise AmrbenchError(f"{path}: malformed {SUITE_META} (not a JSON object); {_SUITE_META_FIX}")
    if not isinstance(meta.get("suite", ""), str) or not isinstance(meta.get("profile"), (str, type(None))):
        raise AmrbenchError(f"{path}: malformed {SUITE_META} (suite and profile must be strings or null); "
                            f"{_SUITE_META_FIX}")
    return meta


def write_text_file(path, text: str, fix: str) -> None:
    """Write ``text`` to ``path`` atomically (a crash leaves the old file or the new
    one); a failure is one error line naming the file and ``fix``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666), "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise AmrbenchError(f"{path}: cannot write ({_os_reason(exc)}); {fix}") from None


def write_suite_meta(folder, suite: str, profile: Optional[str], artifact_times: Optional[list] = None) -> None:
    """``suite.json``: the suite file and profile that make the folder's records and, with
    ``artifact_times``, the record metrics that time shared artifacts (so ``amrbench
    suites`` counts each artifact's hours once without loading a plugin)."""
    meta = {"suite": suite, "profile": profile}
    if artifact_times is not None:
        meta["artifact_times"] = sorted(artifact_times)
    write_text_file(Path(folder) / SUITE_META, json.dumps(meta, indent=1) + "\n",
                    "make the results folder writable or pass another --results folder")


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


# --------------------------------------------------------------------------- plain-data encoding
_TAG = "__amrbench__"
ARTIFACT_FORMAT = 1
_ATOMS = (str, int, float, bool, complex, bytes, type(None), torch.dtype, torch.device)
_KEY_ATOMS = (str, int, float, bool, type(None))
_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)


class NotPlainData(TypeError):
    """A value the artifact cache cannot store as plain data."""


class ArtifactUnusable(Exception):
    """A cached artifact file that must not be used (unreadable, modified, not plain data)."""


def encode_plain(value: Any, where: str = "value") -> Any:
    """``value`` as a tree ``torch.load(weights_only=True)`` reads back: containers,
    atoms and tensors as they are; SignalSets, numpy arrays and numpy scalars as tagged
    dicts. Anything else raises NotPlainData naming where it sits in the tree."""
    kind = type(value)
    if kind in _ATOMS or kind is torch.Size:
        return value
    if kind in _TENSOR_TYPES:
        if value.layout != torch.strided or value.is_quantized:
            raise NotPlainData(f"{where} is a {value.layout} tensor")
        return value
    if kind in (dict, OrderedDict):
        return _encode_mapping(value, where)
    if kind in (list, tuple):
        return kind(encode_plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    if kind is set:
        return {encode_plain(v, f"{where} item") for v in value}
    if kind is SignalSet:
        fields = {f.name: encode_plain(getattr(value, f.name), f"{where}.{f.name}") for f in dataclasses.fields(value)}
        return {_TAG: "SignalSet", "fields": fields}
    if kind is np.ndarray:
        return _encode_ndarray(value, where)
    if isinstance(value, np.generic) and value.dtype.kind in "biufc" and type(value.item()) in _ATOMS:
        return {_TAG: "numpy-scalar", "dtype": value.dtype.str, "value": value.item()}
    raise NotPlainData(f"{where} is a {kind.__module__}.{kind.__qualname__}")


def _encode_mapping(value: dict, where: str) -> Any:
    for key in value:
        if type(key) not in _KEY_ATOMS:
            raise NotPlainData(f"{where} has a key of type {type(key).__name__}")
    items = [(k, encode_plain(v, f"{where}[{k!r}]")) for k, v in value.items()]
    if _TAG in value:  # a plain dict that happens to use the tag key: stored as items
        return {_TAG: "dict", "ordered": type(value) is OrderedDict, "items": items}
    return type(value)(items)


def _encode_ndarray(value: np.ndarray, where: str) -> dict:
    if value.dtype.kind not in "biufc":
        raise NotPlainData(f"{where} is a numpy array of dtype {value.dtype}")
    try:  # native byte order for torch; the dtype (order included) is restored on load
        data = torch.from_numpy(np.array(value, dtype=value.dtype.newbyteorder("="), order="C", copy=True))
    except (TypeError, ValueError):
        raise NotPlainData(f"{where} is a numpy array of dtype {value.dtype}") from None
    return {_TAG: "ndarray", "dtype": value.dtype.str, "data": data}


def decode_plain(value: Any) -> Any:
    """Inverse of ``encode_plain``."""
    kind = type(value)
    if kind in (dict, OrderedDict):
        if _TAG in value:
            return _decode_tagged(value)
        return kind((k, decode_plain(v)) for k, v in value.items())
    if kind in (list, tuple):
        return kind(decode_plain(v) for v in value)
    return value


def _decode_tagged(value: dict) -> Any:
    tag = value[_TAG]
    try:
        if tag == "SignalSet":
            return SignalSet(**{k: decode_plain(v) for k, v in value["fields"].items()})
        if tag == "ndarray":
            return value["data"].numpy().astype(np.dtype(value["dtype"]), copy=False)
        if tag == "numpy-scalar":
            return np.dtype(value["dtype"]).type(value["value"])
        if tag == "dict":
            items = [(k, decode_plain(v)) for k, v in value["items"]]
            return OrderedDict(items) if value["ordered"] else dict(items)
    except (KeyError, TypeError, ValueError, AttributeError, AmrbenchError) as exc:
        raise ArtifactUnusable(f"a malformed {tag!r} entry ({exc})") from None
    raise ArtifactUnusable(f"an unknown entry tag {tag!r}")


def _sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# --------------------------------------------------------------------------- artifacts
STALE_TMP_SECONDS = 3600
_TMP_NAME = re.compile(r"\.tmp(\d+)$")


class ArtifactCache:
    def __init__(self, root: Optional[os.PathLike] = None):
        self.root = Path(root) if root else cache_root() / "artifacts"
        self._unstorable_warned: set = set()

    def path(self, kind: str, config: Any) -> Path:
        return self.root / kind / f"{stable_hash(config, 24)}.pt"

    @staticmethod
    def checksum_path(path: Path) -> Path:
        return path.with_suffix(".sha256")

    def get_or_compute(self, kind: str, config: Any, compute: Callable[[], Any]) -> Any:
        path = self.path(kind, config)
        with self._locked(path):
            if path.exists():
                try:
                    value = self.read_file(path)
                    if not self.checksum_path(path).exists():
                        with self._cache_errors(path):
                            self._write_checksum(path, _sha256_of(path))
                    return value
                except ArtifactUnusable as exc:
                    warnings.warn(f"{path}: {exc}; recomputing it")
            value = compute()
            try:
                self._store(kind, path, value)
                with open(path.with_suffix(".log"), "a") as log:
                    log.write(json.dumps({"computed_by_pid": os.getpid(), "config": config}, default=str) + "\n")
            except OSError as exc:  # the computed value is still good: use it, uncached
                warnings.warn(f"{path}: could not store the computed artifact ({_os_reason(exc)}); it is used "
                              f"but not cached: free disk space or pass --cache elsewhere")
            return value

    @contextmanager
    def _cache_errors(self, path: Path) -> Iterator[None]:
        """OSErrors of the cache's own file operations as one error line with the fix."""
        try:
            yield
        except OSError as exc:
            raise AmrbenchError(f"{path}: cannot use the artifact cache ({_os_reason(exc)}); make {self.root} "
                                f"writable, free disk space, or pass --cache (or AMRBENCH_CACHE) elsewhere") from None

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        """Hold ``path``'s file lock; errors of the computation inside pass unchanged."""
        lock = FileLock(str(path) + ".lock")
        with self._cache_errors(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def _store(self, kind: str, path: Path, value: Any) -> None:
        self.remove_stale_tmps(path)
        try:
            self.write_file(path, value)
        except NotPlainData as exc:
            if kind not in self._unstorable_warned:
                self._unstorable_warned.add(kind)
                warnings.warn(f"{path}: not cached on disk ({exc}; artifacts hold plain data only): the "
                              f"{kind!r} artifact is recomputed in each process; a compressor can offer "
                              f"get_state()/set_state()")

    def read_file(self, path: Path) -> Any:
        """The artifact stored at ``path``, checked against its sha256 and loaded as plain
        data only. Raises ArtifactUnusable when the file must not be used. A file without
        a checksum (written before checksums, or by a writer killed between the two
        files) is used if it loads as plain data."""
        path = Path(path)
        try:
            expected = self._expected_sha256(path)
            actual = _sha256_of(path)
        except OSError as exc:
            raise ArtifactUnusable(f"unreadable cached artifact ({_os_reason(exc)})") from None
        if expected is not None and expected != actual:
            raise ArtifactUnusable("cached artifact does not match its sha256 (corrupt or modified)")
        try:
            with warnings.catch_warnings():  # torch's notes on odd files: the one line below says it
                warnings.simplefilter("ignore")
                stored = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure means: not loadable as plain data
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArtifactUnusable(f"cached artifact is not plain data, not loaded ({reason[:160]})") from None
        return self._unwrap(stored)

    @staticmethod
    def _unwrap(stored: Any) -> Any:
        if type(stored) is dict and stored.get(_TAG) == "artifact":
            if stored.get("format") != ARTIFACT_FORMAT or "value" not in stored:
                raise ArtifactUnusable(f"cached artifact of unknown format {stored.get('format')!r}")
            return decode_plain(stored["value"])
        return stored  # written before the tagged format: plain data already

    def write_file(self, path: Path, value: Any) -> None:
        """Store ``value`` at ``path`` with its sha256 beside it; each file is replaced
        atomically. Raises NotPlainData (writing nothing) for values that are not plain."""
        path = Path(path)
        payload = {_TAG: "artifact", "format": ARTIFACT_FORMAT, "value": encode_plain(value)}
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        try:
            torch.save(payload, tmp)
            digest = _sha256_of(tmp)
            os.replace(tmp, path)
        finally:
            _remove_quietly(tmp)
        self._write_checksum(path, digest)

    def _expected_sha256(self, path: Path) -> Optional[str]:
        try:
            text = self.checksum_path(path).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        return text.split()[0].lower() if text.split() else ""

    def _write_checksum(self, path: Path, digest: str) -> None:
        target = self.checksum_path(path)
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        try:
            tmp.write_text(f"{digest}  {path.name}\n")  # the format of sha256sum
            os.replace(tmp, target)
        finally:
            _remove_quietly(tmp)

    def remove_stale_tmps(self, path: Path) -> list:
        """Remove leftovers ``*.tmp<pid>`` of killed writers in ``path``'s folder: those of
        ``path`` itself (the caller holds its lock, so their writer is gone) and any
        untouched for STALE_TMP_SECONDS. Live pids on other hosts sharing the cache make
        a pid check unsafe, so other artifacts' recent tmps are left alone."""
        own = path.name.rsplit(".", 1)[0] + "."
        now, removed = time.time(), []
        for candidate in path.parent.iterdir():
            if not _TMP_NAME.search(candidate.name):
                continue
            try:
                stale = candidate.name.startswith(own) or now - candidate.stat().st_mtime > STALE_TMP_SECONDS
                if stale and candidate.is_file():
                    candidate.unlink()
                    removed.append(candidate)
            except OSError:
                continue  # removed meanwhile, or not ours to remove
        return removed

    def stored_ids(self) -> set:
        """``kind:hash`` of every artifact stored here (the ids ``amrbench.cost`` uses)."""
        if not self.root.is_dir():
            return set()
        return {f"{path.parent.name}:{path.stem}" for path in self.root.glob("*/*.pt")}

    def computations(self, kind: str) -> int:
        """How many times artifacts of this kind were computed (for tests and reports)."""
        folder = self.root / kind
        if not folder.exists():
            return 0
        return sum(len(p.read_text().splitlines()) for p in folder.glob("*.log"))
