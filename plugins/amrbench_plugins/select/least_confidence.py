"""Least Confidence (uncertainty sampling as in Coleman et al., "Selection via proxy:
efficient data selection for deep learning", ICLR 2020; DeepCore's Uncertainty baseline,
Guo et al. 2022; a baseline of the FoQuS paper, Lu et al. 2025).

Score = 1 - max_c p_c, the softmax probabilities of the shared full-data scoring model
(eval mode, after its last epoch); the least confident signals of each stratum are kept.

Reference choices: confidence is the softmax maximum, as the FoQuS paper describes it
(DeepCore uses the maximum raw logit); the least confident are kept in every mode
(DeepCore inverts the order when ``balance`` is off, its issue #11). Ties broken by a
seeded permutation. ``stratify: class`` (default) or ``class_snr``.
"""
import torch

from amrbench.api import Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench_plugins.select.selection import STRATIFY, top_per_stratum


def least_confidence_scores(probs: torch.Tensor) -> torch.Tensor:
    """1 - max probability per row (higher = less confident)."""
    return 1.0 - probs.double().max(1).values


class LeastConfidence(Selector):
    """Least Confidence: keep the signals whose top class probability is lowest."""

    name = "least-confidence"
    defaults = {"stratify": "class"}
    choices = {"stratify": STRATIFY}
    needs = ("dynamics",)

    def select(self, ctx, train, budget):
        scores = least_confidence_scores(ctx.resource("dynamics")["probs"])
        tiebreak = ctx.rng("least-confidence", "ties").permutation(len(train))
        return Selection(top_per_stratum(scores.numpy(), train, budget, True, self.params["stratify"], tiebreak))


@hookimpl
def amrbench_register(registry):
    registry.add(LeastConfidence)
