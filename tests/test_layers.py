"""amrbench_plugins.models.layers: FastDropout (the distribution, scaling, gradients and seeding of
nn.Dropout, with masks drawn from random integers) and the height-1 2-D form of 1-D
networks."""
import copy
import math

import pytest
import torch

from amrbench_plugins.models.layers import (
    FastDropout,
    as_height1_2d,
    convert_to_layout,
    drop_threshold,
    fast_dropout,
    height1_maps,
    keep_mask,
    memory_layout,
    scaled_keep_mask,
)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.75])
def test_drop_rate_and_scale(p, dtype):
    torch.manual_seed(0)
    n = 400_001  # odd: the last 31-bit draw is used for one element only
    mask = scaled_keep_mask((n,), p, "cpu", dtype)
    assert mask.dtype == dtype
    dropped = (mask == 0).double().mean().item()
    assert abs(dropped - p) < 4 * math.sqrt(p * (1 - p) / n)
    t = drop_threshold(p)
    assert abs(t / 2 ** 15 - p) <= 2 ** -16
    # the scale of the quantised probability: the expectation of the mask is exactly 1
    assert torch.all((mask == 0) | (mask == torch.tensor(2 ** 15 / (2 ** 15 - t), dtype=dtype)))
    if dtype == torch.float32:
        assert torch.equal(mask == 0, ~_seeded_keep_mask((n,), p))


def _seeded_keep_mask(shape, p):
    torch.manual_seed(0)
    return keep_mask(shape, p, "cpu")


