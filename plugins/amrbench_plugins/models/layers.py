"""Network building blocks shared by model plugins where PyTorch's own are slow.

``FastDropout`` is inverted dropout whose CPU mask is drawn from 15 random bits per
element instead of ``bernoulli_``. On the CPU ``bernoulli_`` is slow per element, which
makes the dropouts on large maps (VT-CNN2's 256 x 2 x (L + 4) convolution maps) a large
share of a training step; drawing one 31-bit integer per two elements is much cheaper,
and the scaled mask is built on the float's bit pattern with integer operations (a
bool -> float conversion would cost as much again; figures: docs/performance.md). The
drop probability is quantised to t / 2^15 with t = round(p 2^15) (0.3 -> 0.299988; 0.5
and 0.25 exact) and the kept elements are scaled by 2^15 / (2^15 - t), so the
expectation is kept exactly; p < 2^-16 drops nothing. The mask comes from the default
torch generator, so ``torch.manual_seed`` makes it deterministic. On other devices it is
``torch.nn.functional.dropout`` (CUDA's fused kernel is already fast). Dropping exactly
the elements ``nn.Dropout`` drops would need ``bernoulli_``'s own generator stream: the
two give different (equally distributed) masks, so swapping one for the other in a
model changes its numbers.

``memory_layout`` is the memory format a tensor's strides state; a channels-last network's
activations follow its weights'.

``as_height1_2d`` turns a network of 1-D layers into the same network of height-1 2-D
layers in channels-last layout, and ``height1_maps`` gives it its input: on the CPU
oneDNN's NHWC kernels train such networks faster than the Conv1d ones (which run NCW),
with the same function and parameters.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

_BITS = 15
_LEVELS = 1 << _BITS
# the integer type whose bit pattern a mask of each float type is built in
_PATTERN_TYPE = {torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float16: torch.int16}
_SCALE_PATTERNS: dict = {}


def _random_levels(n: int, device, int_type=torch.int32) -> torch.Tensor:
    """n values of ``int_type``, uniform on [0, 2^15), from (n + 1) // 2 draws of the
    generator: ``random_`` on int32 fills [0, 2^31), and each draw is cut into two
    15-bit levels (bits 0-14 and 16-30)."""
    half = (n + 1) // 2
    words = torch.empty(half, dtype=torch.int32, device=device).random_()
    if int_type == torch.int16:
        return words.view(torch.int16)[:n].bitwise_and_(_LEVELS - 1)
    levels = torch.empty(2 * half, dtype=int_type, device=device)
    torch.bitwise_and(words, _LEVELS - 1, out=levels[:half])
    torch.bitwise_right_shift(words, 16, out=levels[half:])
    return levels[:n]


def _shaped_like(flat: torch.Tensor, like) -> torch.Tensor:
    """``flat`` viewed with the shape of ``like`` and, for a channels-last tensor, its
    strides too: the elements are i.i.d., so any layout is valid, and matching the
    input's keeps the multiplication a straight pass over memory."""
    if isinstance(like, torch.Tensor):
        if memory_layout(like) is torch.channels_last:
            return flat.as_strided(like.shape, like.stride())
        like = like.shape
    return flat.view(like)


