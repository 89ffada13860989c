"""Contract of ``dataset`` plugins that need no file: ``load(seed)`` gives a non-empty
SignalSet of finite float32 (N, 2, L) signals in which every class of ``classes`` occurs;
a class list fixed in code (the class attribute ``classes``) is the one loaded; an SNR
grid told without loading (``snr_values()``) is the one loaded; the same seed gives the
same data.

A plugin whose ``defaults`` hold ``path: None`` reads a file the user names (a loader):
it has no data to check here and is skipped (its reader is tested on files of its own)."""
import math

import pytest
import torch

from amrbench.api import SignalSet
from amrbench.contracts import light_params, plugin_cases, plugin_class

KIND = "dataset"


def needs_file(cls) -> bool:
    """A loader: its ``path`` parameter has no default."""
    return "path" in cls.defaults and cls.defaults["path"] is None


def loaded(cls, params, seed: int = 0) -> SignalSet:
    data = cls(**(params or {})).load(seed=seed)
    assert isinstance(data, SignalSet), f"{cls.name}: load returned {type(data).__name__}, not a SignalSet"
    return data


def check_signals(cls, params=None) -> None:
    """Non-empty, finite float32 (N, 2, L); every class occurs; class names are strings."""
    data = loaded(cls, params)
    assert len(data) > 0 and data.length > 0, f"{cls.name}: load gave no signals"
    assert data.x.dtype == torch.float32 and torch.isfinite(data.x).all(), f"{cls.name}: non-finite signals"
    assert data.classes and all(isinstance(c, str) for c in data.classes), (
        f"{cls.name}: classes must be a non-empty list of names, got {data.classes!r}")
    missing = sorted(set(range(data.num_classes)) - set(data.y.unique().tolist()))
    assert not missing, f"{cls.name}: classes {[data.classes[c] for c in missing]} have no signal"


def check_declared_classes_and_snr(cls, params=None) -> None:
    """What the plugin tells without loading (the cost model and ``datasets info`` read it)
    matches what it loads: the class attribute ``classes`` and ``snr_values()``."""
    plugin = cls(**(params or {}))
    data = loaded(cls, params)
    if cls.classes is not None:
        assert list(data.classes) == list(cls.classes), (
            f"{cls.name}: declares classes {list(cls.classes)} but loads {list(data.classes)}")
    grid = plugin.snr_values()
    if grid is not None:
        found = sorted({round(float(s), 6) for s in data.snr.tolist() if not math.isnan(s)})
        assert found == sorted({round(float(s), 6) for s in grid}), (
            f"{cls.name}: snr_values() says {sorted(grid)} but the loaded SNRs are {found}")


def check_seeded(cls, params=None) -> None:
    """Two loads with the same seed (fresh plugin objects) give the same signals."""
    first, second = loaded(cls, params, seed=3), loaded(cls, params, seed=3)
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y), (
        f"{cls.name}: the same seed gave different signals")
    assert torch.allclose(first.snr, second.snr, equal_nan=True) and first.classes == second.classes, (
        f"{cls.name}: the same seed gave different SNRs or classes")


CHECKS = [check_signals, check_declared_classes_and_snr, check_seeded]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__[len("check_"):])
@pytest.mark.parametrize("name", plugin_cases(KIND))
def test_dataset_contract(name, check):
    cls = plugin_class(KIND, name)
    if needs_file(cls):
        pytest.skip(f"{name} loads a file the user names (path has no default)")
    check(cls, light_params(KIND, name))
