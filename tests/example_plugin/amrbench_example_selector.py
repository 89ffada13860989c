"""What a third party writes to add a selector to amrbench (see the README)."""
import numpy as np
import torch

from amrbench.api import Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench_plugins.select.selection import class_members, quotas


class Spread(Selector):
    """Evenly spaced signals of each class (a third-party example)."""

    name = "spread"
    defaults = {"offset": 0}

    def select(self, ctx, train, budget):
        picked = []
        for members, quota in zip(class_members(train), quotas(train, budget)):
            positions = np.linspace(0, len(members) - 1, num=quota).round().astype(int)
            picked.append(members[(positions + self.params["offset"]) % len(members)])
        return Selection(torch.from_numpy(np.unique(np.concatenate(picked))))


@hookimpl
def amrbench_register(registry):
    registry.add(Spread)
