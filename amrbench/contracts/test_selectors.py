"""Contract of ``selector`` plugins, on a real cell context (``contract_context``: the
shared resources a selector ``needs``, such as a scoring run, computed for real on tiny
data): ``select(ctx, train, budget)`` returns a ``Selection`` of unique, in-range integer
indices, class-balanced (each class keeps exactly ``Budget.per_class`` signals, the
default the select protocol promises, for a rate and for a per-class budget; the total
only for a selector that declares ``class_balanced = False``), weights
when given one finite value per index; the same seed selects the same signals; the
resources named in ``needs`` are registered ones."""
import pytest
import torch

from amrbench.api import Budget, Selection
from amrbench.contracts import light_params, plugin_cases, plugin_class
from amrbench.contracts.fixtures import contract_context

KIND = "selector"
BUDGETS = (Budget(rate=0.25), Budget(spc=2))


def selected(cls, params, budget: Budget, seed: int = 0):
    """(indices as a 1-D int64 tensor, weights or None, train) of one selection."""
    ctx = contract_context(cls, params, budget, seed)
    train, _ = ctx.resource("dataset")
    selection = cls(**(params or {})).select(ctx, train, budget)
    assert isinstance(selection, Selection), f"{cls.name}: select returned {type(selection).__name__}, not a Selection"
    indices = torch.as_tensor(selection.indices)
    assert indices.dim() == 1 and not indices.is_floating_point(), (
        f"{cls.name}: indices must be a 1-D integer tensor, got {indices.dtype} of shape {tuple(indices.shape)}")
    return indices.long(), selection.weights, train


def check_budget(cls, params=None) -> None:
    """Unique, in-range indices; exactly ``Budget.per_class`` of each class; weights aligned."""
    for budget in BUDGETS:
        indices, weights, train = selected(cls, params, budget)
        where = f"{cls.name} ({budget.label()})"
        assert len(indices) == 0 or (int(indices.min()) >= 0 and int(indices.max()) < len(train)), (
            f"{where}: indices outside 0..{len(train) - 1}")
        assert len(torch.unique(indices)) == len(indices), f"{where}: duplicate indices"
        kept = torch.bincount(train.y[indices], minlength=train.num_classes).tolist()
        quota = budget.per_class(train.class_counts()).tolist()
        if cls.class_balanced:
            assert kept == quota, f"{where}: kept {kept} signals per class, the budget is {quota}"
        else:
            assert sum(kept) == sum(quota), f"{where}: kept {sum(kept)} signals, the budget is {sum(quota)}"
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=torch.float32)
            assert weights.shape == indices.shape and torch.isfinite(weights).all(), (
                f"{where}: weights must be one finite value per index, got shape {tuple(weights.shape)}")


def check_seeded(cls, params=None) -> None:
    """A fresh selector in a fresh context of the same seed selects the same signals."""
    first, first_weights, _ = selected(cls, params, BUDGETS[0], seed=1)
    second, second_weights, _ = selected(cls, params, BUDGETS[0], seed=1)
    assert torch.equal(first.sort().values, second.sort().values), f"{cls.name}: the same seed selected differently"
    if first_weights is not None:
        assert torch.equal(torch.as_tensor(first_weights), torch.as_tensor(second_weights)), (
            f"{cls.name}: the same seed gave different weights")


def check_needs(cls, params=None) -> None:
    """Every resource in ``needs`` is registered (the harness computes it before the cell)."""
    ctx = contract_context(cls, params, BUDGETS[0])
    unknown = [kind for kind in cls.needs if kind != "dataset" and kind not in ctx.registry.resources]
    assert not unknown, f"{cls.name}: needs unregistered resources {unknown}"


CHECKS = [check_budget, check_seeded, check_needs]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__[len("check_"):])
@pytest.mark.parametrize("name", plugin_cases(KIND))
def test_selector_contract(name, check):
    check(plugin_class(KIND, name), light_params(KIND, name))
