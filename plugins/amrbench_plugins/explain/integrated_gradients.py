"""Integrated Gradients (Sundararajan et al. 2017) reduced to a class activation vector.

Backend: Captum's ``IntegratedGradients`` when Captum is importable (the optional extra
``amrbench[explain]``), otherwise an own implementation of the same quadrature, so both
give the same numbers (the tests compare them when Captum is installed). ``backend``:
"auto" (default), "captum" or "own".

- Attributions of the target class's **pre-softmax** score (the logit, as Grad-CAM) with
  respect to the model's transformed input z, from a constant baseline ``baseline``
  (default 0.0) to z.
- Path integral by Gauss-Legendre quadrature with ``n_steps`` = 32 nodes on [0, 1]
  (Captum's default method "gausslegendre"): a = (x - b) * sum_i c_i * dF/dx(b + t_i (x - b)).
- Batched: all signals and quadrature points go through the model together, in chunks of
  ``internal_batch_size`` inputs.
- Reduced over the I/Q (or amplitude/phase) channels to length L by ``reduce``: "abs"
  (default: sum of |a| over channels) or "positive" (signed sum, positive part), then
  normalised per signal to [0, 1] (min-max).
"""
from __future__ import annotations

import numpy as np
import torch

from amrbench.api import AmrbenchError, Explainer
from amrbench.hookspecs import hookimpl
from amrbench_plugins.explain.attribution import (
    BACKENDS,
    no_cudnn,
    normalise,
    reduce_channels,
    require_backend,
    resolve_backend,
)


def gauss_legendre(n: int):
    """Nodes and weights of n-point Gauss-Legendre quadrature on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return list(0.5 * (nodes + 1)), list(0.5 * weights)


def integrated_gradients(model, z, target, baseline: float = 0.0, n_steps: int = 32, internal_batch_size: int = 512):
    """Own implementation: (N, ...) attributions of the target logit."""
    z = z.detach()
    base = torch.full_like(z, float(baseline))
    alphas, weights = gauss_legendre(n_steps)
    target = target.to(z.device)
    total = torch.zeros_like(z)
    n = z.shape[0]
    per_chunk = max(1, internal_batch_size // max(1, n))   # quadrature points per pass
    with torch.enable_grad(), no_cudnn():
        for start in range(0, n_steps, per_chunk):
            a = torch.tensor(alphas[start:start + per_chunk], dtype=z.dtype, device=z.device)
            c = torch.tensor(weights[start:start + per_chunk], dtype=z.dtype, device=z.device)
            shape = (len(a),) + (1,) * z.dim()
            points = (base.unsqueeze(0) + a.view(shape) * (z - base).unsqueeze(0)).reshape(-1, *z.shape[1:])
            points.requires_grad_(True)
            logits = model(points).float()
            score = logits.gather(1, target.repeat(len(a))[:, None]).sum()
            (grad,) = torch.autograd.grad(score, points)
            total += (grad.reshape(len(a), *z.shape) * c.view(shape)).sum(0)
    return (z - base) * total


class IntegratedGradients(Explainer):
    """Integrated Gradients (Captum when installed, else own Gauss-Legendre implementation), channels reduced."""

    name = "integrated-gradients"
    version = "1"
    defaults = {"n_steps": 32, "baseline": 0.0, "reduce": "abs", "backend": "auto", "internal_batch_size": 512}
    choices = {"reduce": ("abs", "positive"), "backend": BACKENDS}

    def __init__(self, **params):
        super().__init__(**params)
        require_backend(self.name, self.params["backend"])
        n = self.params["n_steps"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise AmrbenchError("explainer 'integrated-gradients': n_steps must be a positive integer")

    @property
    def backend(self) -> str:
        return resolve_backend(self.params["backend"])

    def attributions(self, model, x, target):
        p = self.params
        if self.backend == "captum":
            from captum.attr import IntegratedGradients as CaptumIG

            with torch.enable_grad(), no_cudnn():
                return CaptumIG(lambda inp: model(inp).float()).attribute(
                    x.detach(), baselines=float(p["baseline"]), target=target.to(x.device), n_steps=int(p["n_steps"]),
                    method="gausslegendre", internal_batch_size=int(p["internal_batch_size"])).detach()
        return integrated_gradients(model, x, target, float(p["baseline"]), int(p["n_steps"]),
                                    int(p["internal_batch_size"]))

    def explain(self, model, x, target):
        return normalise(reduce_channels(self.attributions(model, x, target), self.params["reduce"]))


@hookimpl
def amrbench_register(registry):
    registry.add(IntegratedGradients)
