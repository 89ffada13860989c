"""torchsig6-synth: the six TorchSig classes of the HQARF paper, after the TorchSig v0.6.1
``ModulationsDataset`` level-0 recipe (no TorchSig dependency; written from the recipe in
the project's research notes, not from TorchSig's code).

Classes (label order): 4ask, 8pam, 16psk, 32qam_cross, 2fsk, ofdm-256.

- Linear classes: constellation divided by its mean |s| (4ask: levels linspace(-1, 1, 4);
  8pam: *unipolar* linspace(0, 1, 8), hence a carrier/DC component as in v0.6.1; 16psk:
  exp(j 2 pi k / 16); 32qam_cross: the 6 x 6 grid linspace(-1, 1, 6)^2 without its 4
  corners), zero-stuffed to 2 samples per symbol, root-raised-cosine filtered (rolloff
  ``rolloff`` = 0.35, ``rrc_span`` symbols; ``random_rolloff: true`` draws U(0.15, 0.6)
  per signal, the 2.x-style pulse randomisation), centre slice of the convolution.
- 2fsk: continuous-phase binary FSK, rectangular frequency pulse, ``fsk_sps`` = 16
  samples per symbol (8x oversampling of the +-0.5 tones), modulation index h = 1 with
  probability 0.5 else U(0.7, 1.0) per signal: instantaneous frequency s h / (2 sps)
  cycles per sample for symbols s = +-1. (v0.6.1 then resamples by its bandwidth; not
  reproduced.)
- ofdm-256: 256 subcarriers on bins -128..127 of a 512-point IFFT (2x oversampling);
  cyclic prefix 1/8 or 1/4 of the symbol; subcarrier constellations from {bpsk, qpsk,
  16qam, 64qam, 256qam, 1024qam}, one per signal or (probability 0.5) drawn per
  subcarrier; DC subcarrier on or off; sidelobe suppression either a windowed-sinc
  low-pass (cutoff 0.3 cycles/sample) or a raised-cosine taper over the start and end
  of each symbol (``win_start``, approximated); a random start offset within a symbol.
- Level 0: AWGN at the SNR label (``snr_values``, default [100] dB: TorchSig's
  ``TargetSNR(100)``, SNR = signal power over noise power per sample), then L-inf
  normalisation (divide by max |x|), then (2, L) [real, imag].

Seeded and vectorised: each (class, SNR) group is one batch of NumPy operations drawn
from its own stream (seed, dataset, class, SNR). Defaults: 1000 signals per class and SNR,
``length`` 1024 (the paper used 8000 train + 800 test per class).
"""
from __future__ import annotations

import numpy as np

from amrbench.api import Dataset, Param, SignalSet, derive_seed
from amrbench.hookspecs import hookimpl

CLASSES = ["4ask", "8pam", "16psk", "32qam_cross", "2fsk", "ofdm-256"]
OFDM_MODS = ("bpsk", "qpsk", "16qam", "64qam", "256qam", "1024qam")


# --------------------------------------------------------------------------- constellations
def constellation(name: str) -> np.ndarray:
    if name == "4ask":
        points = np.linspace(-1, 1, 4).astype(complex)
    elif name == "8pam":
        points = np.linspace(0, 1, 8).astype(complex)
    elif name == "16psk":
        points = np.exp(2j * np.pi * np.arange(16) / 16)
    elif name == "32qam_cross":
        grid = np.linspace(-1, 1, 6)
        points = (grid[:, None] + 1j * grid[None, :]).ravel()
        corner = (np.abs(points.real) == 1) & (np.abs(points.imag) == 1)
        points = points[~corner]
    else:
        raise KeyError(name)
    return points / np.mean(np.abs(points))


def square_qam(m: int) -> np.ndarray:
    """Unit-average-power square QAM (bpsk for m = 2)."""
    if m == 2:
        return np.array([-1.0, 1.0], dtype=complex)
    side = int(round(np.sqrt(m)))
    grid = np.arange(-(side - 1), side, 2, dtype=float)
    points = (grid[:, None] + 1j * grid[None, :]).ravel()
    return points / np.sqrt(np.mean(np.abs(points) ** 2))


