"""FoQuS (Lu, Sun, Xu, Lin, Xuan & Gui, "FoQuS: a forgetting-quality coreset selection
framework for automatic modulation recognition", arXiv 2509.08300, 2025), Eqs. (2)-(8)
and Algorithm 1.

From the shared full-data scoring run of T epochs (per-epoch predictions recorded on the
training mini-batches, Eq. 2) with correctness c_i^(t) (Eq. 3) and cross-entropy
CE_i^(t):

- forgetting score        S_forget  = sum_{t=2..T} 1[c^(t-1) = 1 and c^(t) = 0]   (Eq. 4)
- persistent-error score  S_persist = sum_{t=2..T} 1[c^(t-1) = 0 and c^(t) = 0]   (Eq. 5)
- quality score           S_quality = (sum_t c^(t)) / T - beta * (sum_t CE^(t)) / T (Eqs. 6-7)
- FoQuS score             S = S_forget / (T-1) + S_persist / (T-1) + S_quality        (Eq. 8)

Eq. (4) prints the sum as i = 0..T; the transition needs t - 1, so t runs 2..T as in
Eq. (5). With T = 1 the two transition scores are 0. The scores are sorted in descending
order, the signals are partitioned into three tiers, and a proportion of the budget is
drawn from each tier (Algorithm 1, steps 10-12).

Parameters and defaults (where the paper gives no value, the choice is amrbench's):
- ``beta: 0.1`` (the paper's default).
- ``forgetting``, ``persistent_error``, ``quality`` (all true): switch each term of Eq. 8
  off for the ablation of Table V (at least one must stay on).
- ``normalize: eq8``: the sum exactly as Eq. 8. ``minmax`` instead scales each enabled
  term to [0, 1] over the training split before summing. Note that under Eq. 8 every
  transition ending in a wrong epoch is either a forgetting or a persistent error, so
  S_forget + S_persist counts the wrong epochs 2..T and nearly cancels the correctness
  part of S_quality: the full score ranks mostly by mean loss. ``minmax`` keeps the three
  terms separately visible.
- ``tier_sizes: [1, 1, 1]``: relative sizes of the three tiers of the sorted scores (top,
  middle, bottom), cut by rank: equal thirds (not given in the paper).
- ``tier_proportions: [1, 1, 1]``: relative shares of the budget drawn from the top,
  middle and bottom tier; equal thirds by default (the paper's "preset ratio" is not
  published). A tier too small for its share passes the rest to the others. Kept after
  ``suites/foqus_tiers.yaml --profile evidence`` (RML2016.10a, CNN1D, 1-20 %, 3 seeds)
  chose among seven variants on a validation split: its pick, equal thirds with
  ``within_tier: top``, was +0.78 [-6.88, +8.43] points against 1:1:1 on validation, an
  interval holding 0 (docs/selectors.md, "Choosing FoQuS's tiers").
- ``within_tier: random``: the signals of a tier are drawn uniformly (seeded by the cell
  seed), as "draw" reads; ``top`` takes each tier's highest scores instead.
- ``stratify: class``: tiers and draws are made inside every class (the paper's coresets
  are class-balanced); ``class_snr`` inside every (class, SNR) cell.
"""
from __future__ import annotations

import numpy as np
import torch

from amrbench.api import AmrbenchError, Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench_plugins.select.selection import STRATIFY, pick_per_stratum, split_quota

COMPONENTS = ("forgetting", "persistent_error", "quality")


def foqus_components(correct: torch.Tensor, loss: torch.Tensor, beta: float = 0.1) -> dict:
    """The three raw scores of every sample (Eqs. 4, 5, 7) from (T, N) correctness and
    per-epoch cross-entropy; float64 (N,) each, plus T."""
    c = torch.as_tensor(correct).bool()
    loss = torch.as_tensor(loss).double()
    t = c.shape[0]
    forget = (c[:-1] & ~c[1:]).sum(0).double()
    persist = (~c[:-1] & ~c[1:]).sum(0).double()
    quality = c.sum(0).double() / t - beta * loss.sum(0) / t
    return {"forgetting": forget, "persistent_error": persist, "quality": quality, "T": t}


def _minmax(v: torch.Tensor) -> torch.Tensor:
    span = v.max() - v.min() if len(v) else torch.tensor(0.0)
    return (v - v.min()) / span if float(span) > 0 else torch.zeros_like(v)


