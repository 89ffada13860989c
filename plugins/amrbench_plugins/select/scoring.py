"""Shared scoring resources of coreset selectors beyond the full-data ``dynamics`` run.

``gradnorms`` (registered with ``dynamics`` by ``dynamics.register``): per-sample norms of the loss gradient with
respect to the last layer (the classifier ``head``) after a short training of several
random initialisations, as DeepCore's GraNd computes them (Paul et al., NeurIPS 2021;
Guo et al., DEXA 2022):

- ``repeats`` R fresh networks of the cell's *source* model, each with its own seeded
  initialisation and batch order, trained ``epochs`` E epochs on the full training split
  with the scoring run's training settings (suite ``train`` + ``settings.scoring``);
- then, in eval mode, for every training signal with penultimate features h and softmax
  p: ||d CE / d(W, b)|| = ||p - onehot(y)|| * sqrt(||h||^2 + 1) for a linear head with
  bias (closed form, no per-sample backward pass; other heads use per-sample autograd).
  Unlike DeepCore no 1/B factor of a mean-reduced batch loss enters, so the last partial
  batch is not inflated.

Stored: ``norms`` (R, N) float32, ``epochs``, ``repeats``. The cache key covers the
dataset spec, the source model and its version, the cell seed, the training settings
with E, and R — computed once per (dataset, model, seed, settings) and shared by every
rate. Cost: R x E full-data epochs (defaults 10 x min(10, T_scoring)).

Also ``derived``: an in-process memo of quantities selectors derive from a resource
(Cal's neighbour scores, k-center traversals), so the rates of a grid reuse them.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from amrbench import transforms
from amrbench.api import AmrbenchError, Context, SignalSet
from amrbench.train import fit, validate_train_settings
from amrbench_plugins.select.dynamics import scoring_settings

GRAND_REPEATS = 10
GRAND_EPOCHS = 10
GRADNORM_METHOD = "last-layer-gradnorm/1"


# --------------------------------------------------------------------------- derived memo
_DERIVED: "OrderedDict[tuple, tuple]" = OrderedDict()
_DERIVED_SIZE = 64


def derived(resource: Any, key: tuple, make: Callable[[], Any]) -> Any:
    """``make()`` memoised per (resource object, key) in this process. The resource is
    held alongside the value, so its ``id`` cannot be reused while the entry lives."""
    slot = (id(resource), key)
    hit = _DERIVED.get(slot)
    if hit is not None and hit[0] is resource:
        _DERIVED.move_to_end(slot)
        return hit[1]
    value = make()
    _DERIVED[slot] = (resource, value)
    while len(_DERIVED) > _DERIVED_SIZE:
        _DERIVED.popitem(last=False)
    return value


# --------------------------------------------------------------------------- gradnorms
def grand_plan(cell: dict) -> tuple[int, dict]:
    """(repeats, training settings) of the GraNd scoring runs of a cell whose method is
    GraNd: ``repeats`` and ``epochs`` from the method's parameters (``epochs`` null =
    min(10, the scoring run's epochs)), every other setting from the scoring run."""
    params = (cell.get("method") or {}).get("params") or {}
    repeats = params.get("repeats", GRAND_REPEATS)
    scoring = scoring_settings(cell)
    epochs = params.get("epochs")
    if epochs is None:
        epochs = min(GRAND_EPOCHS, scoring["epochs"])
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise AmrbenchError(f"selector 'grand': repeats must be a positive integer, got {repeats!r}")
    return repeats, validate_train_settings({**scoring, "epochs": epochs})


def gradnorms_training(cell: dict, n_train: int, registry) -> tuple:
    """For cost estimates: ``repeats`` full-data runs of the source model of GraNd's
    epochs, each followed by one forward pass over the data for the gradient norms."""
    from amrbench.cost import FORWARD_TO_TRAINING

    repeats, settings = grand_plan(cell)
    return "source", repeats * n_train * (int(settings["epochs"]) + 1 / FORWARD_TO_TRAINING)


def gradnorms_config(ctx: Context) -> dict:
    cell = ctx.cell
    repeats, settings = grand_plan(cell)
    return {"dataset": cell["dataset"], "model": cell["model"]["source"], "model_version": cell["versions"]["source"],
            "seed": cell["seed"], "train": settings, "repeats": repeats, "method": GRADNORM_METHOD}


@torch.no_grad()
def _features(net: nn.Module, input_format: str, x: torch.Tensor, batch: int, device) -> torch.Tensor:
    net.to(device).eval()
    out = [net.embed(transforms.apply(input_format, x[s:s + batch].to(device))).float()
           for s in range(0, x.shape[0], batch)]
    return torch.cat(out) if out else torch.zeros(0)


def last_layer_gradnorms(net: nn.Module, input_format: str, data: SignalSet, batch: int, device) -> torch.Tensor:
    """Per-sample ||d CE(head(h), y) / d head-parameters|| in eval mode, (N,) on CPU."""
    head = net.head
    h = _features(net, input_format, data.x, batch, device)
    y = data.y.to(h.device)
    if isinstance(head, nn.Linear):
        with torch.no_grad():
            g = torch.softmax(head(h).float(), 1)
            g[torch.arange(len(y), device=g.device), y] -= 1
            extra = 1.0 if head.bias is not None else 0.0
            return (g.norm(dim=1) * torch.sqrt(h.pow(2).sum(1) + extra)).cpu()
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in head.named_parameters()}

    def loss(p, h1, y1):
        return F.cross_entropy(functional_call(head, p, (h1.unsqueeze(0),)), y1.unsqueeze(0))

    norms = []
    for s in range(0, len(y), batch):
        grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, h[s:s + batch], y[s:s + batch])
        norms.append(torch.sqrt(sum(v.flatten(1).pow(2).sum(1) for v in grads.values())).cpu())
    return torch.cat(norms)


def compute_gradnorms(ctx: Context) -> dict:
    train, _ = ctx.resource("dataset")
    model = ctx.registry.create("model", ctx.cell["model"]["source"])
    repeats, settings = grand_plan(ctx.cell)
    norms = torch.zeros(repeats, len(train), dtype=torch.float32)
    for r in range(repeats):
        ctx.seed_torch("gradnorms", r, "init")
        net = model.build(train.num_classes, train.length)
        fit(net, model.input_format, train, settings, ctx.torch_generator("gradnorms", r, "order"), ctx.device)
        norms[r] = last_layer_gradnorms(net, model.input_format, train, settings["eval_batch_size"], ctx.device)
    return {"norms": norms, "epochs": settings["epochs"], "repeats": repeats}

