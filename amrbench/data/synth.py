"""Seeded, vectorised synthetic AMR signal generators shared by the synthetic dataset plugins.

One (class, SNR) group of signals is rendered at once, every step vectorised over the
group (no per-signal Python):

1. waveform at ``sps`` samples per symbol, scaled to unit average power over the group
   (linear modulations with root-raised-cosine pulses, continuous-phase FSK/GFSK/GMSK,
   AM/FM driven by a band-limited "speech-like" audio source with silent segments);
2. random timing offset within one symbol and a sample-rate offset (Lanczos resampler);
3. carrier frequency offset and carrier phase;
4. 3-path fading with fractional delays (first path Rician, others Rayleigh), after the
   GNU Radio ``dynamic_channel_model`` arguments of the RML2016.10a generator;
5. complex AWGN at the labelled SNR;
6. per-window normalisation (``l1``: sum |x| = 1 as in RML2016.10a, ``energy``:
   sum |x|^2 = 1, ``rms``: mean |x|^2 = 1, ``none``).

SNR definition: with ``snr_reference="symbol"`` (default) the label is Es/N0 of the
received, pre-noise signal: the noise variance per complex sample is
``P * sps / 10**(snr/10)``, where ``P`` is the group's average transmit power (1) times
the window's own channel power gain; i.e. the SNR in a bandwidth of fs/sps, the same
reference for analog classes. ``snr_reference="sample"`` drops the factor ``sps``
(signal power over the total noise power of the sampled band). ``"rml2016"`` reproduces
the original generator's quirk: GNU Radio's noise *amplitude* 10^(-SNR/10), i.e. a
per-sample SNR of twice the label in dB (36 dB at the label 18, -20 dB at -10).

Channel models (steps 2-4). ``"independent"``: every window draws its own offsets
(uniform in +-``cfo_max`` / +-``sro_max``), a uniform carrier phase and static
Rician/Rayleigh path gains. ``"stream"`` follows how the original generator cut its
windows: one long channel run per dataset seed of ``stream_length`` samples, along which
the CFO and SRO are clipped random walks (``cfo_walk`` / ``sro_walk`` per sample, GNU
Radio's 0.01 Hz at 200 kHz), the carrier phase is the CFO's accumulated phase, and every
path gain is a sum-of-sinusoids fader (8 sinusoids, Doppler ``doppler`` cycles/sample,
1 Hz at 200 kHz); each window is read at a uniformly random position of that run. So a
window sees a CFO of a few Hz and the multipath of one slowly drifting channel, not a
fresh Rayleigh draw. The original re-ran its channel from one fixed seed and cut longer
runs for some classes (26,664-80,000 samples), which made the channel state's
distribution class-dependent; here every class reads the same run over the same span.

Every group draws from its own random streams seeded by (seed, dataset, class, SNR), so
a group is identical whichever other groups are generated: an SNR filter only skips work
(the stream channel's run depends on (seed, dataset) only).
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Optional

import numpy as np
from scipy.signal import fftconvolve

from amrbench.api import AmrbenchError, Dataset, SignalSet, derive_seed

# A waveform maker: (rng, count, length, sps) -> complex array (count, length).
Waveform = Callable[[np.random.Generator, int, int, int], np.ndarray]

NORMS = ("l1", "energy", "rms", "none")
SNR_REFERENCES = ("symbol", "sample", "rml2016")
CHANNEL_MODELS = ("independent", "stream")
FADER_SINUSOIDS = 8      # sinusoids per path of the stream model's fader (as GNU Radio's)
FADING_TAPS = 8          # fractional-delay FIR length of the fading model (as GNU Radio's)
FADING_CENTER = 3        # tap index of a zero delay
LANCZOS = 4              # half-width of the resampling kernel


# --------------------------------------------------------------------------- pulses
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


# --------------------------------------------------------------------------- helpers
def _upsample(symbols: np.ndarray, sps: int) -> np.ndarray:
    up = np.zeros((symbols.shape[0], symbols.shape[1] * sps), dtype=symbols.dtype)
    up[:, ::sps] = symbols
    return up


def _filter_rows(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    return fftconvolve(x, taps[None, :], axes=1)


# --------------------------------------------------------------------------- waveforms
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
            return _filter_rows(_upsample(symbols, sps), taps)[:, start:start + length]
        inphase = _filter_rows(_upsample(symbols.real, sps), taps)[:, start:start + length]
        delay = start - sps // 2
        quadrature = _filter_rows(_upsample(symbols.imag, sps), taps)[:, delay:delay + length]
        return inphase + 1j * quadrature

    return make


def cpm(levels: int, h: float, bt: Optional[float] = None, span: int = 4) -> Waveform:
    """Continuous-phase M-ary FSK (CPFSK, GFSK, GMSK): symbols in {+-1, +-3, ...}, phase
    change pi*h*symbol per symbol, spread by :func:`frequency_pulse`."""
    alphabet = np.arange(-(levels - 1), levels, 2).astype(np.float64)

    def make(rng, count, length, sps):
        pulse = frequency_pulse(sps, bt, span)
        nsym = -(-length // sps) + span + 2
        symbols = alphabet[rng.integers(0, levels, (count, nsym))]
        freq = _filter_rows(_upsample(symbols, sps), pulse)[:, :nsym * sps]
        phase = np.pi * h * np.cumsum(freq, axis=1)
        start = len(pulse)
        return np.exp(1j * phase[:, start:start + length])

    return make


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


# --------------------------------------------------------------------------- channel
@dataclass(frozen=True)
class Channel:
    """Impairments after the transmitter. ``cfo_max`` in cycles/sample (0.0025 = 500 Hz at
    200 kHz), ``sro_max`` relative (2.5e-4 = 50 Hz at 200 kHz): the uniform range of the
    independent model, the clip of the stream model's walks; ``delays`` in samples and
    ``magnitudes`` of the fading paths; ``rician_k`` of the first. ``model``, ``stream_length``
    (samples), ``cfo_walk`` (cycles/sample per sample), ``sro_walk`` (relative, per sample)
    and ``doppler`` (cycles/sample) as in the module docstring."""

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


@functools.lru_cache(maxsize=None)
def source_fingerprint(plugin_class) -> str:
    """sha256 (16 hex digits) of this module's and the plugin module's source files."""
    digest = hashlib.sha256()
    for path in sorted({__file__, inspect.getsourcefile(plugin_class) or __file__}):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


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


def normalise(z: np.ndarray, norm: str) -> np.ndarray:
    """Per-window normalisation of complex windows (rows, length)."""
    if norm == "none":
        return z
    if norm == "l1":
        scale = np.sum(np.abs(z), axis=1, keepdims=True)
    elif norm == "energy":
        scale = np.sqrt(np.sum(np.abs(z) ** 2, axis=1, keepdims=True))
    elif norm == "rms":
        scale = np.sqrt(np.mean(np.abs(z) ** 2, axis=1, keepdims=True))
    else:
        raise AmrbenchError(f"unknown normalisation {norm!r}; allowed: {', '.join(NORMS)}")
    return z / np.where(scale > 0, scale, 1.0)


# --------------------------------------------------------------------------- generation
def group_streams(seed: int, dataset: str, label: str, snr_db: float) -> list:
    """Independent generators (signal, channel, noise) of one (class, SNR) group."""
    root = np.random.SeedSequence(derive_seed(seed, dataset, label, float(snr_db)))
    return [np.random.default_rng(s) for s in root.spawn(3)]


def stream_run(seed: int, dataset: str, channel: Channel) -> Optional[StreamRun]:
    """The stream model's channel run of (seed, dataset); None for the independent model."""
    if channel.model != "stream":
        return None
    return StreamRun(np.random.default_rng(derive_seed(seed, dataset, "stream-channel")), channel)


