"""Network building blocks shared by model plugins where PyTorch's own are slow.

``FastDropout`` is inverted dropout (zero with probability p, scale the rest by
1 / (1 - p)) whose mask is drawn from 15 random bits per element instead of
``bernoulli_``. On the CPU, ``bernoulli_`` costs about 10 ns per element, which made
the dropouts on VT-CNN2's 256 x 2 x (L + 4) convolution maps a third of its training
step; drawing one 31-bit integer per two elements costs about an eighth of that. The drop
probability is quantised to 1/32768 (0.3 -> 0.299988); p = 0.5 and 0.25 are exact. The
mask comes from the default torch generator, so ``torch.manual_seed`` makes it
deterministic. On other devices it is ``torch.nn.functional.dropout`` (CUDA's fused
kernel is already fast). Dropping exactly the same elements as ``nn.Dropout`` would need
``bernoulli_``'s own generator stream: the two give different (equally distributed)
masks, so swapping one for the other in a model changes its numbers.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

_BITS = 15
_FLOAT32_BITS = {}


def _random_levels(n: int, device) -> torch.Tensor:
    """n int32 values, uniform on [0, 2^15), from (n + 1) // 2 draws of the generator:
    ``random_`` on int32 fills [0, 2^31), and each draw is cut into two 15-bit halves."""
    half = (n + 1) // 2
    words = torch.empty(half, dtype=torch.int32, device=device).random_()
    levels = torch.empty(2 * half, dtype=torch.int32, device=device)
    torch.bitwise_and(words, (1 << _BITS) - 1, out=levels[:half])
    torch.bitwise_right_shift(words, 16, out=levels[half:])
    return levels[:n]


def _shaped_like(flat: torch.Tensor, like) -> torch.Tensor:
    """``flat`` viewed with the shape of ``like`` and, for a channels-last tensor, its
    strides too: the elements are i.i.d., so any layout is valid, and matching the
    input's keeps the multiplication a straight pass over memory."""
    if isinstance(like, torch.Tensor):
        if not like.is_contiguous() and like.dim() == 4 and like.is_contiguous(memory_format=torch.channels_last):
            return flat.as_strided(like.shape, like.stride())
        like = like.shape
    return flat.view(like)


def keep_mask(like, p: float, device=None) -> torch.Tensor:
    """A bool tensor shaped like ``like`` (a tensor or a shape): True with probability
    1 - p (p quantised to 2^-15)."""
    shape = like.shape if isinstance(like, torch.Tensor) else torch.Size(like)
    return _shaped_like(_random_levels(shape.numel(), device) >= round(p * (1 << _BITS)), like)


def scaled_keep_mask(like, p: float, device=None) -> torch.Tensor:
    """float32 ``1 / (1 - p)`` where kept, 0 where dropped, built with integer operations
    on the bit pattern (a bool -> float conversion costs as much as drawing the bits)."""
    shape = like.shape if isinstance(like, torch.Tensor) else torch.Size(like)
    scale = 1.0 / (1.0 - p)
    if scale not in _FLOAT32_BITS:
        _FLOAT32_BITS[scale] = int(torch.tensor(scale, dtype=torch.float32).view(torch.int32))
    levels = _random_levels(shape.numel(), device)
    # level - threshold < 0 (dropped) -> sign shift gives -1 -> not gives 0; kept -> all ones
    levels.sub_(round(p * (1 << _BITS))).bitwise_right_shift_(31).bitwise_not_()
    return _shaped_like(levels.bitwise_and_(_FLOAT32_BITS[scale]).view(torch.float32), like)


def fast_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, True)
    if x.dtype == torch.float32:
        return x * scaled_keep_mask(x, p, x.device)
    return x * keep_mask(x, p, x.device).to(x.dtype).mul_(1.0 / (1.0 - p))


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with the CPU mask drawn from random integers (see the module doc)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)
