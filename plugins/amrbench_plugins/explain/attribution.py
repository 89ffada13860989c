"""Shared code of the explainers and the ``explain`` protocol: normalisation, the mask
function, and the faithfulness metrics, all batched over many signals.

Conventions
-----------
- An explainer sees the model's *transformed* input ``z`` (``transforms.apply(format, x)``:
  (N, 2, L) for ``iq`` / ``amp_phase``, (N, 1, 2, L) for ``iq_2d``); time is always the
  last axis, so a class activation vector ``w`` (N, L) broadcasts over every other axis
  (``time_view``) and a masked input is ``Phi(z, w) = (1 - w) * z + xi * w`` (Huang et
  al., Eq. 4, the "deletion" of a sample replaces all its channels by the constant xi).
- ``normalise`` maps each row to [0, 1] by min-max ("uniformly normalised", Sec. IV-B);
  a constant row (no evidence anywhere) becomes all zeros.
- Class scores for the metrics are softmax probabilities of the target class.

Metrics (``amrbench explain`` protocol; every function returns one value per signal):
- ``deletion_auc``: samples are replaced by xi in decreasing order of w (ties broken at
  random, seeded), the target probability is tracked at ``steps + 1`` equally spaced
  fractions 0..1 of the signal, AUC by the trapezoid rule (lower = more faithful).
- ``insertion_auc``: start from the all-xi signal and put samples back in the same order
  (higher = more faithful).
- ``topk_drop`` / ``random_drop``: the drop of the target probability when the top
  ``fraction`` of samples by w / a random ``fraction`` of samples are replaced by xi.
- ``spearman``: Spearman rank correlation of two explanations of the same signal
  (average ranks for ties; 0 when either explanation is constant). The model-randomisation
  sanity check (Adebayo et al. 2018) compares the explanation of the trained model with
  that of a freshly initialised one: a faithful explainer's similarity must fall.
- ``snr_bands``: SNR bands from edges, e.g. edges [0, 10] -> "<0", "0..<10", ">=10".
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Optional

import numpy as np
import torch
from torch.nn import functional as F

from amrbench.api import AmrbenchError

XI = 0.01    # deletion value (Table II)
ETA = 0.4    # activation threshold eta_w (Table II)


# --------------------------------------------------------------------------- basics
def normalise(w: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-row min-max normalisation to [0, 1]; constant rows become zeros."""
    w = w.detach().float()
    lo = w.min(dim=1, keepdim=True).values
    hi = w.max(dim=1, keepdim=True).values
    span = hi - lo
    out = (w - lo) / span.clamp_min(eps)
    return torch.where(span > eps, out, torch.zeros_like(out)).clamp_(0.0, 1.0)


