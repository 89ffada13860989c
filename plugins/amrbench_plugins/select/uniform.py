"""Uniform: random class-balanced selection, the baseline of every coreset table.

Each class (or class x SNR with ``stratify: class_snr``) keeps its share of the budget,
drawn uniformly without replacement from a generator seeded by the cell's seed (so
repeats differ, reruns do not).
"""
from amrbench.api import Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench_plugins.select.selection import STRATIFY, random_per_stratum


class Uniform(Selector):
    """Uniform random class-balanced sampling (baseline)."""

    name = "uniform"
    defaults = {"stratify": "class"}
    choices = {"stratify": STRATIFY}

    def select(self, ctx, train, budget):
        return Selection(random_per_stratum(ctx.rng("uniform"), train, budget, self.params["stratify"]))


@hookimpl
def amrbench_register(registry):
    registry.add(Uniform)
