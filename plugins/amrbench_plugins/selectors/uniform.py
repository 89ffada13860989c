"""Uniform: random class-balanced selection, the baseline of every coreset table.

Each class keeps its share of the budget, drawn uniformly without replacement from a
generator seeded by the cell's seed (so repeats differ, reruns do not).
"""
from amrbench.api import Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench.selection import random_per_class


class Uniform(Selector):
    """Uniform random class-balanced sampling (baseline)."""

    name = "uniform"

    def select(self, ctx, train, budget):
        return Selection(random_per_class(ctx.rng("uniform"), train, budget))


@hookimpl
def amrbench_register(registry):
    registry.add(Uniform)
