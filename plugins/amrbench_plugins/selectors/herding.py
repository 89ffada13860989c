"""Herding (Welling, ICML 2009; the coreset baseline of DeepCore, Guo et al. 2022).

Per class, in the penultimate embedding space of the selection model (the full-data
scoring run, shared with every other selector): greedily add the signal that brings the
mean of the selected set closest to the class mean. Cost O(budget * n * d) per class,
memory O(n * d): no n x n distance matrix is ever built.

Defaults: embeddings of the trained scoring model (as DeepCore, which trains the model
before embedding); ``embedding: input`` herds on the raw I/Q vectors instead.
"""
import numpy as np
import torch

from amrbench.api import Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench.selection import class_members, quotas


def herd(features: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (into ``features``) of k rows chosen by herding, in selection order."""
    n = features.shape[0]
    k = min(k, n)
    mean = features.mean(0)
    running = torch.zeros_like(mean)
    available = torch.ones(n, dtype=torch.bool)
    chosen = []
    for step in range(k):
        # distance from the class mean to the mean after adding each candidate
        candidate_means = (running.unsqueeze(0) + features) / (step + 1)
        distance = ((candidate_means - mean) ** 2).sum(1)
        distance[~available] = float("inf")
        best = int(torch.argmin(distance))
        chosen.append(best)
        available[best] = False
        running += features[best]
    return torch.tensor(chosen, dtype=torch.int64)


class Herding(Selector):
    """Herding: greedy per-class mean matching in the model's embedding space."""

    name = "herding"
    defaults = {"embedding": "model"}
    choices = {"embedding": ("model", "input")}
    needs = ("dynamics",)

    def select(self, ctx, train, budget):
        if self.params["embedding"] == "input":
            features = train.x.flatten(1)
        else:
            features = ctx.resource("dynamics")["embeddings"]
        picked = []
        for members, quota in zip(class_members(train), quotas(train, budget)):
            local = herd(features[torch.from_numpy(members)].double(), int(quota))
            picked.append(members[local.numpy()])
        return Selection(torch.from_numpy(np.sort(np.concatenate(picked))).long())


@hookimpl
def amrbench_register(registry):
    registry.add(Herding)