def render_group(waveform: Waveform, count: int, length: int, snr_db: float, streams: list,
                 channel: Channel, noise: bool = True, run: Optional[StreamRun] = None) -> np.ndarray:
    """Received windows (count, length) complex64 of one group before normalisation.
    With ``noise=False`` the same windows without their AWGN (for checks); ``run``: the
    stream model's channel run (required by that model)."""
    signal_rng, channel_rng, noise_rng = streams
    tx = waveform(signal_rng, count, channel.input_length(length), channel.sps)
    power = np.mean(np.abs(tx) ** 2)
    tx = (tx / np.sqrt(power) if power > 0 else tx).astype(np.complex64)
    rx, gain = apply_channel(channel_rng, tx, length, channel, run)
    if not noise:
        return rx
    sigma = np.sqrt(channel.noise_variance(gain, snr_db) / 2).astype(np.float32)[:, None]
    real = noise_rng.standard_normal((count, length), dtype=np.float32)
    imag = noise_rng.standard_normal((count, length), dtype=np.float32)
    return rx + sigma * (real + 1j * imag)


def generate_threads() -> int:
    """Worker threads for group rendering (numpy releases the GIL in the heavy steps)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def generate(dataset: str, waveforms: dict, snr_values, per_class_per_snr: int, length: int,
             seed: int, channel: Channel, norm: str) -> SignalSet:
    """All (class, SNR) groups, class-major then SNR, as one float32 SignalSet. Groups are
    rendered on a few threads; each has its own random streams, so the result does not
    depend on the scheduling."""
    classes = list(waveforms)
    snr_values = [float(s) for s in snr_values]
    per = int(per_class_per_snr)
    x = np.empty((len(classes) * len(snr_values) * per, 2, length), dtype=np.float32)
    groups = [(label, snr_db) for label in classes for snr_db in snr_values]
    run = stream_run(seed, dataset, channel)

    def render(index: int) -> None:
        label, snr_db = groups[index]
        streams = group_streams(seed, dataset, label, snr_db)
        z = normalise(render_group(waveforms[label], per, length, snr_db, streams, channel, run=run), norm)
        x[index * per:(index + 1) * per, 0] = z.real
        x[index * per:(index + 1) * per, 1] = z.imag

    with ThreadPoolExecutor(generate_threads()) as pool:
        list(pool.map(render, range(len(groups))))
    y = np.repeat(np.arange(len(classes)), len(snr_values) * per)
    snr = np.tile(np.repeat(np.asarray(snr_values, dtype=np.float32), per), len(classes))
    return SignalSet(x, y, snr, classes, name=dataset)


# --------------------------------------------------------------------------- plugin base
COMMON_DEFAULTS = {
    "per_class_per_snr": 1000,
    "length": 128,
    "snr_range": [-20, 18, 2],
    "sps": 8,
    "rolloff": 0.35,
    "cfo_max": 0.0025,
    "sro_max": 2.5e-4,
    "fading": True,
    "rician_k": 4.0,
    "snr_reference": "symbol",
    "channel_model": "independent",
    "stream_length": 50_000,
    "cfo_walk": 5e-8,
    "sro_walk": 5e-8,
    "doppler": 5e-6,
    "norm": "rms",
    "silence": 0.3,
}


class SynthDataset(Dataset):
    """Base of the synthetic dataset plugins: parameter checks, SNR grid, on-disk cache.
    Subclasses set ``classes``, ``defaults`` and implement :meth:`waveforms`."""

    classes: ClassVar[list] = []

    def __init__(self, **params):
        super().__init__(**params)
        self._check_params()

    # ----------------------------------------------------------- parameters
    def _fail(self, key: str, expected: str):
        raise AmrbenchError(f"dataset {self.name!r}: parameter {key!r} must be {expected}, got {self.params[key]!r}")

    def _check_params(self) -> None:
        p = self.params
        for key, low in (("per_class_per_snr", 1), ("length", 16), ("sps", 2)):
            if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] < low:
                self._fail(key, f"an integer >= {low}")
        rng = p["snr_range"]
        if (not isinstance(rng, (list, tuple)) or len(rng) != 3 or not all(isinstance(v, (int, float)) for v in rng)
                or rng[2] <= 0 or rng[1] < rng[0]):
            self._fail("snr_range", "[low, high, step] with high >= low and step > 0")
        for key, lo, hi in (("rolloff", 0.0, 1.0), ("cfo_max", 0.0, 0.5), ("sro_max", 0.0, 0.1),
                            ("rician_k", 0.0, 1e6), ("silence", 0.0, 1.0), ("cfo_walk", 0.0, 0.01),
                            ("sro_walk", 0.0, 0.01), ("doppler", 0.0, 0.5)):
            if not isinstance(p[key], (int, float)) or not lo <= p[key] <= hi:
                self._fail(key, f"a number in [{lo}, {hi}]")
        if not isinstance(p["fading"], bool):
            self._fail("fading", "true or false")
        if p["channel_model"] not in CHANNEL_MODELS:
            self._fail("channel_model", f"one of {', '.join(CHANNEL_MODELS)}")
        shortest = 2 * (p["length"] + FADING_TAPS)
        if not isinstance(p["stream_length"], int) or isinstance(p["stream_length"], bool) \
                or p["stream_length"] < shortest:
            self._fail("stream_length", f"an integer >= {shortest} (twice the window)")
        if p["snr_reference"] not in SNR_REFERENCES:
            self._fail("snr_reference", f"one of {', '.join(SNR_REFERENCES)}")
        if p["norm"] not in NORMS + ("auto",):
            self._fail("norm", f"one of {', '.join(NORMS)}")

    def snr_values(self, snr: Optional[tuple] = None) -> list:
        """The SNR grid, restricted to [lo, hi] when ``snr`` is given."""
        lo, hi, step = self.params["snr_range"]
        count = int(math.floor((hi - lo) / step + 1e-9)) + 1
        values = [float(round(lo + i * step, 9)) for i in range(count)]
        if snr is not None:
            values = [v for v in values if float(snr[0]) <= v <= float(snr[1])]
        return values

    def channel(self) -> Channel:
        p = self.params
        return Channel(sps=p["sps"], cfo_max=float(p["cfo_max"]), sro_max=float(p["sro_max"]),
                       fading=p["fading"], rician_k=float(p["rician_k"]), snr_reference=p["snr_reference"],
                       model=p["channel_model"], stream_length=p["stream_length"], cfo_walk=float(p["cfo_walk"]),
                       sro_walk=float(p["sro_walk"]), doppler=float(p["doppler"]))

    def norm(self) -> str:
        return self.params["norm"]

    def waveforms(self) -> dict:
        """Class name -> :data:`Waveform`, in label order."""
        raise NotImplementedError

    # ----------------------------------------------------------- generation and cache
    def generate(self, seed: int, snr: Optional[tuple] = None) -> SignalSet:
        """Generate without touching the cache."""
        values = self.snr_values(snr)
        if not values:
            raise AmrbenchError(f"dataset {self.name!r}: no SNR of {self.snr_values()} lies in {list(snr)}")
        return generate(self.name, self.waveforms(), values, self.params["per_class_per_snr"],
                        self.params["length"], seed, self.channel(), self.norm())

    def cache_key(self, seed: int, snr: Optional[tuple] = None) -> dict:
        # the source fingerprint keeps a set cached by an older generator from being reused
        # when the code changed but nobody bumped the plugin's version
        return {"dataset": self.name, "version": self.version, "params": self.params,
                "seed": int(seed), "snr": self.snr_values(snr), "code": source_fingerprint(type(self))}

    def cache_path(self, seed: int, snr: Optional[tuple] = None) -> Path:
        from amrbench.data import store

        return store.cache_path(self.name, self.cache_key(seed, snr))

    def load(self, seed: int, snr: Optional[tuple] = None) -> SignalSet:
        from amrbench.data import store

        return store.cached_signalset(self.cache_path(seed, snr), lambda: self.generate(seed, snr))
