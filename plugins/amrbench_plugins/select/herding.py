"""Herding (Welling, "Herding dynamical weights to learn", ICML 2009), one of the
baselines of DeepCore (Guo, Zhao & Bai, DEXA 2022) and of the FoQuS paper (Lu et al. 2025).

Per class (or class x SNR with ``stratify: class_snr``), in the penultimate embedding
space of the selection model (the shared full-data scoring run): greedily add the signal
that brings the mean of the selected set closest to the stratum mean.

With s signals chosen, running sum r and stratum mean mu, the candidate i minimising
||(r + f_i) / (s + 1) - mu||^2 is the one minimising ||f_i||^2 + 2 f_i . (r - (s + 1) mu),
so each step is one matrix-vector product: O(budget * n * d) time, O(n * d) memory, no
n x n matrix and no per-step n x d temporaries.

Defaults and reference choices:
- ``variant: herding`` (default): the argmin above, Welling's herding, the method the
  baseline is named after (and the rule of the committed records). DeepCore's ``herding.py`` computes the same
  distance ||f_i - ((s + 1) mu - r)|| but takes its *argmax*: each step adds the signal
  that moves the running mean farthest from the stratum mean (no DeepCore issue reports
  this). ``variant: deepcore`` reproduces that rule, for DeepCore's baseline numbers; it
  is the argmax of the same objective, so both variants cost the same.
- embeddings of the trained scoring model (as DeepCore, which trains the model before
  embedding); ``embedding: input`` herds on the raw I/Q vectors instead.
- ``stratify: class`` (herding inside every class; DeepCore's default herds the whole
  set at once, ``balance=False``).
"""
import torch

from amrbench.api import AmrbenchError, Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench_plugins.select.selection import STRATIFY, pick_per_stratum, settle_added_params

VARIANTS = ("herding", "deepcore")
ADDED = {"variant": "herding"}  # left out of the cell key at its default (see settle_added_params)


def herd(features: torch.Tensor, k: int, variant: str = "herding") -> torch.Tensor:
    """Indices (into ``features``) of k rows chosen by herding, in selection order:
    ``herding`` adds the row that brings the running mean closest to the mean (argmin),
    ``deepcore`` the one that moves it farthest (argmax, DeepCore's rule)."""
    if variant not in VARIANTS:
        raise AmrbenchError(f"herding variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    farthest = variant == "deepcore"
    features = features.double()
    n = features.shape[0]
    k = min(k, n)
    mean = features.mean(0)
    square_norms = (features * features).sum(1)
    running = torch.zeros_like(mean)
    available = torch.ones(n, dtype=torch.bool)
    chosen = []
    for step in range(k):
        objective = torch.addmv(square_norms, features, running - (step + 1) * mean, alpha=2.0)
        if farthest:
            objective[~available] = float("-inf")
            best = int(torch.argmax(objective))
        else:
            objective[~available] = float("inf")
            best = int(torch.argmin(objective))
        chosen.append(best)
        available[best] = False
        running += features[best]
    return torch.tensor(chosen, dtype=torch.int64)


class Herding(Selector):
    """Herding: greedy per-class mean matching in the model's embedding space."""

    name = "herding"
    defaults = {"embedding": "model", **ADDED, "stratify": "class"}
    choices = {"embedding": ("model", "input"), "variant": VARIANTS, "stratify": STRATIFY}
    needs = ("dynamics",)

    def __init__(self, **params):
        super().__init__(**params)
        self.variant = settle_added_params(self.params, ADDED)["variant"]

    def select(self, ctx, train, budget):
        if self.params["embedding"] == "input":
            features = train.x.flatten(1)
        else:
            features = ctx.resource("dynamics")["embeddings"]

        def pick(_, members, quota):
            return members[herd(features[torch.from_numpy(members)], int(quota), self.variant).numpy()]

        return Selection(pick_per_stratum(train, budget, self.params["stratify"], pick))


@hookimpl
def amrbench_register(registry):
    registry.add(Herding)
