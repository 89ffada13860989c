"""Contract of ``model`` plugins: ``build(num_classes, length)`` gives an ``AMRNet`` that
takes (N, 2, L) I/Q in its declared input format and returns (N, C) finite logits equal
to ``head(embed(x))`` with a 2-D embedding; ``last_conv`` (what Grad-CAM hooks) is None
or one of the network's own modules; one backward pass gives finite gradients; the same
torch seed builds the same weights (every run's cells depend on it)."""
import pytest
import torch
from torch.nn import functional

from amrbench import transforms
from amrbench.api import AMRNet, seed_torch
from amrbench.contracts import light_params, plugin_cases, plugin_class
from amrbench.contracts.fixtures import signals

KIND = "model"
NUM_CLASSES = 4
#: The signal lengths every model is built for (RML2016's 128, and a shorter one).
LENGTHS = (128, 64)
BATCH = 3


def built(cls, params, length: int, seed: int = 0) -> AMRNet:
    seed_torch(seed, "contract", "init")
    return cls(**(params or {})).build(NUM_CLASSES, length)


def inputs(cls, params, length: int) -> torch.Tensor:
    return transforms.apply(cls(**(params or {})).input_format, signals(BATCH, length).x)


def check_network(cls, params=None) -> None:
    """Logits (N, C) and embedding (N, D), finite, logits = head(embed(x)), for every length."""
    declared = cls(**(params or {})).input_format
    assert declared in transforms.FORMATS, f"{cls.name}: input_format {declared!r} is not one of {transforms.FORMATS}"
    for length in LENGTHS:
        net = built(cls, params, length)
        assert isinstance(net, AMRNet), f"{cls.name}: build returned {type(net).__name__}, not an AMRNet"
        net.eval()
        x = inputs(cls, params, length)
        with torch.no_grad():
            logits, features = net(x), net.embed(x)
            through_head = net.head(features)
        assert logits.shape == (BATCH, NUM_CLASSES), (
            f"{cls.name} (L={length}): logits shape {tuple(logits.shape)}, expected {(BATCH, NUM_CLASSES)}")
        assert torch.isfinite(logits).all(), f"{cls.name} (L={length}): non-finite logits"
        assert features.dim() == 2 and features.shape[0] == BATCH, (
            f"{cls.name} (L={length}): embed gave shape {tuple(features.shape)}, expected (N, D)")
        assert torch.isfinite(features).all(), f"{cls.name} (L={length}): non-finite embedding"
        assert torch.allclose(through_head, logits, rtol=1e-4, atol=1e-5), (
            f"{cls.name} (L={length}): head(embed(x)) differs from forward(x); selectors and condensers read "
            "embed as the penultimate features")


def check_last_conv(cls, params=None) -> None:
    """``last_conv`` is None or a module of the network itself (else Grad-CAM's hook never fires)."""
    net = built(cls, params, LENGTHS[0])
    conv = net.last_conv
    assert conv is None or any(module is conv for module in net.modules()), (
        f"{cls.name}: last_conv is {type(conv).__name__}, not one of the network's modules")


def check_gradients(cls, params=None) -> None:
    """A training step's backward pass reaches the weights with finite gradients."""
    net = built(cls, params, LENGTHS[0])
    net.train()
    x = inputs(cls, params, LENGTHS[0])
    functional.cross_entropy(net(x), torch.arange(BATCH) % NUM_CLASSES).backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad and p.grad is not None]
    assert grads, f"{cls.name}: no parameter received a gradient"
    assert all(torch.isfinite(g).all() for g in grads), f"{cls.name}: non-finite gradients"
    assert any(bool(g.abs().sum() > 0) for g in grads), f"{cls.name}: every gradient is zero"


def check_seeded_weights(cls, params=None) -> None:
    """The same torch seed builds the same initial weights."""
    first, second = built(cls, params, LENGTHS[0]).state_dict(), built(cls, params, LENGTHS[0]).state_dict()
    assert first.keys() == second.keys(), f"{cls.name}: two builds have different parameters"
    differ = [key for key in first if not torch.equal(first[key], second[key])]
    assert not differ, f"{cls.name}: the same seed built different weights ({differ[0]}, ...)"


CHECKS = [check_network, check_last_conv, check_gradients, check_seeded_weights]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__[len("check_"):])
@pytest.mark.parametrize("name", plugin_cases(KIND))
def test_model_contract(name, check):
    check(plugin_class(KIND, name), light_params(KIND, name))
