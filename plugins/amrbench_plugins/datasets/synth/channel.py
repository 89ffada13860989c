"""The channel after the transmitter: timing and sample-rate offset (Lanczos resampler),
carrier frequency offset and phase, 3-path fading; the independent and stream channel
models and the SNR references of the noise (both described in the package docstring)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

SNR_REFERENCES = ("symbol", "sample", "rml2016")
CHANNEL_MODELS = ("independent", "stream")
FADER_SINUSOIDS = 8      # sinusoids per path of the stream model's fader (as GNU Radio's)
FADING_TAPS = 8          # fractional-delay FIR length of the fading model (as GNU Radio's)
FADING_CENTER = 3        # tap index of a zero delay
LANCZOS = 4              # half-width of the resampling kernel


@dataclass(frozen=True)
class Channel:
    """Impairments after the transmitter. ``cfo_max`` in cycles/sample (0.0025 = 500 Hz at
    200 kHz), ``sro_max`` relative (2.5e-4 = 50 Hz at 200 kHz): the uniform range of the
    independent model, the clip of the stream model's walks; ``delays`` in samples and
    ``magnitudes`` of the fading paths; ``rician_k`` of the first. ``model``, ``stream_length``
    (samples), ``cfo_walk`` (cycles/sample per sample), ``sro_walk`` (relative, per sample)
    and ``doppler`` (cycles/sample) as in the package docstring."""

    sps: int = 8
    cfo_max: float = 0.0025
    sro_max: float = 2.5e-4
    fading: bool = True
    delays: tuple = (0.0, 0.9, 1.7)
    magnitudes: tuple = (1.0, 0.8, 0.3)
    rician_k: float = 4.0
    snr_reference: str = "symbol"
    model: str = "independent"
    stream_length: int = 50_000
    cfo_walk: float = 5e-8
    sro_walk: float = 5e-8
    doppler: float = 5e-6

    def input_length(self, length: int) -> int:
        """Transmitter samples needed for ``length`` received samples."""
        needed = length + FADING_TAPS - 1
        return int(math.ceil(LANCZOS + self.sps + (needed - 1) * (1 + self.sro_max))) + LANCZOS + 2

    def noise_variance(self, power: np.ndarray, snr_db: float) -> np.ndarray:
        if self.snr_reference == "rml2016":  # noise amplitude 10^(-SNR/10): power 10^(-SNR/5)
            return power / 10 ** (snr_db / 5)
        bandwidth = self.sps if self.snr_reference == "symbol" else 1
        return power * bandwidth / 10 ** (snr_db / 10)


# --------------------------------------------------------------------------- resampling
def _lanczos(x: np.ndarray) -> np.ndarray:
    return np.sinc(x) * np.sinc(x / LANCZOS) * (np.abs(x) < LANCZOS)


_STEPS = 1024  # fractional positions are quantised to 1/_STEPS sample
_OFFSETS = np.arange(1 - LANCZOS, LANCZOS + 1)
_KERNEL = _lanczos(np.arange(_STEPS + 1)[:, None] / _STEPS - _OFFSETS[None, :])
_KERNEL = (_KERNEL / _KERNEL.sum(axis=1, keepdims=True)).astype(np.float32)


def resample(tx: np.ndarray, count: int, start: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """``count`` samples of every row read from its ``start`` (rows, 1), in samples after
    the kernel's margin, at its ``rate`` (rows, 1) (Lanczos interpolation, tabulated kernel)."""
    rows = tx.shape[0]
    position = LANCZOS + start + np.arange(count)[None, :] * rate
    base = np.floor(position).astype(np.int64)
    weights = _KERNEL[np.rint((position - base) * _STEPS).astype(np.int64)]
    samples = tx[np.arange(rows)[:, None, None], base[:, :, None] + _OFFSETS[None, None, :]]
    return np.einsum("rck,rck->rc", samples, weights)


# --------------------------------------------------------------------------- fading
def independent_path_gains(rng: np.random.Generator, rows: int, channel: Channel) -> np.ndarray:
    """Static path gains (rows, paths): first path Rician with K = ``rician_k``, others Rayleigh."""
    paths = len(channel.delays)
    gains = (rng.standard_normal((rows, paths)) + 1j * rng.standard_normal((rows, paths))) / np.sqrt(2)
    k = channel.rician_k
    line_of_sight = np.exp(1j * rng.uniform(0, 2 * np.pi, rows))
    gains[:, 0] = np.sqrt(k / (k + 1)) * line_of_sight + np.sqrt(1 / (k + 1)) * gains[:, 0]
    return gains


def fading_taps(gains: np.ndarray, channel: Channel) -> np.ndarray:
    """Per-row fractional-delay FIR (rows, FADING_TAPS) of the paths' ``gains`` (rows, paths),
    scaled by the path magnitudes; a single unit tap when fading is off."""
    taps = np.zeros((gains.shape[0], FADING_TAPS), dtype=np.complex128)
    if not channel.fading:
        taps[:, FADING_CENTER] = 1.0
        return taps
    gains = gains * np.asarray(channel.magnitudes)[None, :]
    index = np.arange(FADING_TAPS)
    for path, delay in enumerate(channel.delays):
        taps += gains[:, path:path + 1] * np.sinc(index - FADING_CENTER - delay)[None, :]
    return taps


