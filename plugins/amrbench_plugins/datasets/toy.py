"""Toy: a tiny, fast synthetic PSK/QAM set for tests and smoke runs (not for tables).

Four classes (BPSK, QPSK, 8PSK, QAM16), random symbols at ``sps`` samples per symbol
with a rectangular pulse, random carrier phase and a small frequency offset, AWGN at
Es/N0 = SNR over ``snr_values``; unit average power per signal. Seeded by ``seed``.
"""
import numpy as np

from amrbench.api import Dataset, Param, SignalSet
from amrbench.hookspecs import hookimpl

CLASSES = ["BPSK", "QPSK", "8PSK", "QAM16"]


def _constellation(name: str) -> np.ndarray:
    if name == "QAM16":
        grid = np.arange(-3, 4, 2)
        points = (grid[:, None] + 1j * grid[None, :]).ravel()
    else:
        m = {"BPSK": 2, "QPSK": 4, "8PSK": 8}[name]
        points = np.exp(2j * np.pi * np.arange(m) / m)
    return points / np.sqrt(np.mean(np.abs(points) ** 2))


class Toy(Dataset):
    """Tiny 4-class PSK/QAM generator for tests and smoke runs."""

    name = "toy"
    classes = CLASSES
    defaults = {"per_class_per_snr": 50, "length": 128, "sps": 8, "snr_values": [0, 10, 18]}
    types = {"per_class_per_snr": Param(int, 1), "length": Param(int, 1), "sps": Param(int, 1),
             "snr_values": Param(list, items=float, nonempty=True)}

    def snr_values(self, snr=None):
        values = [float(v) for v in self.params["snr_values"]]
        return values if snr is None else [v for v in values if float(snr[0]) <= v <= float(snr[1])]

    def load(self, seed, snr=None):
        p = self.params
        rng = np.random.default_rng(seed)
        n, length = p["per_class_per_snr"], p["length"]
        xs, ys, snrs = [], [], []
        for c, name in enumerate(CLASSES):
            for value in p["snr_values"]:
                points = _constellation(name)
                symbols = points[rng.integers(0, len(points), (n, -(-length // p["sps"])))]
                baseband = np.repeat(symbols, p["sps"], axis=1)[:, :length]
                t = np.arange(length)
                rotation = np.exp(1j * (rng.uniform(0, 2 * np.pi, (n, 1)) + 2 * np.pi * rng.uniform(-0.01, 0.01, (n, 1)) * t))
                noise = (rng.normal(size=(n, length)) + 1j * rng.normal(size=(n, length))) * np.sqrt(10 ** (-value / 10) / 2)
                signal = baseband * rotation + noise
                signal /= np.sqrt(np.mean(np.abs(signal) ** 2, axis=1, keepdims=True))
                xs.append(np.stack([signal.real, signal.imag], axis=1))
                ys.append(np.full(n, c))
                snrs.append(np.full(n, value))
        return SignalSet(np.concatenate(xs).astype(np.float32), np.concatenate(ys), np.concatenate(snrs).astype(np.float32),
                         list(CLASSES), name="toy")


@hookimpl
def amrbench_register(registry):
    registry.add(Toy)