def time_view(w: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``w`` (N, L) shaped to broadcast over ``z`` (N, ..., L)."""
    return w.reshape(w.shape[0], *([1] * (z.dim() - 2)), w.shape[-1])


def mask_input(z: torch.Tensor, w: torch.Tensor, xi: float = XI) -> torch.Tensor:
    """Phi(z, w) = (1 - w) * z + xi * w, with w (N, L) shared by all channels."""
    w = time_view(w, z)
    return (1 - w) * z + xi * w


def reduce_channels(attr: torch.Tensor, mode: str = "abs") -> torch.Tensor:
    """Per-sample attributions (N, ..., L) -> (N, L): ``abs`` sums |a| over every axis but
    time; ``positive`` sums the signed values and keeps the positive part (Grad-CAM's ReLU)."""
    attr = attr.detach().float()
    dims = tuple(range(1, attr.dim() - 1))
    if mode == "abs":
        return attr.abs().sum(dim=dims) if dims else attr.abs()
    if mode == "positive":
        return torch.relu(attr.sum(dim=dims) if dims else attr)
    raise ValueError(f"unknown reduction {mode!r}; allowed: abs, positive")


def resize(w: torch.Tensor, length: int) -> torch.Tensor:
    """(N, V) -> (N, length) by linear interpolation with half-pixel centres (what OpenCV's
    default bilinear ``resize`` does on a 1 x V image, as the paper resizes)."""
    if w.shape[-1] == length:
        return w
    return F.interpolate(w[:, None].float(), size=length, mode="linear", align_corners=False)[:, 0]


def no_cudnn():
    """Context in which recurrent layers can backpropagate in eval mode on CUDA (cuDNN's RNN
    backward requires train mode; the native kernels do not). A no-op on CPU."""
    if torch.backends.cudnn.is_available():
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()


def probabilities(model, z: torch.Tensor, target: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Softmax probability of ``target`` for each signal (no grad, in chunks)."""
    out = []
    with torch.no_grad():
        for start in range(0, z.shape[0], batch_size):
            logits = model(z[start:start + batch_size]).float()
            out.append(torch.softmax(logits, 1).gather(1, target[start:start + batch_size, None].to(logits.device))[:, 0])
    return torch.cat(out) if out else torch.empty(0)


BACKENDS = ("auto", "captum", "own")


def captum_available() -> bool:
    """Whether Captum (the optional extra ``amrbench[explain]``) can be imported."""
    try:
        import captum.attr  # noqa: F401
    except Exception:
        return False
    return True


def require_backend(explainer: str, choice: str) -> None:
    """Refuse ``backend: captum`` where Captum is not installed, naming the extra."""
    if choice == "captum" and not captum_available():
        raise AmrbenchError(f"explainer {explainer!r}: backend 'captum' needs Captum: pip install 'amrbench[explain]'")


def resolve_backend(choice: str) -> str:
    """``auto`` -> Captum where installed, else the own implementation."""
    if choice == "auto":
        return "captum" if captum_available() else "own"
    return choice


# --------------------------------------------------------------------------- rankings
def order_by(w: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Rank of each sample (N, L): 0 = largest w; ties broken by a random permutation."""
    n, length = w.shape
    perm = torch.randperm(length, generator=generator).to(w.device)
    idx = torch.argsort(-w[:, perm], dim=1, stable=True)
    order = perm[idx]                                   # order[i, r] = sample of rank r
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(length, device=w.device).expand(n, length).contiguous())
    return ranks


def _fraction_counts(length: int, steps: int) -> list:
    return [int(round(s * length / steps)) for s in range(steps + 1)]


def perturbation_curve(model, z: torch.Tensor, w: torch.Tensor, target: torch.Tensor, xi: float = XI,
                       steps: int = 20, insertion: bool = False, generator: Optional[torch.Generator] = None,
                       batch_size: int = 1024) -> torch.Tensor:
    """Target probability (N, steps + 1) as the top-ranked samples are deleted (replaced by
    xi) or, with ``insertion``, put back into an all-xi signal."""
    ranks = order_by(w.to(z.device), generator)
    curve = []
    for k in _fraction_counts(z.shape[-1], steps):
        removed = (ranks < k).float()
        mask = 1.0 - removed if insertion else removed
        curve.append(probabilities(model, mask_input(z, mask, xi), target, batch_size))
    return torch.stack(curve, dim=1).cpu()


def auc(curve: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under a curve sampled at equally spaced fractions of [0, 1]."""
    steps = curve.shape[1] - 1
    return (curve[:, 1:] + curve[:, :-1]).sum(1) / (2 * steps)


def deletion_auc(model, z, w, target, xi=XI, steps=20, generator=None, batch_size=1024) -> torch.Tensor:
    return auc(perturbation_curve(model, z, w, target, xi, steps, False, generator, batch_size))


def insertion_auc(model, z, w, target, xi=XI, steps=20, generator=None, batch_size=1024) -> torch.Tensor:
    return auc(perturbation_curve(model, z, w, target, xi, steps, True, generator, batch_size))


def topk_drop(model, z, w, target, fraction: float = 0.1, xi: float = XI, generator=None,
              batch_size: int = 1024, base: Optional[torch.Tensor] = None) -> torch.Tensor:
    """p(z) - p(z with the top ``fraction`` of samples by w replaced by xi)."""
    k = max(1, int(round(fraction * z.shape[-1])))
    ranks = order_by(w.to(z.device), generator)
    base = probabilities(model, z, target, batch_size) if base is None else base
    return (base - probabilities(model, mask_input(z, (ranks < k).float(), xi), target, batch_size)).cpu()


def random_drop(model, z, target, fraction: float = 0.1, xi: float = XI, generator=None, repeats: int = 3,
                batch_size: int = 1024, base: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The same drop with a random ``fraction`` of samples masked, averaged over ``repeats``."""
    n, length = z.shape[0], z.shape[-1]
    base = probabilities(model, z, target, batch_size) if base is None else base
    drops = []
    for _ in range(repeats):
        w = torch.rand(n, length, generator=generator).to(z.device)
        drops.append(topk_drop(model, z, w, target, fraction, xi, generator, batch_size, base))
    return torch.stack(drops).mean(0)


def _average_ranks(a: torch.Tensor) -> torch.Tensor:
    s = torch.sort(a, dim=1).values.contiguous()
    a = a.contiguous()
    left = torch.searchsorted(s, a, right=False).float()
    right = torch.searchsorted(s, a, right=True).float()
    return (left + right - 1) / 2


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Spearman rank correlation (average ranks for ties); 0 for a constant row."""
    ra, rb = _average_ranks(a.detach().double()), _average_ranks(b.detach().double())
    ra = ra - ra.mean(1, keepdim=True)
    rb = rb - rb.mean(1, keepdim=True)
    den = ra.norm(dim=1) * rb.norm(dim=1)
    rho = (ra * rb).sum(1) / den.clamp_min(1e-12)
    return torch.where(den > 1e-12, rho, torch.zeros_like(rho)).float()


def sanity_check(explain: Callable, model, random_model, z: torch.Tensor, target: torch.Tensor,
                 w: Optional[torch.Tensor] = None, threshold: float = 0.5) -> dict:
    """Model-randomisation test: Spearman similarity between the explanations of ``model``
    and ``random_model`` (same signals, same target). ``passed`` when the mean similarity
    is below ``threshold`` (an explainer that ignores the model scores 1 and fails)."""
    w = explain(model, z, target) if w is None else w
    w_random = explain(random_model, z, target)
    similarity = spearman(w.cpu(), w_random.cpu())
    mean = float(similarity.mean()) if len(similarity) else float("nan")
    return {"similarity": similarity, "mean": mean, "passed": bool(mean < threshold)}


# --------------------------------------------------------------------------- bands
def snr_bands(snr: torch.Tensor, edges) -> list:
    """[(label, index tensor)] for bands split at ``edges`` (dB); NaN SNRs form "unknown"."""
    snr = snr.float()
    edges = sorted(float(e) for e in (edges or []))
    bounds = [-math.inf] + edges + [math.inf]
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if lo == -math.inf and hi == math.inf:
            label = "all"
        elif lo == -math.inf:
            label = f"<{hi:g}"
        elif hi == math.inf:
            label = f">={lo:g}"
        else:
            label = f"{lo:g}..<{hi:g}"
        index = torch.nonzero((snr >= lo) & (snr < hi)).flatten()
        if len(index):
            out.append((label, index))
    unknown = torch.nonzero(torch.isnan(snr)).flatten()
    if len(unknown):
        out.append(("unknown", unknown))
    return out


def mean_or_none(values: torch.Tensor) -> Optional[float]:
    if values is None or len(values) == 0:
        return None
    value = float(torch.as_tensor(values, dtype=torch.float64).mean())
    return value if math.isfinite(value) else None


def area_above(w: torch.Tensor, eta: float = ETA) -> torch.Tensor:
    """Fraction of samples with w > eta, per signal."""
    return (w > eta).float().mean(1)


def consecutive_segments(w: np.ndarray, eta: float = ETA) -> np.ndarray:
    """Indices i with w[i] > eta and w[i + 1] > eta (the green segments of the figures)."""
    w = np.asarray(w)
    return np.nonzero((w[:-1] > eta) & (w[1:] > eta))[0]


class NotApplicable(Exception):
    """An explainer cannot explain this model (e.g. Grad-CAM on a network without
    convolutions); the ``explain`` protocol records the cell as not applicable."""
