"""Shared code of the compressors and the ``compress`` protocol: bits accounting,
compression ratios, distortion and codebook-usage statistics.

Bits are counted per signal (one (2, L) I/Q window of L complex samples):

- a discrete code of ``n`` symbols from an alphabet of ``K`` costs ``n * ceil(log2 K)``
  bits (:func:`code_bits`, fixed-length indices: what a receiver needs without an
  entropy coder), or ``n * H`` bits with ``H`` the empirical entropy of the symbols
  measured on the test split (:func:`usage`, the rate an ideal entropy coder would
  reach on that data; a lower bound, not a bitstream);
- a continuous code of ``n`` numbers stored as ``b``-bit floats costs ``n * b`` bits
  (:func:`float_bits`).

Compression ratios:

- :func:`ratio_float32`: ``64 L / bits`` -- the input stored as float32 I and Q
  (64 bits per complex sample) over the code's bits. This is the honest ratio.
- :func:`ratio_eq7`: the HQARF paper's Eq. 7, ``CR = 2 p H_N(X) / (d dim(z_e))``, with
  ``p`` = complex samples per signal, ``H_N(X) = 2.05`` bits (the differential entropy
  of a unit-variance Gaussian, 0.5 log2(2 pi e) = 2.047), ``d`` = bits per code index
  and ``dim(z_e)`` = code indices per signal: i.e. ``2 p H_N / bits``. For p = 1024,
  K = 64 (d = 6) and 512 indices at layer 0 this is 1.367, the paper's xi = 1.37, and
  doubles per layer (Table IV: 1.37 ... 21.92, 16 x the rounded 1.37, exactly 21.87;
  K = 128 gives 1.17 ... 18.74). It
  charges the input 2.05 bits per real component, not 32, so it is ~15.6x smaller than
  the float32 ratio.

The optional compressor capabilities the protocol uses (``level_label``, ``alphabet``,
``symbols``, ``stochastic``, ``get_state``/``set_state``, ``history``, ``device``) are
declared, with their defaults, on :class:`amrbench.api.Compressor`.
"""
from __future__ import annotations

import hashlib
import math
from typing import Optional

import numpy as np
import torch

GAUSSIAN_ENTROPY_BITS = 2.05          # H_N(X) of the paper (0.5 * log2(2*pi*e) = 2.047)
FLOAT32_BITS_PER_COMPLEX = 64         # float32 I and Q


# --------------------------------------------------------------------------- bits
def index_bits(alphabet: int) -> int:
    """Bits of one fixed-length index into an alphabet of ``alphabet`` symbols."""
    alphabet = int(alphabet)
    if alphabet < 1:
        raise ValueError(f"alphabet size must be >= 1, got {alphabet}")
    return int(math.ceil(math.log2(alphabet))) if alphabet > 1 else 0


def code_bits(symbols_per_signal: int, alphabet: int) -> float:
    """Fixed-length bits of a discrete code of ``symbols_per_signal`` symbols."""
    return float(int(symbols_per_signal) * index_bits(alphabet))


def float_bits(values_per_signal: int, bits_per_value: int = 32) -> float:
    """Bits of a continuous code of ``values_per_signal`` numbers."""
    return float(int(values_per_signal) * int(bits_per_value))


def bits_per_complex_sample(bits: float, length: int) -> float:
    return float(bits) / float(length)


def ratio_float32(bits: float, length: int) -> float:
    """Input as float32 I/Q (64 bits per complex sample) over the code's bits."""
    return FLOAT32_BITS_PER_COMPLEX * float(length) / float(bits) if bits > 0 else float("inf")


def ratio_eq7(bits: float, length: int, entropy: float = GAUSSIAN_ENTROPY_BITS) -> float:
    """The HQARF paper's Eq. 7: ``2 p H_N(X) / (d dim(z_e))`` = ``2 p H_N / bits``."""
    return 2.0 * float(length) * float(entropy) / float(bits) if bits > 0 else float("inf")


def rate_summary(bits: float, length: int) -> dict:
    """Bits per signal, bits per complex sample and both compression ratios."""
    return {"bits": float(bits), "bits_per_sample": bits_per_complex_sample(bits, length),
            "cr_float32": ratio_float32(bits, length), "cr_eq7": ratio_eq7(bits, length)}


# --------------------------------------------------------------------------- usage
def symbol_counts(symbols: torch.Tensor, alphabet: int) -> np.ndarray:
    flat = torch.as_tensor(symbols).reshape(-1).long().cpu()
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= alphabet):
        raise ValueError(f"symbols outside 0..{alphabet - 1}")
    return torch.bincount(flat, minlength=alphabet).numpy()


def entropy_bits(counts) -> float:
    """Empirical (plug-in) entropy in bits per symbol of a histogram."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return max(0.0, float(-(p * np.log2(p)).sum()))


def usage(counts, symbols_per_signal: Optional[int] = None, length: Optional[int] = None) -> dict:
    """Codebook usage of a histogram: used / unused codes, perplexity 2^H, entropy H
    (bits per symbol) against the fixed-length log2 K, and -- given the code size and
    signal length -- the entropy-coded bits per signal and per complex sample."""
    counts = np.asarray(counts, dtype=np.int64)
    h = entropy_bits(counts)
    out = {
        "alphabet": int(len(counts)),
        "used": int((counts > 0).sum()),
        "unused": int((counts == 0).sum()),
        "perplexity": float(2.0 ** h),
        "entropy_bits": h,
        "index_bits": index_bits(len(counts)),
        "counts": counts.tolist(),
    }
    if symbols_per_signal is not None:
        out["entropy_bits_per_signal"] = h * int(symbols_per_signal)
        if length:
            out["entropy_bits_per_sample"] = h * int(symbols_per_signal) / float(length)
    return out


# --------------------------------------------------------------------------- distortion
def mse(x: torch.Tensor, xhat: torch.Tensor) -> float:
    return float(((x.double() - xhat.double()) ** 2).mean())


def per_signal_nmse(x: torch.Tensor, xhat: torch.Tensor) -> torch.Tensor:
    """||x - xhat||^2 / ||x||^2 per signal (linear)."""
    err = ((x.double() - xhat.double()) ** 2).flatten(1).sum(1)
    ref = (x.double() ** 2).flatten(1).sum(1).clamp_min(1e-30)
    return err / ref


def nmse_db(x: torch.Tensor, xhat: torch.Tensor) -> float:
    """10 log10 of the mean over signals of the per-signal NMSE."""
    value = float(per_signal_nmse(x, xhat).mean())
    return 10.0 * math.log10(value) if value > 0 else float("-inf")


# --------------------------------------------------------------------------- helpers
def data_fingerprint(x: torch.Tensor, *extra) -> str:
    """A short sha256 of a tensor's bytes (and extra tags): cache keys of artifacts
    fitted on a given training set, independent of where it came from."""
    h = hashlib.sha256()
    arr = x.detach().cpu().contiguous().numpy()
    h.update(str(arr.shape).encode() + str(arr.dtype).encode())
    h.update(arr.tobytes())
    for e in extra:
        h.update(repr(e).encode())
    return h.hexdigest()[:24]


def batched(fn, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """Apply ``fn`` to ``x`` in batches on ``device``; the result back on the CPU."""
    outs = []
    for start in range(0, x.shape[0], batch_size):
        outs.append(fn(x[start:start + batch_size].to(device)).cpu())
    return torch.cat(outs) if outs else x[:0]
