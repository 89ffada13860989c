"""Meaningful-perturbation mask (Fong & Vedaldi 2017) as Huang et al. use it for the LSTM
(Sec. IV-C, Eqs. 4-5, Table II). Own implementation (Captum has no mask optimiser).

For each signal z (the model's transformed input) and its target class j the class
activation vector w in [0, 1]^L solves

    min_w  y_j(Phi(z, w)) + l1 * ||w||_1 + l2 * ||grad w||_p^p,
    Phi(z, w) = (1 - w) * z + xi * w            (w shared by both input channels)

with y_j the **softmax probability** of class j (the paper minimises "the predicted
probability"), ``grad w`` the forward difference w[t+1] - w[t] (so the TV term is
sum_t |w[t+1] - w[t]|^p) and the Table II defaults l1 = 1e-4, l2 = 1e-3, p = 3,
xi = 0.01.

Optimisation (not given in the paper; amrbench's choices, all parameters):
- w starts at ``init`` = 0 ("delete nothing"), so the optimisation starts from the
  model's own prediction and w grows only where deleting samples lowers y_j;
- Adam (lr ``lr`` = 0.05) on w directly, projected back to [0, 1] after every step,
  for ``steps`` = 300 iterations;
- batched: the per-signal objectives are summed, so one forward/backward pass updates
  the masks of the whole batch; Adam is per element, so the result is identical to
  optimising each signal alone;
- the mean objective over the batch after each step is kept in ``history`` (and the
  mean final mask area in ``last_area``) for reports and tests.

w is returned as optimised (already in [0, 1]; not re-normalised, so a mask that
deletes little stays small, as in the paper's Fig. 6).

Recurrent models: the network stays in eval mode; on CUDA, cuDNN's RNN backward only
works in train mode, so the optimisation runs inside ``torch.backends.cudnn.flags(
enabled=False)`` (``amrbench_plugins.explain.attribution.no_cudnn``), which uses the native kernels instead.
Only gradients with respect to w are computed (``torch.autograd.grad``); the model's
parameters get no ``.grad``.
"""
from __future__ import annotations

import torch

from amrbench.api import AmrbenchError, Explainer
from amrbench.hookspecs import hookimpl
from amrbench_plugins.explain.attribution import mask_input, no_cudnn


def mask_objective(model, z, w, target, l1, l2, p, xi):
    """Per-signal objective (N,) of Eq. 5."""
    logits = model(mask_input(z, w, xi)).float()
    y = torch.softmax(logits, 1).gather(1, target[:, None]).squeeze(1)
    tv = (w[:, 1:] - w[:, :-1]).abs().pow(p).sum(1)
    return y + l1 * w.abs().sum(1) + l2 * tv


class MaskExplainer(Explainer):
    """Meaningful-perturbation mask, Huang et al. Eq. 5 (Table II defaults), Adam, batched."""

    name = "mask"
    version = "1"
    defaults = {"l1": 1e-4, "l2": 1e-3, "p": 3, "xi": 0.01, "steps": 300, "lr": 0.05, "init": 0.0}

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        if not isinstance(p["steps"], int) or isinstance(p["steps"], bool) or p["steps"] < 0:
            raise AmrbenchError("explainer 'mask': steps must be a non-negative integer")
        if not 0.0 <= float(p["init"]) <= 1.0:
            raise AmrbenchError("explainer 'mask': init must lie in [0, 1]")
        if not float(p["lr"]) > 0 or not float(p["p"]) >= 1:
            raise AmrbenchError("explainer 'mask': lr must be > 0 and p >= 1")
        self.history: list = []
        self.last_area = None

    def explain(self, model, x, target):
        p = self.params
        l1, l2, power, xi = float(p["l1"]), float(p["l2"]), float(p["p"]), float(p["xi"])
        z = x.detach()
        target = target.to(z.device)
        w = torch.full((z.shape[0], z.shape[-1]), float(p["init"]), device=z.device, requires_grad=True)
        optimizer = torch.optim.Adam([w], lr=float(p["lr"]))
        self.history = []
        with torch.enable_grad(), no_cudnn():
            for _ in range(int(p["steps"])):
                objective = mask_objective(model, z, w, target, l1, l2, power, xi)
                (grad,) = torch.autograd.grad(objective.sum(), w)
                w.grad = grad
                optimizer.step()
                with torch.no_grad():
                    w.clamp_(0.0, 1.0)
                self.history.append(float(objective.detach().mean()))
        out = w.detach().clamp(0.0, 1.0)
        self.last_area = float(out.mean()) if out.numel() else None
        return out


@hookimpl
def amrbench_register(registry):
    registry.add(MaskExplainer)
