"""The continuous-phase FSK family (CPFSK, GFSK, GMSK): one continuous-phase modulator
with a rectangular or Gaussian frequency pulse."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .pulses import Waveform, filter_rows, frequency_pulse, upsample


def cpm(levels: int, h: float, bt: Optional[float] = None, span: int = 4) -> Waveform:
    """Continuous-phase M-ary FSK (CPFSK, GFSK, GMSK): symbols in {+-1, +-3, ...}, phase
    change pi*h*symbol per symbol, spread by :func:`frequency_pulse`."""
    alphabet = np.arange(-(levels - 1), levels, 2).astype(np.float64)

    def make(rng, count, length, sps):
        pulse = frequency_pulse(sps, bt, span)
        nsym = -(-length // sps) + span + 2
        symbols = alphabet[rng.integers(0, levels, (count, nsym))]
        freq = filter_rows(upsample(symbols, sps), pulse)[:, :nsym * sps]
        phase = np.pi * h * np.cumsum(freq, axis=1)
        start = len(pulse)
        return np.exp(1j * phase[:, start:start + length])

    return make
