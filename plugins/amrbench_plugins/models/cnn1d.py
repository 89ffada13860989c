"""CNN1D of the FoQuS paper: a 1-D residual CNN after O'Shea et al. (2018).

Follows the public reimplementation by the FoQuS authors' lab (Yao Lu et al., "CNN1D" =
ResNet1D): stack 1 is a 2-D 1x1 convolution to 32 maps and two (2, 3) residual units
whose max-pool (2, 2) collapses the I/Q axis; stacks 2..6 are a 1x1 convolution and two
residual units of 32 kernel-3 convolutions, each followed by max-pool 2. Head: flatten ->
Linear(128) (no activation, as in the reference) -> Dropout(0.3) -> Linear(classes).
No bias, no batch norm (as the reference). For any L >= 64 the flattened size is
32 * (L // 64); L < 64 stops pooling once the time axis reaches 1.

Version 2: the whole network runs on (N, 32, H, L) maps in channels-last layout, the
1-D stacks as 2-D layers of height 1 (kernel (1, 3), pool (1, 2)), because oneDNN's NHWC
kernels run the (2, 3) stem convolutions and the training step faster on the CPU
(figures: docs/performance.md). Same function, initialisation and parameter count as
version 1 (Conv1d / MaxPool1d on (N, 32, L), NCHW). The summation order differs, so
version 1's records are not reused. ``last_conv`` outputs (N, 32, 1, V)
maps (Grad-CAM averages the row).

Why the loss can sit at ln C: the network is bias-free and normalisation-free up to
``fc``, with PyTorch's default initialisation (weight variance 1/(3 fan_in)), and each
stack shrinks the signal, so at initialisation the logits barely vary with the input and
the loss stays at ln C until the weights grow. Adam at lr 1e-3 gets past that plateau
whatever the input scaling; much larger Adam steps kill the ReLUs for good, and SGD's
gradients shrink with the signal. A fix (batch norm, scaled He initialisation) would
change the model and its cells' keys, so, as the reference defines it, train it with
Adam at lr 1e-3 to 2e-3 (the suites' settings; the measurements: docs/calibration.md).
"""
from __future__ import annotations

import torch
from torch import nn

from amrbench.api import AMRNet, Model
from amrbench.hookspecs import hookimpl
from amrbench_plugins.models.layers import memory_layout


class _ResidualUnit(nn.Module):
    """relu(x + conv2(relu(conv1(x)))); the paddings keep the output shaped as x."""

    def __init__(self, channels: int, kernel: tuple, padding1: tuple, padding2: tuple):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel, padding=padding1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, kernel, padding=padding2, bias=False)

    def forward(self, x):
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


def _stem_unit(channels):
    # (2, 3) on 2 rows: padded to 3 rows by conv1, back to 2 by conv2
    return _ResidualUnit(channels, (2, 3), (1, 1), (0, 1))


def _time_unit(channels):
    return _ResidualUnit(channels, (1, 3), (0, 1), (0, 1))


class CNN1DNet(AMRNet):
    def __init__(self, num_classes: int, length: int, channels: int = 32, stacks: int = 6, hidden: int = 128):
        super().__init__()
        self.stem_conv = nn.Conv2d(1, channels, 1, bias=False)
        self.stem = nn.Sequential(_stem_unit(channels), _stem_unit(channels))
        self.pool2d = nn.MaxPool2d((2, 2)) if length >= 2 else nn.MaxPool2d((2, 1))
        layers, size = [], max(1, length // 2)
        for _ in range(stacks - 1):
            layers += [nn.Conv2d(channels, channels, 1, bias=False), _time_unit(channels), _time_unit(channels)]
            if size >= 2:
                layers.append(nn.MaxPool2d((1, 2)))
                size //= 2
        self.stacks = nn.Sequential(*layers)
        # a plain attribute, not a submodule: AMRNet's class-level None would shadow a
        # registered one, and state_dict would hold the layer twice
        last_unit = self.stacks[-2 if isinstance(self.stacks[-1], nn.MaxPool2d) else -1]
        object.__setattr__(self, "last_conv", last_unit.conv2)
        self.fc = nn.Linear(channels * size, hidden)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(hidden, num_classes)
        self.to(memory_format=torch.channels_last)

    def embed(self, x):
        h = self.stem_conv(x.unsqueeze(1)).contiguous(memory_format=memory_layout(self.last_conv.weight))
        h = self.stacks(self.pool2d(self.stem(h)))
        return self.dropout(self.fc(h.flatten(1)))


class CNN1D(Model):
    """CNN1D (FoQuS): 1-D residual CNN, 6 stacks of 32 filters, after O'Shea et al. 2018."""

    name = "cnn1d"
    input_format = "iq"
    version = "2"  # 2: channels-last 2-D layout (1: Conv1d stacks, NCHW)

    def build(self, num_classes: int, length: int) -> AMRNet:
        return CNN1DNet(num_classes, length)


@hookimpl
def amrbench_register(registry):
    registry.add(CNN1D)