def foqus_scores(correct, loss, beta: float = 0.1, forgetting: bool = True, persistent_error: bool = True,
                 quality: bool = True, normalize: str = "eq8") -> torch.Tensor:
    """The FoQuS score of Eq. 8 (or its min-max variant) with the chosen terms."""
    parts = foqus_components(correct, loss, beta)
    t = parts["T"]
    enabled = {"forgetting": forgetting, "persistent_error": persistent_error, "quality": quality}
    if not any(enabled.values()):
        raise AmrbenchError("selector 'foqus': at least one of forgetting, persistent_error, quality must be on")
    total = torch.zeros_like(parts["quality"])
    for name in COMPONENTS:
        if not enabled[name]:
            continue
        value = parts[name]
        if normalize == "minmax":
            value = _minmax(value)
        elif name != "quality":
            value = value / (t - 1) if t > 1 else torch.zeros_like(value)
        total += value
    return total


def tiered_pick(members: np.ndarray, scores: np.ndarray, quota: int, tier_sizes, tier_proportions,
                within: str, rng: np.random.Generator, tiebreak: np.ndarray) -> np.ndarray:
    """Sort ``members`` by score (descending), cut them into tiers by rank, draw each
    tier's share of ``quota``."""
    order = members[np.lexsort((tiebreak[members], -scores[members]))]
    cuts = split_quota(len(order), tier_sizes, [len(order)] * len(tier_sizes))
    tiers = np.split(order, np.cumsum(cuts)[:-1])
    draws = split_quota(quota, tier_proportions, [len(t) for t in tiers])
    chosen = []
    for tier, k in zip(tiers, draws):
        if k > 0:
            chosen.append(tier[:k] if within == "top" else rng.choice(tier, int(k), replace=False))
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def _check_triple(name, value, allow_zero):
    ok = isinstance(value, (list, tuple)) and len(value) == 3 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in value) and sum(value) > 0
    if ok and not allow_zero:
        ok = all(v > 0 for v in value)
    if not ok:
        need = "non-negative" if allow_zero else "positive"
        raise AmrbenchError(f"selector 'foqus': {name} must be three {need} numbers (relative; top, middle, bottom) "
                            f"with a positive sum, got {value!r}")


class FoQuS(Selector):
    """FoQuS: forgetting + persistent-error + quality score, three-tier draw (Lu et al. 2025)."""

    name = "foqus"
    defaults = {"beta": 0.1, "forgetting": True, "persistent_error": True, "quality": True, "normalize": "eq8",
                "tier_sizes": [1, 1, 1], "tier_proportions": [1, 1, 1], "within_tier": "random",
                "stratify": "class"}
    choices = {"forgetting": (True, False), "persistent_error": (True, False), "quality": (True, False),
               "normalize": ("eq8", "minmax"), "within_tier": ("random", "top"), "stratify": STRATIFY}
    needs = ("dynamics",)

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        if not isinstance(p["beta"], (int, float)) or isinstance(p["beta"], bool):
            raise AmrbenchError(f"selector 'foqus': beta must be a number, got {p['beta']!r}")
        if not any(p[c] for c in COMPONENTS):
            raise AmrbenchError("selector 'foqus': at least one of forgetting, persistent_error, quality must be true")
        _check_triple("tier_sizes", p["tier_sizes"], allow_zero=False)
        _check_triple("tier_proportions", p["tier_proportions"], allow_zero=True)

    def scores(self, dynamics) -> torch.Tensor:
        p = self.params
        return foqus_scores(dynamics["correct"], dynamics["loss"], float(p["beta"]), p["forgetting"],
                            p["persistent_error"], p["quality"], p["normalize"])

    def select(self, ctx, train, budget):
        p = self.params
        scores = self.scores(ctx.resource("dynamics")).numpy()
        tiebreak = ctx.rng("foqus", "ties").permutation(len(train))

        def pick(key, members, quota):
            return tiered_pick(members, scores, quota, p["tier_sizes"], p["tier_proportions"], p["within_tier"],
                               ctx.rng("foqus", "draw", *key), tiebreak)

        return Selection(pick_per_stratum(train, budget, p["stratify"], pick))


@hookimpl
def amrbench_register(registry):
    registry.add(FoQuS)