class StreamRun:
    """One channel run of the stream model: CFO and SRO random walks and the faders'
    parameters, drawn from ``rng``; :meth:`at` reads the channel state at stream positions."""

    def __init__(self, rng: np.random.Generator, channel: Channel):
        self.channel = channel
        n = channel.stream_length
        self.cfo = np.clip(np.cumsum(rng.normal(0, channel.cfo_walk, n)), -channel.cfo_max, channel.cfo_max)
        self.phase = 2 * np.pi * np.cumsum(self.cfo)
        self.sro = np.clip(np.cumsum(rng.normal(0, channel.sro_walk, n)), -channel.sro_max, channel.sro_max)
        paths = len(channel.delays)
        self.angles = rng.uniform(0, 2 * np.pi, (paths, FADER_SINUSOIDS))
        self.fader_phases = rng.uniform(0, 2 * np.pi, (paths, FADER_SINUSOIDS))
        self.los_angle, self.los_phase = rng.uniform(0, 2 * np.pi, 2)

    def path_gains(self, t: np.ndarray) -> np.ndarray:
        """Sum-of-sinusoids gains (rows, paths) at sample times ``t`` (rows,); unit mean power,
        Rician K = ``rician_k`` on the first path."""
        doppler = 2 * np.pi * self.channel.doppler * np.cos(self.angles)  # (paths, sinusoids)
        argument = doppler[None] * t[:, None, None] + self.fader_phases[None]
        gains = np.exp(1j * argument).sum(axis=2) / np.sqrt(FADER_SINUSOIDS)
        k = self.channel.rician_k
        los = np.exp(1j * (2 * np.pi * self.channel.doppler * np.cos(self.los_angle) * t + self.los_phase))
        gains[:, 0] = np.sqrt(k / (k + 1)) * los + np.sqrt(1 / (k + 1)) * gains[:, 0]
        return gains

    def at(self, rng: np.random.Generator, rows: int, span: int):
        """Rate (rows, 1), CFO (rows, 1), start phase (rows, 1) and path gains (rows, paths)
        of ``rows`` windows of ``span`` samples read at uniformly random positions."""
        t = rng.integers(0, self.channel.stream_length - span, rows)
        return (1 + self.sro[t][:, None], self.cfo[t][:, None], self.phase[t][:, None],
                self.path_gains(t.astype(np.float64)))


# --------------------------------------------------------------------------- channel application
def channel_state(rng: np.random.Generator, rows: int, span: int, channel: Channel, run: Optional[StreamRun]):
    """(timing start, rate, cfo, phase, path gains) of ``rows`` windows, each (rows, 1) but
    the gains (rows, paths): the start is uniform within one symbol, the rest read from
    ``run`` (stream model) or drawn independently per window."""
    start = rng.uniform(0, channel.sps, (rows, 1))
    if channel.model == "stream":
        if run is None:
            raise ValueError("the stream channel model reads its windows from a StreamRun; pass run=")
        return (start, *run.at(rng, rows, span))
    rate = 1 + rng.uniform(-channel.sro_max, channel.sro_max, (rows, 1))
    cfo = rng.uniform(-channel.cfo_max, channel.cfo_max, (rows, 1))
    phase = rng.uniform(0, 2 * np.pi, (rows, 1))
    return start, rate, cfo, phase, independent_path_gains(rng, rows, channel)


def apply_channel(rng: np.random.Generator, tx: np.ndarray, length: int, channel: Channel,
                  run: Optional[StreamRun] = None):
    """Resample, rotate (CFO + phase) and fade ``tx``; returns the pre-noise received
    windows (rows, length) and each window's channel power gain. ``run``: the stream
    model's channel run (None for the independent model)."""
    rows = tx.shape[0]
    span = length + FADING_TAPS - 1
    start, rate, cfo, phase, gains = channel_state(rng, rows, span, channel, run)
    x = resample(tx, span, start, rate)
    rotation = (2 * np.pi * cfo * np.arange(x.shape[1])[None, :] + phase).astype(np.float32)
    x = x * (np.cos(rotation) + 1j * np.sin(rotation))
    taps = fading_taps(gains, channel).astype(np.complex64)
    rx = np.zeros((rows, length), dtype=np.complex64)
    for j in range(FADING_TAPS):
        shift = FADING_TAPS - 1 - j
        rx += taps[:, j:j + 1] * x[:, shift:shift + length]
    power_in = np.mean(np.abs(x) ** 2, axis=1)
    power_out = np.mean(np.abs(rx) ** 2, axis=1)
    fallback = np.sum(np.abs(taps) ** 2, axis=1)
    safe_in = np.where(power_in > 1e-30, power_in, 1.0)
    gain = np.where(power_in > 1e-30, power_out / safe_in, fallback)
    return rx, gain
