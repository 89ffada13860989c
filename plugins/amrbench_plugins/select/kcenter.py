"""k-Center Greedy (Sener & Savarese, "Active learning for convolutional neural networks:
a core-set approach", ICLR 2018; the kCenterGreedy baseline of DeepCore, Guo et al. 2022,
and of the FoQuS paper, Lu et al. 2025).

Per stratum (class by default), in the penultimate embedding space of the shared
full-data scoring run: start from one seeded random signal, then repeatedly add the
signal farthest (Euclidean) from its nearest chosen centre, which greedily minimises the
covering radius. Only the running minimum distance of every signal to the chosen set is
kept: each step is one matrix-vector product against the new centre, so memory is
O(n * d) and time O(budget * n * d); no n x n (nor DeepCore's budget x n) distance matrix.
A traversal is a prefix of any longer one from the same start, so the rates of a grid
extend one memoised traversal per (seed, stratum) instead of starting again.

Defaults and reference choices:
- ``embedding: model``: embeddings of the shared scoring model (DeepCore fine-tunes an
  ImageNet-pretrained ResNet-18 on 224 px images, which does not exist for I/Q; this
  deviation is common to every amrbench selector). ``input`` uses the raw I/Q vectors.
- one random initial centre, included in the selection (as DeepCore).
- ``weighted: false``; ``true`` returns per-sample weights = the number of stratum
  members whose nearest centre is that signal (the k-center coreset's cell sizes).
- ``stratify: class`` (class-balanced, as the FoQuS protocol) or ``class_snr``.

Numerics: distances use the expansion ||x||^2 + ||y||^2 - 2 x.y, which cancels
catastrophically in float32 when the points share a large common offset (penultimate
ReLU features do): with rows 100 + 0.3 N(0, 1) only a few percent of the greedy picks
would match a float64 run. Each stratum's features are therefore centred on their mean
first; Euclidean distances are translation-invariant, so the traversal is the same in
exact arithmetic and matches float64 in practice.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from amrbench.api import Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench_plugins.select.scoring import derived
from amrbench_plugins.select.selection import STRATIFY, pick_per_stratum

CHUNK_ELEMENTS = 1 << 22  # distance blocks of at most 4M entries (16 MB in float32)


class FarthestFirst:
    """A resumable farthest-first traversal over n points. ``distance_to(j)`` returns the
    (n,) distances from point j to every point; only their running minimum is kept."""

    def __init__(self, distance_to: Callable[[int], torch.Tensor], n: int, start: int, dtype=torch.float32):
        self.distance_to = distance_to
        self.n = n
        self.start = int(start)
        self.order: list[int] = []
        self.mins = torch.full((n,), math.inf, dtype=dtype)

    def extend(self, k: int) -> list[int]:
        """The first ``k`` centres (computing only those not yet known)."""
        k = min(int(k), self.n)
        while len(self.order) < k:
            j = self.start if not self.order else int(torch.argmax(self.mins))
            self.order.append(j)
            torch.minimum(self.mins, self.distance_to(j), out=self.mins)
            self.mins[j] = -math.inf  # never again, even among exact duplicates
        return self.order[:k]

    def radius(self) -> float:
        """Covering radius of the centres chosen so far (in the distance's units)."""
        rest = self.mins[self.mins > -math.inf]
        return float(rest.max()) if len(rest) else 0.0


def centred(features: torch.Tensor) -> torch.Tensor:
    """``features`` minus their mean row: same distances, no float32 cancellation."""
    return features - features.mean(0, keepdim=True)


def euclidean_traversal(features: torch.Tensor, start: int) -> FarthestFirst:
    """Farthest-first in squared Euclidean distance (same argmax as Euclidean), on
    centred features."""
    features = centred(features)
    sq = features.pow(2).sum(1)

    def distance_to(j: int) -> torch.Tensor:
        return torch.addmv(sq + sq[j], features, features[j], alpha=-2).clamp_min_(0)

    return FarthestFirst(distance_to, features.shape[0], start, features.dtype)


def farthest_first(features: torch.Tensor, k: int, start: int) -> torch.Tensor:
    """Indices (into ``features``) of k centres by Euclidean farthest-first from ``start``."""
    return torch.tensor(euclidean_traversal(features, start).extend(k), dtype=torch.int64)


def nearest_center_counts(features: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """How many rows of ``features`` have each of ``centers`` (row indices) as their
    nearest centre; chunked, never n x n; centred like the traversal."""
    features = centred(features)
    c = features[centers]
    c_sq = c.pow(2).sum(1)
    counts = torch.zeros(len(centers), dtype=torch.int64)
    rows = max(1, CHUNK_ELEMENTS // max(1, len(centers)))
    for s in range(0, features.shape[0], rows):
        block = features[s:s + rows]
        d = torch.addmm(block.pow(2).sum(1, keepdim=True) + c_sq, block, c.T, alpha=-2)
        counts += torch.bincount(d.argmin(1), minlength=len(centers))
    return counts


class KCenterGreedy(Selector):
    """k-Center Greedy: farthest-first covering of each class in embedding space."""

    name = "kcenter"
    version = "2"
    defaults = {"embedding": "model", "weighted": False, "stratify": "class"}
    choices = {"embedding": ("model", "input"), "weighted": (False, True), "stratify": STRATIFY}
    needs = ("dynamics",)

    def select(self, ctx, train, budget):
        p = self.params
        if p["embedding"] == "input":
            owner, features = train, train.x.flatten(1)
        else:
            owner = ctx.resource("dynamics")
            features = owner["embeddings"]
        features = features.float().contiguous()
        weights = torch.zeros(len(train))

        def pick(key, members, quota):
            def make():
                start = int(ctx.rng("kcenter", *key).integers(len(members)))
                return euclidean_traversal(features[torch.from_numpy(members)].contiguous(), start)

            memo = ("kcenter", p["embedding"], ctx.seed, p["stratify"], key, len(members))
            local = derived(owner, memo, make).extend(quota)
            chosen = members[np.asarray(local, dtype=np.int64)]
            if p["weighted"]:
                counts = nearest_center_counts(features[torch.from_numpy(members)], torch.tensor(local))
                weights[torch.from_numpy(chosen)] = counts.float()
            return chosen

        indices = pick_per_stratum(train, budget, p["stratify"], pick)
        return Selection(indices, weights[indices] if p["weighted"] else None)


@hookimpl
def amrbench_register(registry):
    registry.add(KCenterGreedy)
