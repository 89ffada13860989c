"""Entropy (uncertainty sampling as in Coleman et al., "Selection via proxy: efficient
data selection for deep learning", ICLR 2020; DeepCore's Uncertainty baseline, Guo et al.
2022; a baseline of the FoQuS paper, Lu et al. 2025).

Score = -sum_c p_c log p_c of the softmax probabilities of the shared full-data scoring
model (eval mode, after its last epoch); the highest-entropy signals of each stratum are
kept. Reference choices: probabilities clamped at 1e-12 inside the log (DeepCore adds
1e-6); the most uncertain are kept in every mode (DeepCore inverts the order when
``balance`` is off, its issue #11). Ties broken by a seeded permutation.
``stratify: class`` (default) or ``class_snr``.
"""
import torch

from amrbench.api import Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench_plugins.select.selection import STRATIFY, top_per_stratum


def entropy_scores(probs: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Shannon entropy (nats) per row."""
    p = probs.double()
    return -(p * p.clamp_min(eps).log()).sum(1)


class Entropy(Selector):
    """Entropy: keep the signals whose predicted distribution has the highest entropy."""

    name = "entropy"
    defaults = {"stratify": "class"}
    choices = {"stratify": STRATIFY}
    needs = ("dynamics",)

    def select(self, ctx, train, budget):
        scores = entropy_scores(ctx.resource("dynamics")["probs"])
        tiebreak = ctx.rng("entropy", "ties").permutation(len(train))
        return Selection(top_per_stratum(scores.numpy(), train, budget, True, self.params["stratify"], tiebreak))


@hookimpl
def amrbench_register(registry):
    registry.add(Entropy)
