"""sigmf: labelled SigMF recordings (``.sigmf-meta`` + ``.sigmf-data``) cut into windows.

SigMF (https://sigmf.org) is the open format of recorded I/Q captures: a JSON metadata
file (sample format, captures, annotations) beside a raw binary data file. This plugin
reads them with the ``sigmf`` package (``pip install amrbench[sigmf]``): every annotation
that carries a modulation label is a segment, cut into windows of ``window`` samples
every ``hop`` samples. Nothing is converted or copied to disk first.
"""
from __future__ import annotations

import glob
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from amrbench.api import AmrbenchError, Dataset, Param, SignalSet
from amrbench.data import checks, windows
from amrbench.hookspecs import hookimpl

META = ".sigmf-meta"
DATA = ".sigmf-data"
INSTALL = "pip install amrbench[sigmf]"
# complex sample formats of the SigMF spec: 8-bit ones carry no byte order
COMPLEX_FORMAT = re.compile(r"^c(f32|f64|i32|i16|u32|u16)_(le|be)$|^c(i8|u8)$")
WINDOWS_PER_READ = 4096  # windows read from the data file at a time


def require_sigmf():
    """The ``sigmf`` package, or a one-line AmrbenchError naming the extra to install."""
    try:
        import sigmf  # noqa: F401
        from sigmf import sigmffile
    except ImportError:
        raise AmrbenchError(f"dataset 'sigmf' needs the sigmf package: {INSTALL}") from None
    return sigmffile


@dataclass(frozen=True)
class Segment:
    """One labelled annotation of a recording: samples [start, start + count)."""

    meta: Path
    start: int
    count: int
    label: str
    snr: float


# --------------------------------------------------------------------------- finding recordings
def find_recordings(path) -> list:
    """The ``.sigmf-meta`` files ``path`` names, sorted: a recording (its metadata file,
    data file or base name), a directory (the recordings in it) or a glob pattern
    (``**`` recurses)."""
    text = str(Path(str(path)).expanduser())
    if any(c in text for c in "*?["):
        found = {_meta_of(Path(p)) for p in glob.glob(text, recursive=True) if _meta_of(Path(p))}
    elif Path(text).is_dir():
        found = set(Path(text).glob("*" + META))
    else:
        meta = _meta_of(Path(text)) or Path(text + META)
        found = {meta} if meta.is_file() else set()
    if not found:
        raise AmrbenchError(f"dataset 'sigmf': {text}: no SigMF recording found (expected a {META} file, a directory "
                            f"of them or a glob such as captures/*{META})")
    return sorted(found)


def _meta_of(path: Path) -> Optional[Path]:
    """The metadata file of a recording's ``.sigmf-meta`` or ``.sigmf-data`` file, else None."""
    if path.name.endswith(META):
        return path
    if path.name.endswith(DATA):
        return path.with_name(path.name[: -len(DATA)] + META)
    return None


# --------------------------------------------------------------------------- metadata checks
def _bad(meta: Path, message: str):
    raise AmrbenchError(f"{meta}: {message}")


def read_metadata(meta: Path) -> dict:
    """The recording's metadata (JSON), or AmrbenchError naming the file."""
    try:
        metadata = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        _bad(meta, f"not readable SigMF metadata ({type(exc).__name__}: {str(exc).splitlines()[0]})")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("global"), dict):
        _bad(meta, "not SigMF metadata (no \"global\" object)")
    return metadata


def check_sample_format(meta: Path, metadata: dict) -> str:
    """The recording's ``core:datatype`` when it is a single-channel complex format."""
    datatype = metadata["global"].get("core:datatype")
    if not isinstance(datatype, str):
        _bad(meta, "no core:datatype in the global metadata (the sample format, e.g. cf32_le or ci16_le)")
    if datatype.startswith("r"):
        _bad(meta, f"real-valued samples ({datatype}): I/Q windows need a complex format (cf32_le, ci16_le, ci8, ...)")
    if not COMPLEX_FORMAT.match(datatype):
        _bad(meta, f"unknown sample format {datatype!r} (complex SigMF formats: cf32_le, cf64_le, ci32_le, ci16_le, "
                   "ci8, cu16_le, cu8, ... with _be for big-endian)")
    channels = metadata["global"].get("core:num_channels", 1)
    if channels != 1:
        _bad(meta, f"{channels} channels interleaved; one channel per recording is supported (split the channels)")
    return datatype


def data_file(meta: Path, metadata: dict) -> Path:
    """The recording's data file (``<base>.sigmf-data`` or its ``core:dataset``); it must exist."""
    name = metadata["global"].get("core:dataset")
    found = meta.with_name(str(name)) if name else meta.with_name(meta.name[: -len(META)] + DATA)
    if not found.is_file():
        _bad(meta, f"missing data file {found.name} (a SigMF recording is a {META} file beside its {DATA} file)")
    return found


