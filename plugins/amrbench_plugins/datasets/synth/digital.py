"""Constellations (PSK, PAM, ASK, square and cross QAM, APSK) and the linear modulator
(root-raised-cosine pulse shaping, optionally offset-Q)."""
from __future__ import annotations

import math

import numpy as np

from .pulses import Waveform, filter_rows, rrc_taps, upsample


# --------------------------------------------------------------------------- constellations
def unit_power(points) -> np.ndarray:
    points = np.asarray(points, dtype=np.complex128)
    return points / np.sqrt(np.mean(np.abs(points) ** 2))


def psk(m: int, offset: float = 0.0) -> np.ndarray:
    return unit_power(np.exp(1j * (2 * np.pi * np.arange(m) / m + offset)))


def pam(m: int) -> np.ndarray:
    """Bipolar amplitude levels -(m-1), ..., m-1 on the in-phase axis."""
    return unit_power(np.arange(-(m - 1), m, 2))


def ask(m: int) -> np.ndarray:
    """Unipolar amplitude levels 0, 1, ..., m-1 (m = 2 is on-off keying)."""
    return unit_power(np.arange(m))


def qam(m: int) -> np.ndarray:
    """Square QAM when m is a square, else cross QAM (32, 128): the square grid of side
    sqrt(9m/8) without a corner square of side/6 points at each corner."""
    side = math.isqrt(m)
    grid = None
    if side * side == m:
        levels = np.arange(-(side - 1), side, 2)
        grid = levels[:, None] + 1j * levels[None, :]
    else:
        side = math.isqrt(m * 9 // 8)
        corner = side // 6
        levels = np.arange(-(side - 1), side, 2)
        grid = levels[:, None] + 1j * levels[None, :]
        outer = side - 1 - 2 * corner
        grid = grid[~((np.abs(grid.real) > outer) & (np.abs(grid.imag) > outer))]
    points = np.ravel(grid)
    if len(points) != m:
        raise ValueError(f"cannot build a {m}-QAM constellation")
    return unit_power(points)


def apsk(rings: tuple) -> np.ndarray:
    """Amplitude-phase shift keying: ``rings`` points per ring, radii 1, 2, 3, ...,
    every other ring rotated by half its point spacing."""
    points = [r * np.exp(1j * (2 * np.pi * np.arange(n) / n + (np.pi / n) * (r % 2)))
              for r, n in enumerate(rings, start=1)]
    return unit_power(np.concatenate(points))


# --------------------------------------------------------------------------- modulator
def linear(points: np.ndarray, rolloff: float = 0.35, span: int = 11, offset_q: bool = False) -> Waveform:
    """Linear modulation: uniform random symbols of ``points``, RRC pulse shaping;
    ``offset_q`` delays the quadrature branch by half a symbol (OQPSK)."""
    points = np.asarray(points, dtype=np.complex128)

    def make(rng, count, length, sps):
        taps = rrc_taps(sps, rolloff, span)
        nsym = -(-length // sps) + span + 2
        symbols = points[rng.integers(0, len(points), (count, nsym))]
        start = span * sps + sps // 2  # past the filter's start-up transient
        if not offset_q:
            return filter_rows(upsample(symbols, sps), taps)[:, start:start + length]
        inphase = filter_rows(upsample(symbols.real, sps), taps)[:, start:start + length]
        delay = start - sps // 2
        quadrature = filter_rows(upsample(symbols.imag, sps), taps)[:, delay:delay + length]
        return inphase + 1j * quadrature

    return make