def rrc(sps: int, rolloff: np.ndarray, span: int) -> np.ndarray:
    """Root-raised-cosine taps, one row per rolloff value, unit energy."""
    t = (np.arange(span * sps + 1) - span * sps / 2) / sps
    b = np.asarray(rolloff, dtype=float).reshape(-1, 1)
    t = np.broadcast_to(t, (b.shape[0], t.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = (np.sin(np.pi * t * (1 - b)) + 4 * b * t * np.cos(np.pi * t * (1 + b))) / (
            np.pi * t * (1 - (4 * b * t) ** 2))
        h = np.where(t == 0, 1 - b + 4 * b / np.pi, h)
        bb = np.maximum(b, 1e-12)
        edge = np.isclose(np.abs(t), 1 / (4 * bb))
        h_edge = bb / np.sqrt(2) * ((1 + 2 / np.pi) * np.sin(np.pi / (4 * bb))
                                    + (1 - 2 / np.pi) * np.cos(np.pi / (4 * bb)))
        h = np.where(edge, np.broadcast_to(h_edge, h.shape), h)
    return h / np.sqrt((h ** 2).sum(1, keepdims=True))


def fft_filter(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Full linear convolution of each row of ``x`` with ``taps`` (one row or one per row)."""
    size = x.shape[1] + taps.shape[1] - 1
    nfft = 1 << int(np.ceil(np.log2(size)))
    return np.fft.ifft(np.fft.fft(x, nfft) * np.fft.fft(taps, nfft), axis=1)[:, :size]


# --------------------------------------------------------------------------- waveforms
def linear(rng, name: str, n: int, length: int, rolloff, span: int) -> np.ndarray:
    sps = 2
    points = constellation(name)
    count = length // sps + span + 2
    symbols = points[rng.integers(0, len(points), (n, count))]
    up = np.zeros((n, count * sps), dtype=complex)
    up[:, ::sps] = symbols
    full = fft_filter(up, rrc(sps, rolloff, span))
    start = (full.shape[1] - length) // 2
    return full[:, start:start + length]


def fsk2(rng, n: int, length: int, sps: int) -> np.ndarray:
    h = np.where(rng.random(n) < 0.5, 1.0, rng.uniform(0.7, 1.0, n))
    symbols = rng.choice([-1.0, 1.0], (n, length // sps + 1))
    freq = np.repeat(symbols, sps, axis=1)[:, :length] * (h[:, None] / (2 * sps))
    phase = 2 * np.pi * np.cumsum(freq, axis=1)
    return np.exp(1j * phase)


def _ofdm_subcarriers(rng, n: int, symbols: int, carriers: int) -> np.ndarray:
    tables = [square_qam(m) for m in (2, 4, 16, 64, 256, 1024)]
    sizes = np.array([len(t) for t in tables])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate(tables)
    fixed = rng.integers(0, len(tables), n)
    per_carrier = rng.random(n) < 0.5
    choice = np.where(per_carrier[:, None, None], rng.integers(0, len(tables), (n, symbols, carriers)),
                      fixed[:, None, None])
    index = np.floor(rng.random((n, symbols, carriers)) * sizes[choice]).astype(np.int64)
    return flat[offsets[choice] + index]


def ofdm(rng, n: int, length: int, carriers: int = 256, nfft: int = 512) -> np.ndarray:
    out = np.empty((n, length), dtype=complex)
    cp_len = np.where(rng.random(n) < 0.5, nfft // 8, nfft // 4)
    dc_off = rng.random(n) < 0.5
    use_lpf = rng.random(n) < 0.5
    for cp in np.unique(cp_len):
        rows = np.flatnonzero(cp_len == cp)
        m, sym_len = len(rows), nfft + int(cp)
        count = int(np.ceil(length / sym_len)) + 2
        data = _ofdm_subcarriers(rng, m, count, carriers)
        bins = np.zeros((m, count, nfft), dtype=complex)
        k = np.arange(-carriers // 2, carriers // 2)
        bins[:, :, k % nfft] = data
        bins[dc_off[rows], :, 0] = 0
        body = np.fft.ifft(bins, axis=2) * np.sqrt(nfft)
        symbols = np.concatenate([body[:, :, -int(cp):], body], axis=2)  # cyclic prefix
        taper_len = max(2, int(cp) // 4)
        ramp = 0.5 * (1 - np.cos(np.pi * (np.arange(taper_len) + 0.5) / taper_len))
        window = np.ones(sym_len)
        window[:taper_len], window[-taper_len:] = ramp, ramp[::-1]
        tapered = ~use_lpf[rows]
        symbols[tapered] = symbols[tapered] * window
        stream = symbols.reshape(m, count * sym_len)
        lpf = use_lpf[rows]
        if lpf.any():
            span = 64
            t = np.arange(-span, span + 1)
            taps = (0.6 * np.sinc(0.6 * t) * np.hamming(t.size))[None, :]
            stream[lpf] = fft_filter(stream[lpf], taps)[:, span:span + stream.shape[1]]
        start = rng.integers(0, sym_len, m)
        idx = start[:, None] + np.arange(length)[None, :]
        out[rows] = np.take_along_axis(stream, idx, axis=1)
    return out


# --------------------------------------------------------------------------- plugin
class SynthTorchSig6(Dataset):
    """TorchSig v0.6.1-style 6-class set of HQARF (4ask, 8pam, 16psk, 32qam_cross, 2fsk, ofdm-256), L-inf normalised."""

    name = "torchsig6-synth"
    version = "1"
    classes = CLASSES
    defaults = {"per_class_per_snr": 1000, "length": 1024, "snr_values": [100], "rolloff": 0.35,
                "random_rolloff": False, "rrc_span": 16, "fsk_sps": 16}
    types = {"per_class_per_snr": Param(int, 1), "length": Param(int, 16), "rrc_span": Param(int, 2),
             "fsk_sps": Param(int, 2), "snr_values": Param(list, items=float, nonempty=True),
             "rolloff": Param(float, 0, 1), "random_rolloff": Param(bool)}

    def snr_values(self, snr=None):
        values = [float(v) for v in self.params["snr_values"]]
        return values if snr is None else [v for v in values if float(snr[0]) <= v <= float(snr[1])]

    def _group(self, rng, name: str, n: int, length: int) -> np.ndarray:
        p = self.params
        if name in ("4ask", "8pam", "16psk", "32qam_cross"):
            rolloff = rng.uniform(0.15, 0.6, n) if p["random_rolloff"] else np.array([float(p["rolloff"])])
            return linear(rng, name, n, length, rolloff, p["rrc_span"])
        if name == "2fsk":
            return fsk2(rng, n, length, p["fsk_sps"])
        return ofdm(rng, n, length)

    def load(self, seed, snr=None):
        p = self.params
        n, length = p["per_class_per_snr"], p["length"]
        values = [float(v) for v in p["snr_values"]]
        if snr is not None:
            values = [v for v in values if float(snr[0]) <= v <= float(snr[1])]
        xs, ys, snrs = [], [], []
        for c, name in enumerate(CLASSES):
            for value in values:
                rng = np.random.default_rng(derive_seed(seed, self.name, name, f"{value:g}"))
                z = self._group(rng, name, n, length)
                power = np.mean(np.abs(z) ** 2, axis=1, keepdims=True)
                sigma = np.sqrt(power * 10 ** (-value / 10) / 2)
                z = z + sigma * (rng.standard_normal((n, length)) + 1j * rng.standard_normal((n, length)))
                z = z / np.abs(z).max(axis=1, keepdims=True)
                xs.append(np.stack([z.real, z.imag], axis=1).astype(np.float32))
                ys.append(np.full(n, c))
                snrs.append(np.full(n, value, dtype=np.float32))
        if not xs:
            return SignalSet(np.zeros((0, 2, length), np.float32), np.zeros(0), np.zeros(0), list(CLASSES),
                             name=self.name)
        return SignalSet(np.concatenate(xs), np.concatenate(ys), np.concatenate(snrs), list(CLASSES), name=self.name)


@hookimpl
def amrbench_register(registry):
    registry.add(SynthTorchSig6)
