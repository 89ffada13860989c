"""Coreset: a selector plugin run as a condenser, so coreset baselines (Random,
Forgetting, Herding, ... of MDM Table I) are measured under the condense protocol at the
same signals per class as DC/DM/MDM.

``selector``: the selector plugin's name (``uniform`` = the paper's "Random",
``forgetting``, ``herding``, ...); ``selector_params``: its parameters. The selector is
created through the registry and asked for ``Budget(spc=spc)``; the condensed set is the
selected real signals (with their SNRs, and weights when the selector gives them). A
selector that needs shared resources (e.g. Forgetting reads the full-data scoring run
"dynamics" of the source model) gets them through ``ctx`` as under the select protocol;
the condense protocol's ``settings.scoring`` sets that run's training.
"""
from __future__ import annotations

import torch

from amrbench.api import AmrbenchError, Budget, Condenser
from amrbench.hookspecs import hookimpl
from amrbench_plugins.select.selection import check_selection


class Coreset(Condenser):
    """Coreset baseline under the condense protocol: the SPC real signals a selector picks."""

    name = "coreset"
    defaults = {"selector": "uniform", "selector_params": {}}

    def __init__(self, **params):
        super().__init__(**params)
        if not isinstance(self.params["selector"], str):
            raise AmrbenchError("condenser 'coreset': selector must be a selector name such as uniform or forgetting")
        if not isinstance(self.params["selector_params"] or {}, dict):
            raise AmrbenchError("condenser 'coreset': selector_params must be a mapping")

    @classmethod
    def needs_for(cls, registry, params: dict) -> list:
        selector = registry.get("selector", (params or {}).get("selector", "uniform"))
        return list(selector.needs)

    def net_name(self, ctx):
        """No network of its own (a selector's scoring run is among its needs)."""
        return None

    def condense(self, ctx, train, spc):
        selector = ctx.registry.create("selector", self.params["selector"], self.params["selector_params"] or {})
        budget = Budget(spc=int(spc))
        selection = selector.select(ctx, train, budget)
        indices = check_selection(selection.indices, train, budget)
        subset = train.subset(torch.sort(indices).values)
        if selection.weights is not None:
            weights = torch.as_tensor(selection.weights, dtype=torch.float32)
            subset = subset.with_weights(weights[torch.argsort(indices)])
        subset.name = f"{train.name}:coreset-{self.params['selector']}"
        return subset


@hookimpl
def amrbench_register(registry):
    registry.add(Coreset)