def test_both_halves_of_a_draw_are_independent_fair_bits():
    """Each 31-bit draw feeds two elements (the first and second half of the tensor):
    dropping both must have probability p^2, and every one of the 15 bits per level must
    be a fair coin (a bias would show as a drop rate off p for p = 2^-k)."""
    torch.manual_seed(1)
    n, p = 1_000_000, 0.5
    mask = keep_mask((n,), p, "cpu")
    first, second = ~mask[: n // 2], ~mask[n // 2:]
    both = (first & second).double().mean().item()
    assert abs(both - p * p) < 4 * math.sqrt(p * p * (1 - p * p) / (n // 2))
    for k in range(1, 16):
        rate = (~keep_mask((n,), 2.0 ** -k, "cpu")).double().mean().item()
        assert abs(rate - 2.0 ** -k) < 4 * math.sqrt(2.0 ** -k / n) + 1e-6, k


def test_forward_backward_and_expectation():
    torch.manual_seed(2)
    layer = FastDropout(0.5).train()
    x = (torch.rand(64, 32, 2, 40) + 0.5).requires_grad_()
    out = layer(x)
    kept = out != 0
    assert 0.45 < kept.double().mean().item() < 0.55
    torch.testing.assert_close(out[kept], 2 * x.detach()[kept], rtol=0, atol=0)
    out.sum().backward()
    torch.testing.assert_close(x.grad, 2.0 * kept.float(), rtol=0, atol=0)
    # inverted dropout keeps the expectation
    assert abs(out.mean().item() / x.mean().item() - 1) < 0.02


def test_eval_mode_and_edge_probabilities_are_exact():
    x = torch.randn(8, 5, 7)
    assert torch.equal(FastDropout(0.5).eval()(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)
    assert torch.equal(FastDropout(1e-6).train()(x), x)  # below 2^-16: quantised to no drop
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        assert torch.count_nonzero(FastDropout(1.0).train()(x.to(dtype))) == 0
    with pytest.raises(ValueError, match="between 0 and 1"):
        fast_dropout(x, -0.1, True)


def test_channels_last_input_gets_a_mask_in_its_layout():
    torch.manual_seed(5)
    x = (torch.rand(16, 64, 2, 30) + 1).to(memory_format=torch.channels_last)
    out = FastDropout(0.5).train()(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    kept = out != 0
    assert 0.45 < kept.double().mean().item() < 0.55
    torch.testing.assert_close(out[kept], 2 * x[kept], rtol=0, atol=0)


def test_inplace():
    torch.manual_seed(6)
    x = torch.rand(1000) + 1
    out = FastDropout(0.5, inplace=True).train()(x)
    assert out.data_ptr() == x.data_ptr() and torch.equal(out, x)
    assert set(x.unique().tolist()) - {0.0} and (x == 0).any()


def test_seeded_and_state_dict_compatible():
    x = torch.randn(16, 256, 2, 20)
    torch.manual_seed(3)
    a = FastDropout(0.5)(x)
    torch.manual_seed(3)
    b = FastDropout(0.5)(x)
    c = FastDropout(0.5)(x)
    assert torch.equal(a, b) and not torch.equal(b, c)
    assert FastDropout(0.5).state_dict() == {} and isinstance(FastDropout(0.5), torch.nn.Dropout)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_dtypes(dtype):
    torch.manual_seed(4)
    x = torch.ones(10_000, dtype=dtype)
    out = FastDropout(0.25).train()(x)
    assert out.dtype == dtype
    assert torch.all((out == 0) | (out == torch.tensor(2 ** 15 / (2 ** 15 - drop_threshold(0.25)), dtype=dtype)))
    assert 0.22 < (out == 0).double().mean().item() < 0.28


def _one_d_network():
    return torch.nn.Sequential(
        torch.nn.Conv1d(3, 8, 5, padding="same"), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
        torch.nn.MaxPool1d(3, stride=2, padding=1),
        torch.nn.Conv1d(8, 8, 3, stride=2, padding=2, dilation=2, groups=2, bias=False), torch.nn.BatchNorm1d(8),
        torch.nn.MaxPool1d(2, ceil_mode=True), torch.nn.Conv1d(8, 4, 1))


@pytest.mark.parametrize("train", [True, False])
def test_height1_2d_network_is_the_1d_network(train):
    torch.manual_seed(0)
    one_d = _one_d_network()
    state = torch.random.get_rng_state()
    two_d = as_height1_2d(copy.deepcopy(one_d))
    assert torch.equal(torch.random.get_rng_state(), state)  # later layers draw what they would have
    assert not any(type(m).__name__.endswith("1d") for m in two_d.modules())
    for a, b in zip(one_d.parameters(), two_d.parameters()):
        assert torch.equal(a.detach().reshape(b.shape), b.detach())
    one_d.train(train)
    two_d.train(train)
    x = torch.randn(6, 3, 37, requires_grad=True)
    x2 = height1_maps(x.detach()).requires_grad_()
    assert x2.shape == (6, 3, 1, 37) and memory_layout(x2) is torch.channels_last
    out1, out2 = one_d(x), two_d(x2)
    assert memory_layout(out2) is torch.channels_last
    torch.testing.assert_close(out2.squeeze(2), out1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out2.flatten(1), out1.flatten(1), rtol=1e-5, atol=1e-5)  # same element order
    out1.square().sum().backward()
    out2.square().sum().backward()
    torch.testing.assert_close(x2.grad.squeeze(2), x.grad, rtol=1e-4, atol=1e-5)
    for a, b in zip(one_d.parameters(), two_d.parameters()):
        torch.testing.assert_close(b.grad.reshape(a.shape), a.grad, rtol=1e-4, atol=1e-4)
    for a, b in zip(one_d.buffers(), two_d.buffers()):  # batch-norm running statistics
        torch.testing.assert_close(b, a)


def test_height1_2d_refuses_a_1d_layer_it_cannot_convert():
    with pytest.raises(TypeError, match="AvgPool1d"):
        as_height1_2d(torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3), torch.nn.AvgPool1d(2)))


def test_layout_argument_converts_only_for_2d():
    net = _one_d_network()
    assert convert_to_layout(net, "1d") is False and isinstance(net[0], torch.nn.Conv1d)
    assert convert_to_layout(net, "2d") is True and isinstance(net[0], torch.nn.Conv2d)
    with pytest.raises(ValueError, match="layout must be '1d' or '2d'"):
        convert_to_layout(_one_d_network(), "3d")
