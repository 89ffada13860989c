"""Keeps glibc's allocator from returning memory to the kernel after every training step.

A training step frees and reallocates the same few activation buffers hundreds of times
a second. With glibc's defaults, buffers above the (dynamic) mmap threshold are mmap'd
and munmap'd each time and freed heap tops are trimmed, so every step pays page faults
and system calls; Dask's nanny even sets ``MALLOC_TRIM_THRESHOLD_=65536`` for its
workers. Measured on the project's 2-core CPU box, a CNN training loop ran 1.5x faster
in-process and 2.4x faster in a Dask worker once the thresholds below were raised.

``tune()`` applies them with ``mallopt`` at run time (so it also overrides environment
settings a worker inherited). It is called by every executor before a cell runs; it is
a no-op where glibc is not the C library (macOS, Windows, musl).
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper bound on 64-bit systems
TRIM_THRESHOLD = 256 * 1024 * 1024
TOP_PAD = 16 * 1024 * 1024

_tuned = None


def tune() -> bool:
    """Raise glibc's mmap/trim thresholds once per process; True where it took effect."""
    global _tuned
    if _tuned is None:
        _tuned = _apply()
    return _tuned


def _apply() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    return all(mallopt(option, value) == 1 for option, value in settings)
