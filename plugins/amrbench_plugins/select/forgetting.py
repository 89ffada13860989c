"""Forgetting (Toneva, Sordoni, Combes, Trischler, Bengio & Gordon, "An empirical study of
example forgetting during deep neural network learning", ICLR 2019; DeepCore's
Forgetting baseline, Guo et al. 2022; a baseline of the FoQuS paper, Lu et al. 2025).

A forgetting event is a transition from correct to incorrect between consecutive epochs
of the shared full-data scoring run, whose per-epoch correctness is recorded from the
training mini-batches before each optimiser step (as Toneva et al. and DeepCore do). Score
= number of forgetting events; the most forgotten signals of each stratum are kept.

Defaults and reference choices:
- ``unlearned: max`` (default): signals never classified correctly in any of the T epochs
  count as the most forgettable, score T, above every signal that was learned (at most
  T/2 events). This is Toneva et al.'s rule (``order_examples_by_forgetting.py``
  gives them the number of presentations, one per epoch here), the method the baseline
  is named after. ``unlearned: zero`` is DeepCore's rule: it only counts 1 -> 0
  transitions, so a never-learned signal scores 0 and ties with the signals learned and
  never forgotten, at the bottom of the ranking (DeepCore orders such ties by a reversed
  ``argsort``, amrbench by the seeded permutation below).
- ties (frequent: scores are small integers) broken by a seeded permutation, not by
  index, which would favour the signals stored first (one SNR).
- ``stratify: class`` (default) or ``class_snr``.
"""
import torch

from amrbench.api import Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench_plugins.select.selection import STRATIFY, top_per_stratum


def forgetting_counts(correct: torch.Tensor) -> torch.Tensor:
    """Number of 1 -> 0 transitions between consecutive epochs, per sample; (T, N) -> (N,)."""
    c = torch.as_tensor(correct).bool()
    return (c[:-1] & ~c[1:]).sum(0).to(torch.float64)


def forgetting_scores(correct: torch.Tensor, unlearned: str = "max") -> torch.Tensor:
    """Forgetting events per sample from (T, N) correctness; a never-learned sample
    scores T with ``unlearned="max"`` (Toneva et al.) or 0 with ``"zero"`` (DeepCore)."""
    c = torch.as_tensor(correct).bool()
    scores = forgetting_counts(c)
    if unlearned == "max":
        scores[~c.any(0)] = float(c.shape[0])
    return scores


class Forgetting(Selector):
    """Forgetting: keep the signals forgotten most often during full-data training."""

    name = "forgetting"
    defaults = {"unlearned": "max", "stratify": "class"}
    choices = {"unlearned": ("max", "zero"), "stratify": STRATIFY}
    needs = ("dynamics",)

    def select(self, ctx, train, budget):
        scores = forgetting_scores(ctx.resource("dynamics")["correct"], self.params["unlearned"])
        tiebreak = ctx.rng("forgetting", "ties").permutation(len(train))
        return Selection(top_per_stratum(scores.numpy(), train, budget, True, self.params["stratify"], tiebreak))


@hookimpl
def amrbench_register(registry):
    registry.add(Forgetting)
