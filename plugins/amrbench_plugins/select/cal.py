"""Cal, contrastive active learning (Margatina, Vernikos, Barrault & Aletras, "Active
learning by acquiring contrastive examples", EMNLP 2021), as DeepCore's Cal baseline
(Guo et al. 2022) that the FoQuS paper (Lu et al. 2025) compares against.

Contrastive signals are close in feature space but predicted differently: for every
signal, find its ``neighbors`` nearest neighbours (Euclidean, penultimate embeddings of the
shared full-data scoring model) and score it by the mean symmetric KL divergence between
its predicted class distribution and theirs; keep the highest scores of every stratum.
The neighbour search is chunked (blocks of at most 8M distances): memory O(n * d + n * k),
never an n x n matrix. Scores are memoised per scoring run, so every rate reuses them.

Defaults and reference choices (the paper gives none):
- ``neighbors: 10`` (DeepCore's default), searched ``scope: class`` (within the signal's
  class, as DeepCore does with ``balance=True``); ``scope: all`` searches the whole
  training split (cross-class contrast; cost O(N^2 d), still chunked).
- embeddings and softmax probabilities both from the one shared scoring run (DeepCore
  takes the kNN from an ImageNet-pretrained ResNet-18, which does not exist for I/Q).
- the *most* contrastive (highest divergence) signals are kept, as the method intends;
  DeepCore keeps the lowest (its issue #29).
- ``kl: symmetric`` (default): 0.5 KL(p||q) + 0.5 KL(q||p) between the signal's
  distribution p and each neighbour's q. This is what DeepCore computes (``calc_kl``),
  the baseline the FoQuS paper reports, and what the committed records used. The CAL
  paper scores a candidate by the mean of KL(q||p), the neighbour's distribution first
  (the authors' code, mourga/contrastive-active-learning, gives ``nn.KLDivLoss`` the
  candidate's log-probabilities as input and the neighbour's probabilities as target);
  ``kl: cal_paper`` takes that direction. It weighs most the classes that a neighbour
  believes in and the signal doubts.
- probabilities clamped at 1e-8 and renormalised in both forms (DeepCore has no epsilon).
- ties broken by a seeded permutation; ``stratify: class`` or ``class_snr``.
"""
from __future__ import annotations

import torch

from amrbench.api import AmrbenchError, Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench_plugins.select.scoring import derived
from amrbench_plugins.select.selection import STRATIFY, class_members, settle_added_params, top_per_stratum

CHUNK_ELEMENTS = 1 << 23  # distance blocks of at most 8M entries (32 MB)
EPS = 1e-8
KL_FORMS = ("symmetric", "cal_paper")
ADDED = {"kl": "symmetric"}  # left out of the cell key at its default (see settle_added_params)


def knn(features: torch.Tensor, k: int) -> torch.Tensor:
    """(n, k) indices of each row's k nearest other rows (Euclidean), computed in row
    blocks so that at most ``CHUNK_ELEMENTS`` distances exist at a time."""
    n = features.shape[0]
    k = min(int(k), n - 1)
    if k <= 0:
        return torch.zeros(n, 0, dtype=torch.int64)
    features = features.float().contiguous()
    half_sq = features.pow(2).sum(1).mul_(0.5)
    transposed = features.T.contiguous()
    out = torch.empty(n, k, dtype=torch.int64)
    rows = max(1, CHUNK_ELEMENTS // n)
    for s in range(0, n, rows):
        e = min(n, s + rows)
        # ||x_j||^2 / 2 - x_i . x_j orders the j of row i like the distance (||x_i||^2 is constant)
        d = torch.mm(features[s:e], transposed).neg_().add_(half_sq)
        d[torch.arange(e - s), torch.arange(s, e)] = float("inf")
        out[s:e] = d.topk(k, dim=1, largest=False).indices
    return out


def _mean_over_neighbours(probs: torch.Tensor, neighbours: torch.Tensor, eps: float, pair_term) -> torch.Tensor:
    """Mean over each row's neighbours of ``pair_term(p_row, log p_row, p_nb, log p_nb)``
    ((rows, k) from (rows, 1, C) and (rows, k, C)), on the eps-floored, renormalised
    distributions, in chunks that bound memory; (n,) float64."""
    p = probs.double().clamp_min(eps)
    p = p / p.sum(1, keepdim=True)
    logp = p.log()
    n, k = neighbours.shape
    out = torch.zeros(n, dtype=torch.float64)
    if k == 0:
        return out
    rows = max(1, CHUNK_ELEMENTS // max(1, k * p.shape[1]))
    for s in range(0, n, rows):
        idx = neighbours[s:s + rows]
        out[s:s + rows] = pair_term(p[s:s + rows, None, :], logp[s:s + rows, None, :], p[idx], logp[idx]).mean(1)
    return out


def symmetric_kl_to_neighbours(probs: torch.Tensor, neighbours: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Mean over each row's neighbours of 0.5 KL(p||q) + 0.5 KL(q||p), (n,) float64."""
    return _mean_over_neighbours(probs, neighbours, eps,
                                 lambda p, logp, q, logq: 0.5 * ((p - q) * (logp - logq)).sum(2))


def neighbour_kl_to_candidates(probs: torch.Tensor, neighbours: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Mean over each row's neighbours of KL(q||p), q a neighbour's distribution and p the
    row's own (the CAL paper's direction), (n,) float64."""
    return _mean_over_neighbours(probs, neighbours, eps, lambda p, logp, q, logq: (q * (logq - logp)).sum(2))


KL_TO_NEIGHBOURS = {"symmetric": symmetric_kl_to_neighbours, "cal_paper": neighbour_kl_to_candidates}


def cal_scores(embeddings: torch.Tensor, probs: torch.Tensor, neighbors: int, groups,
               kl: str = "symmetric") -> torch.Tensor:
    """Cal score of every signal, neighbours searched inside each index group, divergence
    in the ``kl`` form (see the module docstring)."""
    divergence = KL_TO_NEIGHBOURS[kl]
    scores = torch.zeros(embeddings.shape[0], dtype=torch.float64)
    for members in groups:
        index = torch.as_tensor(members, dtype=torch.int64)
        if len(index) == 0:
            continue
        local = knn(embeddings[index], neighbors)
        scores[index] = divergence(probs[index], local)
    return scores


class Cal(Selector):
    """Cal: keep signals whose nearest neighbours are predicted most differently (KL)."""

    name = "cal"
    defaults = {"neighbors": 10, "scope": "class", **ADDED, "stratify": "class"}
    choices = {"scope": ("class", "all"), "kl": KL_FORMS, "stratify": STRATIFY}
    needs = ("dynamics",)

    def __init__(self, **params):
        super().__init__(**params)
        self.kl = settle_added_params(self.params, ADDED)["kl"]
        k = self.params["neighbors"]
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise AmrbenchError(f"selector 'cal': neighbors must be a positive integer, got {k!r}")

    def select(self, ctx, train, budget):
        dynamics = ctx.resource("dynamics")
        k, scope = self.params["neighbors"], self.params["scope"]

        def make():
            groups = class_members(train) if scope == "class" else [range(len(train))]
            return cal_scores(dynamics["embeddings"], dynamics["probs"], k, groups, self.kl)

        scores = derived(dynamics, ("cal", k, scope, self.kl, len(train)), make)
        tiebreak = ctx.rng("cal", "ties").permutation(len(train))
        return Selection(top_per_stratum(scores.numpy(), train, budget, True, self.params["stratify"], tiebreak))


@hookimpl
def amrbench_register(registry):
    registry.add(Cal)
