"""Pulse shapes and the zero-stuff-and-filter steps the digital modulators share, and the
:data:`Waveform` type every modulator returns."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from scipy.signal import fftconvolve

# A waveform maker: (rng, count, length, sps) -> complex array (count, length).
Waveform = Callable[[np.random.Generator, int, int, int], np.ndarray]


def rrc_taps(sps: int, rolloff: float, span: int) -> np.ndarray:
    """Root-raised-cosine taps over ``span`` symbols, scaled so that unit-power i.i.d.
    symbols, zero-stuffed to ``sps``, give unit average output power."""
    t = np.arange(-(span * sps // 2), span * sps // 2 + 1) / sps
    b = rolloff
    with np.errstate(divide="ignore", invalid="ignore"):
        taps = (np.sin(np.pi * t * (1 - b)) + 4 * b * t * np.cos(np.pi * t * (1 + b))) / (
            np.pi * t * (1 - (4 * b * t) ** 2))
    taps[t == 0] = 1 - b + 4 * b / np.pi
    if b > 0:
        edge = np.isclose(np.abs(t), 1 / (4 * b))
        taps[edge] = b / np.sqrt(2) * ((1 + 2 / np.pi) * np.sin(np.pi / (4 * b))
                                       + (1 - 2 / np.pi) * np.cos(np.pi / (4 * b)))
    return taps * np.sqrt(sps / np.sum(taps ** 2))


def frequency_pulse(sps: int, bt: Optional[float] = None, span: int = 4) -> np.ndarray:
    """CPM frequency pulse summing to 1: rectangular over one symbol, or (``bt`` given) a
    Gaussian of bandwidth-time product ``bt`` over ``span`` symbols convolved with it."""
    rect = np.ones(sps)
    if bt is None:
        return rect / sps
    t = (np.arange(span * sps) - (span * sps - 1) / 2) / sps
    pulse = np.convolve(np.exp(-2 * np.pi ** 2 * bt ** 2 * t ** 2 / np.log(2)), rect)
    return pulse / pulse.sum()


def upsample(symbols: np.ndarray, sps: int) -> np.ndarray:
    """Rows of ``symbols`` zero-stuffed to ``sps`` samples per symbol."""
    up = np.zeros((symbols.shape[0], symbols.shape[1] * sps), dtype=symbols.dtype)
    up[:, ::sps] = symbols
    return up


def filter_rows(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Full convolution of every row of ``x`` with ``taps`` (FFT-based)."""
    return fftconvolve(x, taps[None, :], axes=1)
