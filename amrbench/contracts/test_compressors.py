"""Contract of ``compressor`` plugins, fitted on a real cell context's training split
(``contract_context``): ``levels()`` is a non-empty list; at every level
``decode(encode(x))`` has ``x``'s shape and is finite, ``bits(level, length)`` is a
positive finite number, and a declared ``alphabet`` bounds the code's ``symbols``; a
codec that returns a state (``get_state``) is rebuilt from it by ``set_state`` into one
that reconstructs alike (unless ``stochastic``: its codes are drawn).

Not checked: the order of ``bits`` over levels (``levels`` are in table order, which
runs from the most to the fewest bits for some codecs and the other way for others)."""
import math

import pytest
import torch

from amrbench.contracts import light_params, plugin_cases, plugin_class
from amrbench.contracts.fixtures import contract_context

KIND = "compressor"
SIGNALS = 8


def fitted(cls, params):
    """(the fitted compressor, its context, a few training signals)."""
    ctx = contract_context(cls, params)
    train, _ = ctx.resource("dataset")
    codec = cls(**(params or {}))
    ctx.seed_torch("contract", "fit")
    codec.fit(ctx, train)
    return codec, ctx, train.x[:SIGNALS]


def reconstructed(codec, x: torch.Tensor, level) -> torch.Tensor:
    with torch.no_grad():
        return codec.decode(codec.encode(x.to(codec.device), level), level)


def check_levels(cls, params=None) -> None:
    """At every level: reconstruction of x's shape, finite; bits positive; symbols in the alphabet."""
    codec, _, x = fitted(cls, params)
    levels = codec.levels()
    assert isinstance(levels, list) and levels, f"{cls.name}: levels() must be a non-empty list, got {levels!r}"
    for level in levels:
        with torch.no_grad():
            code = codec.encode(x.to(codec.device), level)
            xhat = codec.decode(code, level)
        where = f"{cls.name} level {codec.level_label(level)}"
        assert isinstance(xhat, torch.Tensor) and xhat.shape == x.shape, (
            f"{where}: decode(encode(x)) has shape {tuple(getattr(xhat, 'shape', ()))}, x has {tuple(x.shape)}")
        assert torch.isfinite(xhat).all(), f"{where}: non-finite reconstruction"
        bits = codec.bits(level, x.shape[-1])
        assert isinstance(bits, (int, float)) and not isinstance(bits, bool) and math.isfinite(bits) and bits > 0, (
            f"{where}: bits(level, {x.shape[-1]}) must be a positive number, got {bits!r}")
        alphabet, symbols = codec.alphabet(level), codec.symbols(code, level)
        if alphabet is not None and symbols is not None:
            assert int(symbols.min()) >= 0 and int(symbols.max()) < alphabet, (
                f"{where}: symbols in {int(symbols.min())}..{int(symbols.max())}, the alphabet has {alphabet}")


def check_state(cls, params=None) -> None:
    """A fresh codec given ``get_state()`` through ``set_state`` reconstructs as the fitted one."""
    codec, ctx, x = fitted(cls, params)
    state = codec.get_state()
    if state is None:
        return  # kept as the fitted object itself, in memory only
    fresh = cls(**(params or {}))
    fresh.device = ctx.device  # as the harness does before set_state
    fresh.set_state(state)
    if codec.stochastic:
        return
    for level in codec.levels():
        assert torch.allclose(reconstructed(fresh, x, level), reconstructed(codec, x, level), rtol=1e-5, atol=1e-6), (
            f"{cls.name} level {codec.level_label(level)}: the codec restored by set_state reconstructs differently")


CHECKS = [check_levels, check_state]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__[len("check_"):])
@pytest.mark.parametrize("name", plugin_cases(KIND))
def test_compressor_contract(name, check):
    check(plugin_class(KIND, name), light_params(KIND, name))
