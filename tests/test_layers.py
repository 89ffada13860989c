"""amrbench.layers.FastDropout: the distribution, scaling, gradients and seeding of
nn.Dropout, with masks drawn from random integers."""
import math

import pytest
import torch

from amrbench.layers import FastDropout, keep_mask, scaled_keep_mask


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.75])
def test_drop_rate_and_scale(p):
    torch.manual_seed(0)
    n = 400_001  # odd: the last 31-bit draw is used for one element only
    mask = scaled_keep_mask((n,), p, "cpu")
    dropped = (mask == 0).double().mean().item()
    assert abs(dropped - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert torch.all((mask == 0) | (mask == torch.tensor(1 / (1 - p), dtype=torch.float32)))
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
    assert torch.count_nonzero(FastDropout(1.0).train()(x)) == 0


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
    assert torch.all((out == 0) | (out == torch.tensor(1 / 0.75, dtype=dtype)))
    assert 0.22 < (out == 0).double().mean().item() < 0.28