def sample_count(meta: Path, metadata: dict, data: Path) -> int:
    """Samples the data file holds (after any header and trailing bytes)."""
    sigmffile = require_sigmf()
    size = sigmffile.dtype_info(metadata["global"]["core:datatype"])["sample_size"]
    header = sum(int(c.get("core:header_bytes", 0)) for c in metadata.get("captures") or [])
    usable = data.stat().st_size - header - int(metadata["global"].get("core:trailing_bytes", 0))
    if usable < 0:
        _bad(meta, f"{data.name} holds fewer bytes than its header and trailing bytes")
    return usable // size


# --------------------------------------------------------------------------- segments
def labelled_segments(meta: Path, label_key: str, snr_key: Optional[str], window: int) -> list:
    """The recording's annotations that carry ``label_key``, as segments, after every
    check that needs no samples: readable metadata, a complex sample format, the data
    file present, annotations present and labelled, each inside the data and at least
    one window long, and the SNR a number when ``snr_key`` is given."""
    metadata = read_metadata(meta)
    check_sample_format(meta, metadata)
    total = sample_count(meta, metadata, data_file(meta, metadata))
    annotations = metadata.get("annotations") or []
    if not annotations:
        _bad(meta, f"no annotations: label each segment with an annotation holding core:sample_start, "
                   f"core:sample_count and {label_key!r}")
    segments = [_segment(meta, i, a, total, label_key, snr_key, window)
                for i, a in enumerate(annotations) if label_key in a]
    if not segments:
        _bad(meta, f"none of its {len(annotations)} annotations has the label key {label_key!r} "
                   "(set the dataset parameter label_key to the key holding the modulation)")
    return segments


def _segment(meta: Path, index: int, annotation: dict, total: int, label_key: str, snr_key: Optional[str],
             window: int) -> Segment:
    start = annotation.get("core:sample_start")
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        _bad(meta, f"annotation {index}: core:sample_start must be a sample index, got {start!r}")
    count = annotation.get("core:sample_count", total - start)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        _bad(meta, f"annotation {index}: core:sample_count must be a number of samples, got {count!r}")
    label = annotation[label_key]
    where = f"annotation {index} ({label_key} {label!r}, samples {start}..{start + count})"
    if start + count > total:
        _bad(meta, f"{where} ends after the data file's {total} samples (truncated data file?)")
    if count < window:
        _bad(meta, f"{where}: the segment of {count} samples is shorter than a window ({window}); lower the dataset "
                   "parameter window or drop the annotation")
    snr = math.nan
    if snr_key is not None:
        snr = annotation.get(snr_key)
        if isinstance(snr, bool) or not isinstance(snr, (int, float)):
            _bad(meta, f"{where}: no SNR number under {snr_key!r} (got {snr!r}); add it or set snr_key: null")
    return Segment(meta, int(start), int(count), str(label), float(snr))


