"""Margin (uncertainty sampling as in Coleman et al., "Selection via proxy: efficient
data selection for deep learning", ICLR 2020; DeepCore's Uncertainty baseline, Guo et al.
2022; a baseline of the FoQuS paper, Lu et al. 2025).

Score = p_(1) - p_(2), the gap between the two largest softmax probabilities of the
shared full-data scoring model (eval mode, after its last epoch); the smallest margins
(closest to the decision boundary) of each stratum are kept. Reference choices: the
smallest margins are kept in every mode (DeepCore inverts the order when ``balance`` is
off, its issue #11). Ties broken by a seeded permutation. ``stratify: class`` (default)
or ``class_snr``.
"""
import torch

from amrbench.api import Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench_plugins.select.selection import STRATIFY, top_per_stratum


def margin_scores(probs: torch.Tensor) -> torch.Tensor:
    """Top-1 minus top-2 probability per row (smaller = more uncertain)."""
    top = probs.double().topk(min(2, probs.shape[1]), dim=1).values
    return top[:, 0] - top[:, 1] if top.shape[1] > 1 else top[:, 0]


class Margin(Selector):
    """Margin: keep the signals with the smallest gap between the top two probabilities."""

    name = "margin"
    defaults = {"stratify": "class"}
    choices = {"stratify": STRATIFY}
    needs = ("dynamics",)

    def select(self, ctx, train, budget):
        scores = margin_scores(ctx.resource("dynamics")["probs"])
        tiebreak = ctx.rng("margin", "ties").permutation(len(train))
        return Selection(top_per_stratum(scores.numpy(), train, budget, False, self.params["stratify"], tiebreak))


@hookimpl
def amrbench_register(registry):
    registry.add(Margin)
