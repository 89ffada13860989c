"""Analog modulations of a band-limited "speech-like" audio source with silent segments:
AM (double or single sideband, with or without carrier), wideband FM, and no signal."""
from __future__ import annotations

import numpy as np

from .pulses import Waveform


def speech_audio(rng: np.random.Generator, count: int, length: int, silence: float,
                 tones: int = 8, band: tuple = (5e-4, 0.02), loudness: tuple = (0.005, 0.25),
                 hiss: float = 3e-4) -> np.ndarray:
    """Band-limited random "speech-like" audio as an analytic signal a + jH{a} (count, length).

    Each window is a sum of ``tones`` sinusoids with log-uniform frequencies in ``band``
    (cycles/sample: 100 Hz .. 4 kHz at 200 kHz) and a 1/sqrt(f) amplitude tilt, scaled to
    an RMS loudness drawn log-uniformly in ``loudness`` (peak |a| <= 0.5 as the 10a
    source); a fraction ``silence`` of the windows are pauses at the ``hiss`` level.
    """
    lo, hi = band
    freqs = np.exp(rng.uniform(np.log(lo), np.log(hi), (count, tones)))
    amps = rng.rayleigh(1.0, (count, tones)) / np.sqrt(freqs / lo)
    phases = rng.uniform(0, 2 * np.pi, (count, tones))
    t = np.arange(length)
    audio = np.zeros((count, length), dtype=np.complex128)
    for k in range(tones):
        audio += amps[:, k:k + 1] * np.exp(1j * (2 * np.pi * freqs[:, k:k + 1] * t + phases[:, k:k + 1]))
    rms = np.sqrt(np.mean(audio.real ** 2, axis=1, keepdims=True))
    level = np.exp(rng.uniform(np.log(loudness[0]), np.log(loudness[1]), (count, 1)))
    level[rng.random((count, 1)) < silence] = hiss
    peak = np.max(np.abs(audio.real), axis=1, keepdims=True) / rms
    return audio / rms * np.minimum(level, 0.5 / peak)


def am(sideband: str = "dsb", carrier: bool = True, silence: float = 0.3) -> Waveform:
    """AM of speech-like audio at 0 Hz: ``dsb`` = a(t) on I, ``ssb`` = upper sideband
    a + jH{a}; with ``carrier`` the unit carrier is added (modulation index <= 0.5)."""

    def make(rng, count, length, sps):
        audio = speech_audio(rng, count, length, silence)
        message = audio.real.astype(np.complex128) if sideband == "dsb" else audio
        return message + (1.0 if carrier else 0.0)

    return make


def fm(deviation: float = 2 * np.pi * 75e3 / 220.5e3, preemphasis: float = 75e-6 * 220.5e3,
       silence: float = 0.3) -> Waveform:
    """Wideband FM of speech-like audio as GNU Radio's ``wfm_tx``: first-order
    pre-emphasis (tau = 75 us at 220.5 kHz) and ``deviation`` rad/sample per unit input."""

    def make(rng, count, length, sps):
        audio = speech_audio(rng, count, length + 1, silence).real
        emphasised = audio[:, 1:] + preemphasis * np.diff(audio, axis=1)
        return np.exp(1j * deviation * np.cumsum(emphasised, axis=1))

    return make


def silent() -> Waveform:
    """No signal at all (RML2016.10a's AM-SSB, whose carrier multiplier is sin(0) = 0)."""

    def make(rng, count, length, sps):
        return np.zeros((count, length), dtype=np.complex128)

    return make
