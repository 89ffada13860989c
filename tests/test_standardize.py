"""Train-fitted per-channel standardisation of the I/Q channels (``standardize: true``)."""
from __future__ import annotations

import torch

from amrbench.api import SignalSet


def test_standardize_uses_the_training_split_statistics_per_channel():
    from amrbench.data.splits import standardize_channels

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, 16, generator=gen) * torch.tensor([0.005, 3.0]).view(1, 2, 1) + torch.tensor([1e-3, -2.0]).view(1, 2, 1)
    train = SignalSet(x[:30], torch.arange(30) % 3, torch.zeros(30), ["a", "b", "c"], "t", torch.rand(30, generator=gen))
    test = SignalSet(x[30:], torch.arange(10) % 3, torch.zeros(10), ["a", "b", "c"], "t")
    std_train, std_test = standardize_channels(train, test)
    assert torch.allclose(std_train.x.mean((0, 2)), torch.zeros(2), atol=1e-6)
    assert torch.allclose(std_train.x.std((0, 2)), torch.ones(2), atol=1e-5)
    # the test split goes through the same affine map, fitted on train only
    mean, std = x[:30].double().mean((0, 2)), x[:30].double().std((0, 2))
    expected = ((x[30:].double() - mean.view(1, 2, 1)) / std.view(1, 2, 1)).float()
    assert torch.allclose(std_test.x, expected, atol=1e-6)
    assert torch.equal(std_train.y, train.y) and torch.equal(std_train.weights, train.weights)
    # a constant channel is centred, never divided by zero
    flat = SignalSet(torch.ones(4, 2, 8), torch.zeros(4), torch.zeros(4), ["a"], "flat")
    assert torch.equal(standardize_channels(flat, flat)[0].x, torch.zeros(4, 2, 8))


def test_load_splits_standardize_keeps_the_split_and_rescales():
    from amrbench.registry import default_registry
    from amrbench.resources import load_splits

    spec = {"name": "rml2016a-synth", "params": {"per_class_per_snr": 4, "length": 32, "snr_range": [10, 18, 8]},
            "snr": [10, 18], "test_fraction": 0.25, "seed": 0}
    raw_train, raw_test = load_splits(default_registry(), spec)
    train, test = load_splits(default_registry(), {**spec, "standardize": True})
    assert raw_train.x.abs().mean() < 0.05  # the faithful L1 scale
    assert torch.equal(train.y, raw_train.y) and torch.equal(test.snr, raw_test.snr)
    assert torch.allclose(train.x.std((0, 2)), torch.ones(2), atol=1e-4)
    scale = raw_train.x.double().std((0, 2)).view(1, 2, 1)
    shift = raw_train.x.double().mean((0, 2)).view(1, 2, 1)
    assert torch.allclose(test.x.double(), (raw_test.x.double() - shift) / scale, atol=1e-5)
