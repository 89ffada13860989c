"""Contract of ``condenser`` plugins, on a real cell context (``contract_context``, the
cell's source model the contracts' own small network): ``condense(ctx, train, spc)``
returns a SignalSet of finite signals with ``spc`` of each class, the training set's
classes and length; what it leaves on itself for the condensed artifact (``history``,
``lr``, ``seconds``, ``convergence``, ``details``) has the types ``amrbench.api``
declares; its network (``net_name``) is a registered model and the resources it needs
(``needs_for``) registered ones."""
import math

import pytest
import torch

from amrbench.api import Budget, SignalSet
from amrbench.contracts import light_params, plugin_cases, plugin_class
from amrbench.contracts.fixtures import contract_context

KIND = "condenser"
SPC = 2


def condensed(cls, params):
    """(the condenser after ``condense``, its SignalSet, the training split)."""
    ctx = contract_context(cls, params, Budget(spc=SPC))
    train, _ = ctx.resource("dataset")
    condenser = cls(**(params or {}))
    out = condenser.condense(ctx, train, SPC)
    assert isinstance(out, SignalSet), f"{cls.name}: condense returned {type(out).__name__}, not a SignalSet"
    return condenser, out, train


def check_condensed_set(cls, params=None) -> None:
    """``spc`` finite signals of every class, with the training set's classes and length."""
    _, out, train = condensed(cls, params)
    assert list(out.classes) == list(train.classes), f"{cls.name}: classes {out.classes} differ from the training set's"
    assert out.length == train.length, (
        f"{cls.name}: signals of length {out.length}, the training set's are {train.length}")
    per_class = out.class_counts().tolist()
    assert per_class == [SPC] * train.num_classes, f"{cls.name}: {per_class} signals per class, expected {SPC} each"
    assert torch.isfinite(out.x).all(), f"{cls.name}: non-finite condensed signals"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_reports(cls, params=None) -> None:
    """``history`` None or finite numbers; ``lr`` None or a finite number; ``seconds``
    and ``cpu_seconds`` None or >= 0; ``convergence`` and ``details`` None or dicts."""
    condenser, _, _ = condensed(cls, params)
    history = condenser.history
    assert history is None or (isinstance(history, (list, tuple)) and all(_is_number(v) for v in history)), (
        f"{cls.name}: history must be None or a list of finite numbers, got {str(history)[:80]}")
    assert condenser.lr is None or _is_number(condenser.lr), f"{cls.name}: lr must be None or a number"
    for attribute in ("seconds", "cpu_seconds"):
        value = getattr(condenser, attribute)
        assert value is None or (_is_number(value) and value >= 0), (
            f"{cls.name}: {attribute} must be None or a non-negative number, got {value!r}")
    for attribute in ("convergence", "details"):
        value = getattr(condenser, attribute)
        assert value is None or isinstance(value, dict), f"{cls.name}: {attribute} must be None or a dict"


def check_declarations(cls, params=None) -> None:
    """``net_name`` is None or a registered model; ``needs_for`` names registered resources."""
    ctx = contract_context(cls, params, Budget(spc=SPC))
    net = cls(**(params or {})).net_name(ctx)
    assert net is None or net.rpartition(":")[2] in ctx.registry.plugins["model"], (
        f"{cls.name}: net_name {net!r} is no registered model")
    needs = cls.needs_for(ctx.registry, params or {})
    unknown = [kind for kind in needs if kind != "dataset" and kind not in ctx.registry.resources]
    assert not unknown, f"{cls.name}: needs unregistered resources {unknown}"


CHECKS = [check_condensed_set, check_reports, check_declarations]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__[len("check_"):])
@pytest.mark.parametrize("name", plugin_cases(KIND))
def test_condenser_contract(name, check):
    check(plugin_class(KIND, name), light_params(KIND, name))
