"""Contract of ``explainer`` plugins: ``explain(model, x, target)`` on a network's
transformed input gives finite (N, L) weights in [0, 1], for a 1-D convolutional
network, a 2-D one on the ``iq_2d`` image view, and a recurrent one without convolution.

An explainer that does not apply to a network raises an exception class named
``NotApplicable`` (the explain protocol records such a cell as not applicable, e.g.
Grad-CAM on a network without ``last_conv``): that case is skipped, not failed."""
import pytest
import torch

from amrbench import transforms
from amrbench.api import seed_torch
from amrbench.contracts import light_params, plugin_cases, plugin_class
from amrbench.contracts.fixtures import EXPLAINED_NETS, signals

KIND = "explainer"
NUM_CLASSES, LENGTH, BATCH = 4, 64, 6


def not_applicable(exc: BaseException) -> bool:
    """The explainer declined the network (an exception class named ``NotApplicable``)."""
    return any(klass.__name__ == "NotApplicable" for klass in type(exc).__mro__)


def check_weights(cls, params=None, net: str = "conv") -> None:
    """(N, L) finite weights in [0, 1] for the targets of N signals."""
    input_format, network = EXPLAINED_NETS[net]
    seed_torch(0, "contract", "explained", net)
    model = network(NUM_CLASSES).eval()
    data = signals(BATCH, LENGTH, NUM_CLASSES)
    weights = cls(**(params or {})).explain(model, transforms.apply(input_format, data.x), data.y)
    where = f"{cls.name} on the {net} network"
    assert isinstance(weights, torch.Tensor) and weights.shape == (BATCH, LENGTH), (
        f"{where}: weights of shape {tuple(getattr(weights, 'shape', ()))}, expected {(BATCH, LENGTH)}")
    weights = weights.detach()
    assert torch.isfinite(weights).all(), f"{where}: non-finite weights"
    assert float(weights.min()) >= 0 and float(weights.max()) <= 1, (
        f"{where}: weights in [{float(weights.min()):.3g}, {float(weights.max()):.3g}], not in [0, 1]")


@pytest.mark.parametrize("net", list(EXPLAINED_NETS))
@pytest.mark.parametrize("name", plugin_cases(KIND))
def test_explainer_contract(name, net):
    try:
        check_weights(plugin_class(KIND, name), light_params(KIND, name), net)
    except Exception as exc:
        if not_applicable(exc):
            pytest.skip(f"{name} does not apply to the {net} network: {exc}")
        raise
