"""Keeps glibc's allocator from returning memory to the kernel after every training step.

A training step frees and reallocates the same few activation buffers hundreds of times
a second. With glibc's defaults, buffers above the (dynamic) mmap threshold are mmap'd
and munmap'd each time and freed heap tops are trimmed, so every step pays page faults
and system calls; Dask's nanny even sets ``MALLOC_TRIM_THRESHOLD_=65536`` for its
workers. Raising the thresholds below removes that cost, in-process and in Dask workers
alike (figures: docs/performance.md, "amrbench/allocator.py").

The mmap threshold cannot go above 32 MiB, and a batch of 128 already makes larger
buffers (VT-CNN2's 256 x 2 x 132 maps: 34.6 MB; MCLDNN's and the LSTM's workspaces),
which the thresholds alone would still map and unmap every step. Inside
``large_buffers_from_heap()`` (``train.fit`` enters it) glibc maps nothing
(``M_MMAP_MAX = 0``) and every buffer comes from the heap, which the trim threshold
keeps. The price is memory: glibc's aligned allocations fragment a heap of repeated
large buffers, so a process keeps up to about one more step's activations; that is why
evaluation's much larger no-grad batches stay outside it. glibc still maps memory
where the heap cannot grow, so nothing fails for it. In threads other than the main one
(a Dask worker runs its tasks in one) glibc's per-thread heaps hold at most 64 MiB each,
so larger buffers are still mapped there; ``MALLOC_ARENA_MAX=1`` in the process's
environment puts every thread on the main heap, and the dask executor's LocalCluster
workers start with it.

``tune()`` applies the thresholds with ``mallopt`` at run time (so it also overrides
environment settings a worker inherited). It is called by every executor before a cell
runs; it is a no-op where glibc is not the C library (macOS, Windows, musl).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import threading

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -2, -3, -4
GLIBC_MMAP_MAX = int(os.environ.get("MALLOC_MMAP_MAX_", 65536))  # restored after the scope
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper bound on 64-bit systems
TRIM_THRESHOLD = 256 * 1024 * 1024
TOP_PAD = 16 * 1024 * 1024

_tuned = None
_heap_only_depth = 0  # fits running now (a Dask worker may run several in threads)
_heap_only_lock = threading.Lock()


def tune() -> bool:
    """Raise glibc's mmap/trim thresholds once per process; True where it took effect."""
    global _tuned
    if _tuned is None:
        _tuned = _apply()
    return _tuned


@contextlib.contextmanager
def large_buffers_from_heap():
    """Within it, buffers above the mmap threshold come from the (kept) heap too; only in
    a process that ``tune()`` tuned (its trim threshold keeps the heap). Re-entrant."""
    if not _tuned:
        yield
        return
    _change_heap_only_depth(+1)
    try:
        yield
    finally:
        _change_heap_only_depth(-1)


def _change_heap_only_depth(change: int) -> None:
    """The outermost scope switches glibc's mmap off on entry and back on at exit."""
    global _heap_only_depth
    with _heap_only_lock:
        outermost = _heap_only_depth == (0 if change > 0 else 1)
        _heap_only_depth += change
        if outermost:
            _mallopt(((M_MMAP_MAX, 0 if change > 0 else GLIBC_MMAP_MAX),))


def _apply() -> bool:
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    return _mallopt(settings)


def _mallopt(settings) -> bool:
    mallopt = _glibc_mallopt()
    return mallopt is not None and all(mallopt(option, value) == 1 for option, value in settings)


@functools.lru_cache(maxsize=1)
def _glibc_mallopt():
    """glibc's mallopt, or None; looked up once (find_library may run ldconfig)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return None
