"""decimate: keep every k-th sample and interpolate back (the resampling baseline).

Level k sends ceil(L/k) complex samples as ``sample_bits``-bit floats (2 ceil(L/k)
sample_bits bits) -- samples 0, k, 2k, ... -- and the receiver interpolates the rest:
``linear`` (between kept samples, the last one held) or ``fft`` (band-limited:
zero-padding the spectrum of the kept samples, i.e. periodic sinc interpolation).
``antialias: true`` low-passes the window to 1/(2k) cycles per sample (FFT brick wall)
before decimating. Nothing is fitted.
"""
from __future__ import annotations

import math

import torch

from amrbench.api import AmrbenchError, Compressor
from amrbench.hookspecs import hookimpl


def _brickwall(x: torch.Tensor, keep: int) -> torch.Tensor:
    """Keep the ``keep`` lowest-|f| FFT bins of (N, 2, L) real I/Q (as complex)."""
    z = torch.complex(x[:, 0].double(), x[:, 1].double())
    spec = torch.fft.fft(z)
    freqs = torch.fft.fftfreq(z.shape[-1]).abs()
    mask = torch.zeros_like(freqs, dtype=torch.bool)
    mask[torch.argsort(freqs, stable=True)[:keep]] = True
    z = torch.fft.ifft(spec * mask.to(spec.device))
    return torch.stack([z.real, z.imag], 1).to(x.dtype)


class Decimate(Compressor):
    """Decimation by k and interpolation back (linear or FFT), levels = factors k."""

    name = "decimate"
    version = "1"
    defaults = {"factors": [2, 4, 8, 16, 32], "interpolation": "linear", "antialias": False, "sample_bits": 32}
    choices = {"interpolation": ("linear", "fft"), "antialias": (True, False)}

    def __init__(self, **params):
        super().__init__(**params)
        factors = self.params["factors"]
        if not isinstance(factors, list) or not factors or not all(isinstance(k, int) and not isinstance(k, bool)
                                                                    and k >= 1 for k in factors):
            raise AmrbenchError(f"compressor 'decimate': factors must be a list of integers >= 1, got {factors!r}")
        if self.params["sample_bits"] not in (8, 16, 32, 64):
            raise AmrbenchError("compressor 'decimate': sample_bits must be 8, 16, 32 or 64")
        self.length = None

    def fit(self, ctx, train):
        self.length = train.length

    def get_state(self):
        return {"length": self.length}

    def set_state(self, state):
        self.length = state["length"]

    def levels(self):
        return list(self.params["factors"])

    def level_label(self, level):
        return f"k{level}"

    def encode(self, x, level):
        k = int(level)
        if self.params["antialias"] and k > 1:
            x = _brickwall(x, math.ceil(x.shape[-1] / k))
        return {"samples": x[..., ::k].contiguous(), "length": x.shape[-1]}

    def decode(self, code, level):
        k, s, length = int(level), code["samples"], int(code["length"])
        m = s.shape[-1]
        if k == 1:
            return s
        if self.params["interpolation"] == "fft":
            # periodic sinc interpolation to m * k >= length samples, cropped to length
            z = torch.complex(s[:, 0].double(), s[:, 1].double())
            spec = torch.fft.fft(z)
            padded = torch.zeros(z.shape[0], m * k, dtype=spec.dtype, device=spec.device)
            head = (m + 1) // 2
            padded[:, :head] = spec[:, :head]
            if m - head:
                padded[:, -(m - head):] = spec[:, head:]
            z = torch.fft.ifft(padded)[:, :length] * k
            return torch.stack([z.real, z.imag], 1).to(s.dtype)
        t = torch.arange(length, device=s.device)
        left = (t // k).clamp(max=m - 1)
        right = (left + 1).clamp(max=m - 1)
        frac = ((t - left * k).float() / k).clamp(max=1.0)
        frac = torch.where(right == left, torch.zeros_like(frac), frac)
        return s[..., left] * (1 - frac) + s[..., right] * frac

    def alphabet(self, level):
        return None

    def symbols(self, code, level):
        return None

    def bits(self, level, length):
        return float(2 * math.ceil(length / int(level)) * int(self.params["sample_bits"]))


@hookimpl
def amrbench_register(registry):
    registry.add(Decimate)
