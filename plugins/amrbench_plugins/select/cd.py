"""CD, Contextual Diversity (Agarwal, Arora, Anand & Arora, "Contextual diversity for
active learning", ECCV 2020), as DeepCore's ContextualDiversity baseline (Guo et al.
2022) that the FoQuS paper (Lu et al. 2025) compares against.

DeepCore reduces CDAL to k-center greedy in the space of predicted class distributions:
points are the softmax outputs p of the selection model and the distance between two
signals is the symmetric KL divergence 0.5 KL(p || q) + 0.5 KL(q || p)
= 0.5 * sum_c (p_c - q_c)(log p_c - log q_c). Per stratum (class by default): a seeded
random first centre, then repeatedly the signal with the largest divergence from its
nearest centre. Each step costs two matrix-vector products over (n, C): memory O(n * C),
no n x n (nor budget x n) matrix; the traversal is memoised and extended across rates.

Defaults and reference choices: probabilities of the shared full-data scoring model
(eval mode, after its last epoch) instead of DeepCore's separately trained proxy;
probabilities clamped at ``eps`` = 1e-8 before the log (DeepCore has no epsilon and gives
inf/NaN on exact zeros); ``stratify: class`` or ``class_snr``. This is DeepCore's
simplification, not CDAL's region-level contextual diversity.
"""
from __future__ import annotations

import numpy as np
import torch

from amrbench.api import Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench_plugins.select.kcenter import FarthestFirst
from amrbench_plugins.select.scoring import derived
from amrbench_plugins.select.selection import STRATIFY, pick_per_stratum

EPS = 1e-8


def kl_traversal(probs: torch.Tensor, start: int, eps: float = EPS) -> FarthestFirst:
    """Farthest-first over rows of ``probs`` in symmetric KL divergence."""
    p = probs.double().clamp_min(eps)
    p = p / p.sum(1, keepdim=True)
    logp = p.log()
    self_term = (p * logp).sum(1)

    def distance_to(j: int) -> torch.Tensor:
        cross = torch.mv(p, logp[j]) + torch.mv(logp, p[j])
        return (0.5 * (self_term + self_term[j] - cross)).clamp_min_(0)

    return FarthestFirst(distance_to, p.shape[0], start, torch.float64)


class ContextualDiversity(Selector):
    """CD: k-center greedy on predicted class distributions (symmetric KL), as DeepCore."""

    name = "cd"
    defaults = {"stratify": "class"}
    choices = {"stratify": STRATIFY}
    needs = ("dynamics",)

    def select(self, ctx, train, budget):
        dynamics = ctx.resource("dynamics")
        probs = dynamics["probs"]
        stratify = self.params["stratify"]

        def pick(key, members, quota):
            def make():
                start = int(ctx.rng("cd", *key).integers(len(members)))
                return kl_traversal(probs[torch.from_numpy(members)], start)

            local = derived(dynamics, ("cd", ctx.seed, stratify, key, len(members)), make).extend(quota)
            return members[np.asarray(local, dtype=np.int64)]

        return Selection(pick_per_stratum(train, budget, stratify, pick))


@hookimpl
def amrbench_register(registry):
    registry.add(ContextualDiversity)