def drop_threshold(p: float) -> int:
    """t: an element is dropped when its 15-bit level is below t (probability t / 2^15)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return round(p * _LEVELS)


def _keep_scale(threshold: int) -> float:
    """2^15 / (2^15 - t): the inverse keep probability, so the expectation is exact."""
    return _LEVELS / (_LEVELS - threshold)


def keep_mask(like, p: float, device=None) -> torch.Tensor:
    """A bool tensor shaped like ``like`` (a tensor or a shape): True with probability
    1 - t / 2^15 (see ``drop_threshold``)."""
    shape = like.shape if isinstance(like, torch.Tensor) else torch.Size(like)
    return _shaped_like(_random_levels(shape.numel(), device) >= drop_threshold(p), like)


def scaled_keep_mask(like, p: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """``dtype`` (float32, bfloat16 or float16) 2^15 / (2^15 - t) where kept, 0 where
    dropped, built on the bit pattern with integer operations."""
    shape = like.shape if isinstance(like, torch.Tensor) else torch.Size(like)
    threshold = drop_threshold(p)
    if threshold >= _LEVELS:
        return _shaped_like(torch.zeros(shape.numel(), dtype=dtype, device=device), like)
    int_type = _PATTERN_TYPE[dtype]
    scale = _keep_scale(threshold)
    if (scale, dtype) not in _SCALE_PATTERNS:
        _SCALE_PATTERNS[scale, dtype] = int(torch.tensor(scale, dtype=dtype).view(int_type))
    levels = _random_levels(shape.numel(), device, int_type)
    sign_bit = torch.iinfo(int_type).bits - 1
    # level - t < 0 (dropped): the arithmetic shift gives -1 and the not 0; kept: all ones
    levels.sub_(threshold).bitwise_right_shift_(sign_bit).bitwise_not_()
    return _shaped_like(levels.bitwise_and_(_SCALE_PATTERNS[scale, dtype]).view(dtype), like)


def fast_dropout(x: torch.Tensor, p: float, training: bool, inplace: bool = False) -> torch.Tensor:
    if x.device.type != "cpu":
        return F.dropout(x, p, training, inplace)
    if not training or drop_threshold(p) == 0:
        return x
    if x.dtype in _PATTERN_TYPE:
        mask = scaled_keep_mask(x, p, x.device, x.dtype)
    elif drop_threshold(p) >= _LEVELS:
        mask = torch.zeros_like(x)
    else:
        mask = keep_mask(x, p, x.device).to(x.dtype).mul_(_keep_scale(drop_threshold(p)))
    return x.mul_(mask) if inplace else x * mask


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with the CPU mask drawn from random integers (see the module doc)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training, self.inplace)


def memory_layout(tensor: torch.Tensor) -> torch.memory_format:
    """``channels_last`` when a 4-D tensor's strides say so unambiguously, else
    ``contiguous_format``. A 1x1 convolution of a 1-channel map (CNN1D's first layer) has
    a weight whose strides fit either layout, and it returns NCHW maps even in a
    channels-last network; putting them in the weights' layout once keeps every later
    kernel in one format (``net.to(memory_format=...)`` switches the whole network)."""
    channels_last = tensor.is_contiguous(memory_format=torch.channels_last) and not tensor.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format


def _conv2d_of(conv: nn.Conv1d) -> nn.Conv2d:
    padding = conv.padding if isinstance(conv.padding, str) else (0, conv.padding[0])
    out = nn.Conv2d(conv.in_channels, conv.out_channels, (1, conv.kernel_size[0]), (1, conv.stride[0]), padding,
                    (1, conv.dilation[0]), conv.groups, conv.bias is not None, conv.padding_mode)
    with torch.no_grad():
        out.weight.copy_(conv.weight.unsqueeze(2))
        if conv.bias is not None:
            out.bias.copy_(conv.bias)
    return out


def _max_pool2d_of(pool: nn.MaxPool1d) -> nn.MaxPool2d:
    def pair(value, height):
        return (height, value[0] if isinstance(value, tuple) else value)

    return nn.MaxPool2d(pair(pool.kernel_size, 1), pair(pool.stride, 1), pair(pool.padding, 0),
                        pair(pool.dilation, 1), pool.return_indices, pool.ceil_mode)


def _batch_norm2d_of(norm: nn.BatchNorm1d) -> nn.BatchNorm2d:
    out = nn.BatchNorm2d(norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats)
    out.load_state_dict(norm.state_dict())
    return out


_HEIGHT1_2D = {nn.Conv1d: _conv2d_of, nn.MaxPool1d: _max_pool2d_of, nn.BatchNorm1d: _batch_norm2d_of}


def as_height1_2d(net: nn.Module) -> nn.Module:
    """``net`` with every Conv1d, MaxPool1d and BatchNorm1d replaced (in place) by the 2-D
    layer computing the same function on (N, C, 1, L) maps, keeping its parameters and
    buffers, and every weight in channels-last layout. Feed it ``height1_maps(x)``; a
    flattened (N, C, 1, L') output has the 1-D network's element order. References to
    replaced layers held elsewhere (``last_conv``) must be taken after the call. The
    random state is left as it was, so layers built afterwards draw version 1's values."""
    with torch.random.fork_rng(devices=[]):  # the new layers' own initialisation is overwritten
        for parent in list(net.modules()):
            for name, child in parent.named_children():
                if type(child) in _HEIGHT1_2D:
                    setattr(parent, name, _HEIGHT1_2D[type(child)](child))
                elif type(child).__name__.endswith("1d"):
                    raise TypeError(f"as_height1_2d: no height-1 2-D form for {type(child).__name__}")
    return net.to(memory_format=torch.channels_last)


def convert_to_layout(net: nn.Module, layout: str) -> bool:
    """A 1-D network's ``layout`` constructor argument: ``"2d"`` converts ``net`` with
    ``as_height1_2d`` (version 2), ``"1d"`` keeps its 1-D layers (version 1). Returns
    whether it converted, i.e. whether the input needs ``height1_maps``."""
    if layout not in ("1d", "2d"):
        raise ValueError(f"layout must be '1d' or '2d', got {layout!r}")
    if layout == "2d":
        as_height1_2d(net)
    return layout == "2d"


def height1_maps(x: torch.Tensor) -> torch.Tensor:
    """(N, C, L) signals as (N, C, 1, L) maps in channels-last layout (one copy): the
    input of an ``as_height1_2d`` network."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
