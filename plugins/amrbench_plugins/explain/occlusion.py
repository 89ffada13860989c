"""Occlusion (Zeiler & Fergus 2014) over time windows, reduced to a class activation vector.

Backend: Captum's ``Occlusion`` when Captum is importable (the optional extra
``amrbench[explain]``), otherwise an own implementation with the same window placement
and averaging, so both give the same numbers (the tests compare them when Captum is
installed). ``backend``: "auto" (default), "captum" or "own".

- A window of ``window`` = 8 time samples (one symbol at 8 samples per symbol) spanning
  all channels is slid with stride ``stride`` = 4; windows start at 0, stride, ... up to
  ceil((L - window) / stride) * stride and are cut at L (Captum's placement), so every
  sample is covered.
- Inside the window the input is replaced by ``baseline`` (default 0.01, the paper's
  deletion value xi); the score is the target class's **softmax probability** (the
  quantity the mask explainer and the deletion metrics use).
- A sample's attribution is the mean, over the windows that cover it, of
  p(z) - p(z occluded).
- Reduced over channels to length L by ``reduce``: "positive" (default: the drop is the
  same on every channel of a window; negative drops, i.e. occlusion raising p, count 0)
  or "abs", then normalised per signal to [0, 1] (min-max).
- Batched: ``windows_per_pass`` windows of all signals go through the model at once.
"""
from __future__ import annotations

import math

import torch

from amrbench.api import AmrbenchError, Explainer
from amrbench.hookspecs import hookimpl
from amrbench_plugins.explain.attribution import BACKENDS, normalise, reduce_channels, require_backend, resolve_backend


def window_starts(length: int, window: int, stride: int) -> list:
    count = math.ceil((length - window) / stride) + 1 if length > window else 1
    return [i * stride for i in range(count)]


def _probs(model, z):
    return torch.softmax(model(z).float(), 1)


@torch.no_grad()
def occlusion(model, z, target, window: int = 8, stride: int = 4, baseline: float = 0.01, windows_per_pass: int = 8):
    """Own implementation: (N, L) mean probability drop of the windows covering each sample."""
    n, length = z.shape[0], z.shape[-1]
    window = min(window, length)
    target = target.to(z.device)
    base = _probs(model, z).gather(1, target[:, None])[:, 0]
    total = torch.zeros(n, length, device=z.device)
    count = torch.zeros(length, device=z.device)
    starts = window_starts(length, window, stride)
    for i in range(0, len(starts), windows_per_pass):
        chunk = starts[i:i + windows_per_pass]
        batch = z.unsqueeze(0).repeat(len(chunk), *([1] * z.dim()))
        for j, s in enumerate(chunk):
            batch[j, ..., s:s + window] = baseline
        p = _probs(model, batch.reshape(-1, *z.shape[1:])).reshape(len(chunk), n, -1)
        drop = base[None] - p.gather(2, target[None, :, None].expand(len(chunk), n, 1))[..., 0]
        for j, s in enumerate(chunk):
            total[:, s:s + window] += drop[j][:, None]
            count[s:s + window] += 1
    return total / count.clamp_min(1)


class Occlusion(Explainer):
    """Occlusion of time windows (Captum when installed, else own), mean probability drop per sample."""

    name = "occlusion"
    version = "1"
    defaults = {"window": 8, "stride": 4, "baseline": 0.01, "reduce": "positive", "backend": "auto",
                "windows_per_pass": 8}
    choices = {"reduce": ("abs", "positive"), "backend": BACKENDS}

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        for key in ("window", "stride", "windows_per_pass"):
            if isinstance(p[key], bool) or not isinstance(p[key], int) or p[key] < 1:
                raise AmrbenchError(f"explainer 'occlusion': {key} must be a positive integer")
        if p["stride"] > p["window"]:
            raise AmrbenchError("explainer 'occlusion': stride must not exceed window")
        require_backend(self.name, p["backend"])

    @property
    def backend(self) -> str:
        return resolve_backend(self.params["backend"])

    def attributions(self, model, x, target):
        p = self.params
        window = min(int(p["window"]), x.shape[-1])
        if self.backend == "captum":
            from captum.attr import Occlusion as CaptumOcclusion

            shape = tuple(x.shape[1:-1]) + (window,)
            strides = tuple(x.shape[1:-1]) + (int(p["stride"]),)
            with torch.no_grad():
                attr = CaptumOcclusion(lambda inp: _probs(model, inp)).attribute(
                    x.detach(), sliding_window_shapes=shape, strides=strides, baselines=float(p["baseline"]),
                    target=target.to(x.device), perturbations_per_eval=int(p["windows_per_pass"]))
            return attr.detach()
        drop = occlusion(model, x.detach(), target, window, int(p["stride"]), float(p["baseline"]),
                         int(p["windows_per_pass"]))
        return drop.reshape(drop.shape[0], *([1] * (x.dim() - 2)), drop.shape[-1])

    def explain(self, model, x, target):
        attr = self.attributions(model, x, target)
        if self.params["reduce"] == "positive":
            # every channel of a window carries the same drop: average, then keep the positive part
            w = torch.relu(attr.float().mean(dim=tuple(range(1, attr.dim() - 1)))) if attr.dim() > 2 else torch.relu(attr)
        else:
            w = reduce_channels(attr, "abs")
        return normalise(w)


@hookimpl
def amrbench_register(registry):
    registry.add(Occlusion)