def window_starts(segment: Segment, window: int, hop: int) -> np.ndarray:
    """First sample of every whole window of ``segment``, every ``hop`` samples."""
    return segment.start + hop * np.arange((segment.count - window) // hop + 1, dtype=np.int64)


def read_windows(recording, starts: np.ndarray, window: int, out: np.ndarray) -> None:
    """Fill ``out`` (K, 2, window) with the windows of ``recording`` (a SigMFFile) that
    begin at ``starts`` (increasing), reading one span of WINDOWS_PER_READ windows at a
    time; fixed-point samples are scaled to [-1, 1) by the sigmf package."""
    for lo in range(0, len(starts), WINDOWS_PER_READ):
        batch = starts[lo:lo + WINDOWS_PER_READ]
        first = int(batch[0])
        samples = np.asarray(recording.read_samples(first, int(batch[-1]) + window - first))
        spans = np.lib.stride_tricks.sliding_window_view(samples, window)[batch - first]
        out[lo:lo + len(batch), 0] = spans.real
        out[lo:lo + len(batch), 1] = spans.imag


# --------------------------------------------------------------------------- plugin
class SigMFRecordings(Dataset):
    """Labelled SigMF recordings (a file, a directory or a glob) cut into I/Q windows.

    Every annotation holding ``label_key`` (default ``core:label``) is a segment of one
    modulation; it is cut into windows of ``window`` samples (default 1024) every ``hop``
    samples (default null = ``window``: no overlap; a partial last window is dropped).
    The SNR of a segment comes from its annotation's ``snr_key`` (default null: NaN, then
    set ``snr_bins`` or leave the split stratified by class). Sample formats: the
    complex ones of the SigMF spec (cf32_le, cf64_le, ci32_le, ci16_le, ci8, cu16_le,
    cu8, and _be), read from the metadata; fixed-point samples are scaled to [-1, 1).

    Parameters: ``path`` (required): a ``.sigmf-meta`` (or ``.sigmf-data``, or base
    name), a directory of recordings, or a glob (``captures/**/*.sigmf-meta``);
    ``classes`` (default null = every label found, sorted) the class order, and only
    those labels are kept (each must occur); ``norm`` (default rms, unit power per window;
    energy, l1, max or none, see :mod:`amrbench.data.windows`): recordings come at any
    gain; ``allow_nonfinite`` (default false) loads windows holding NaN or Inf samples.

    Refused with one line naming the recording, before anything runs (checked when a
    suite loads, from the metadata alone): a missing data file, a real or unknown sample
    format, several channels, no annotations or none labelled, a segment outside the
    data or shorter than a window, a missing SNR under ``snr_key``. Cells are keyed by
    the content fingerprints of every metadata and data file read.
    """

    name = "sigmf"
    version = "1"
    defaults = {"path": None, "label_key": "core:label", "snr_key": None, "window": 1024, "hop": None,
                "classes": None, "norm": "rms", "allow_nonfinite": False}
    types = {"path": Param(str, null=True), "label_key": Param(str), "snr_key": Param(str, null=True),
             "window": Param(int, 1), "hop": Param(int, 1, null=True),
             "classes": Param(list, items=str, nonempty=True, null=True), "allow_nonfinite": Param(bool)}
    choices = windows.NORM_CHOICES

    def __init__(self, **params):
        super().__init__(**params)
        self.notes: list = []

    @property
    def hop(self) -> int:
        return self.params["hop"] or self.params["window"]

    def segments(self) -> list:
        """Every labelled segment of every recording, checked (see the class docstring)."""
        p = self.params
        if not p["path"]:
            raise AmrbenchError(f"dataset 'sigmf': parameter 'path' is required (a {META} file, a directory of "
                                "recordings or a glob)")
        require_sigmf()
        found = [s for meta in find_recordings(p["path"])
                 for s in labelled_segments(meta, p["label_key"], p["snr_key"], p["window"])]
        if p["classes"] is not None:
            missing = sorted(set(p["classes"]) - {s.label for s in found})
            if missing:
                raise AmrbenchError(f"dataset 'sigmf': class {missing[0]!r} labels no segment of {p['path']} "
                                    f"(labels found: {', '.join(sorted({s.label for s in found}))})")
            found = [s for s in found if s.label in p["classes"]]
        return found

    def class_names(self, segments: list) -> list:
        return list(self.params["classes"] or sorted({s.label for s in segments}))

    def load(self, seed: int, snr: Optional[tuple] = None) -> SignalSet:
        found = self.segments()
        classes = self.class_names(found)  # from every segment, so an SNR filter keeps the class indices
        segments = [s for s in found if snr is None or float(snr[0]) <= s.snr <= float(snr[1])]
        window = self.params["window"]
        starts = [window_starts(s, window, self.hop) for s in segments]
        total = sum(len(s) for s in starts)
        checks.require_budget(self.params["path"], total * 2 * window * 4, f"{total} windows")
        x = np.empty((total, 2, window), dtype=np.float32)
        row, recording = 0, None
        for segment, seg_starts in zip(segments, starts):
            if recording is None or recording[0] != segment.meta:
                recording = (segment.meta, require_sigmf().fromfile(str(segment.meta), skip_checksum=True))
            block = x[row:row + len(seg_starts)]
            read_windows(recording[1], seg_starts, window, block)
            if not self.params["allow_nonfinite"]:
                checks.check_finite_rows(block, seg_starts, segment.meta, "the window starting at sample")
            row += len(seg_starts)
        counts = [len(s) for s in starts]
        labels = np.repeat(np.array([classes.index(s.label) for s in segments], dtype=np.int64), counts)
        snrs = np.repeat(np.array([s.snr for s in segments], dtype=np.float32), counts)
        self.notes = self._describe(segments, total)
        return windows.normalise_windows(SignalSet(x, labels, snrs, classes, name=self.name), self.params["norm"])

    def _describe(self, segments: list, total: int) -> list:
        recordings = {s.meta for s in segments}
        formats = sorted({read_metadata(m)["global"]["core:datatype"] for m in recordings})
        snr = f"annotation key {self.params['snr_key']!r}" if self.params["snr_key"] else "unknown (NaN)"
        return [f"{len(recordings)} recording(s), {len(segments)} labelled segment(s), sample formats "
                f"{', '.join(formats)}", f"{total} windows of {self.params['window']} samples every {self.hop}; "
                f"labels from annotation key {self.params['label_key']!r}; SNR {snr}"]

    def fingerprint(self) -> dict:
        """One digest of the content fingerprints of every recording's metadata and data
        file (checked as the load would check them), and how many recordings it covers."""
        from amrbench.data.fingerprint import file_fingerprint

        recordings = sorted({s.meta for s in self.segments()})
        parts = [[m.name, file_fingerprint(m), file_fingerprint(data_file(m, read_metadata(m)))] for m in recordings]
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        return {"recordings": len(parts), "sha256": digest}


@hookimpl
def amrbench_register(registry):
    registry.add(SigMFRecordings)
