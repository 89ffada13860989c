"""GraNd (Paul, Ganguli & Dziugaite, "Deep learning on a data diet: finding important
examples early in training", NeurIPS 2021; DeepCore's GraNd baseline, Guo et al. 2022; a
baseline of the FoQuS paper, Lu et al. 2025).

Score = the norm of the per-sample loss gradient, averaged over several independently
initialised networks trained briefly; the largest scores of each stratum are kept. The
gradient norms come from the shared ``gradnorms`` resource (``amrbench_plugins.select.scoring``),
computed once per (dataset, source model, seed, settings) and reused by every rate.

Defaults and reference choices (the paper gives none):
- ``repeats: 10`` random initialisations (DeepCore's default; Paul et al. also use 10),
  each trained ``epochs`` epochs on the full training split with the scoring run's
  settings; ``epochs: null`` = min(10, the scoring run's epochs T) (DeepCore trains
  ``selection_epochs``, 10 in its paper's Table 1). Cost: repeats x epochs full-data
  epochs per (dataset, model, seed), on top of the T-epoch dynamics run.
- the gradient is that of the last (linear) layer, weights and bias, in eval mode, as
  DeepCore computes it: ||p - onehot(y)|| * sqrt(||h||^2 + 1); without DeepCore's 1/B
  batch factor. Paul et al. use the full gradient; the last layer is the usual proxy.
- ties broken by a seeded permutation; ``stratify: class`` (default) or ``class_snr``.
"""
from amrbench.api import AmrbenchError, Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench_plugins.select import scoring
from amrbench_plugins.select.selection import STRATIFY, top_per_stratum


class GraNd(Selector):
    """GraNd: keep the signals with the largest last-layer gradient norm (mean of inits)."""

    name = "grand"
    defaults = {"repeats": scoring.GRAND_REPEATS, "epochs": None, "stratify": "class"}
    choices = {"stratify": STRATIFY}
    needs = ("gradnorms",)

    def __init__(self, **params):
        super().__init__(**params)
        r, e = self.params["repeats"], self.params["epochs"]
        if not isinstance(r, int) or isinstance(r, bool) or r < 1:
            raise AmrbenchError(f"selector 'grand': repeats must be a positive integer, got {r!r}")
        if e is not None and (not isinstance(e, int) or isinstance(e, bool) or e < 0):
            raise AmrbenchError(f"selector 'grand': epochs must be a non-negative integer or null, got {e!r}")

    def select(self, ctx, train, budget):
        scores = ctx.resource("gradnorms")["norms"].double().mean(0)
        tiebreak = ctx.rng("grand", "ties").permutation(len(train))
        return Selection(top_per_stratum(scores.numpy(), train, budget, True, self.params["stratify"], tiebreak))


@hookimpl
def amrbench_register(registry):
    registry.add(GraNd)
