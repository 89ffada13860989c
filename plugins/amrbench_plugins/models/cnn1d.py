"""CNN1D of the FoQuS paper: a 1-D residual CNN after O'Shea et al. (2018).

Follows the public reimplementation by the FoQuS authors' lab (Yao Lu et al., "CNN1D" =
ResNet1D): stack 1 is a 2-D 1x1 convolution to 32 maps and two (2, 3) residual units
whose max-pool (2, 2) collapses the I/Q axis; stacks 2..6 are a 1x1 Conv1d and two
residual units of Conv1d(32, k=3), each followed by max-pool 2. Head: flatten ->
Linear(128) (no activation, as in the reference) -> Dropout(0.3) -> Linear(classes).
No bias, no batch norm (as the reference). For any L >= 64 the flattened size is
32 * (L // 64); L < 64 stops pooling once the time axis reaches 1.
"""
from __future__ import annotations

import torch
from torch import nn

from amrbench.api import AMRNet, Model
from amrbench.hookspecs import hookimpl


class _Unit1d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x):
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


class _Unit2d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, (2, 3), padding=(1, 1), bias=False)
        self.conv2 = nn.Conv2d(channels, channels, (2, 3), padding=(0, 1), bias=False)

    def forward(self, x):
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


class CNN1DNet(AMRNet):
    def __init__(self, num_classes: int, length: int, channels: int = 32, stacks: int = 6, hidden: int = 128):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, channels, 1, bias=False), _Unit2d(channels), _Unit2d(channels))
        self.pool2d = nn.MaxPool2d((2, 2)) if length >= 2 else nn.MaxPool2d((2, 1))
        layers, size = [], max(1, length // 2)
        for _ in range(stacks - 1):
            layers += [nn.Conv1d(channels, channels, 1, bias=False), _Unit1d(channels), _Unit1d(channels)]
            if size >= 2:
                layers.append(nn.MaxPool1d(2))
                size //= 2
        self.stacks = nn.Sequential(*layers)
        # a plain attribute, not a submodule: AMRNet's class-level None would shadow a
        # registered one, and state_dict would hold the layer twice
        last_unit = self.stacks[-2 if isinstance(self.stacks[-1], nn.MaxPool1d) else -1]
        object.__setattr__(self, "last_conv", last_unit.conv2)
        self.fc = nn.Linear(channels * size, hidden)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(hidden, num_classes)

    def embed(self, x):
        h = self.pool2d(self.stem(x.unsqueeze(1))).squeeze(2)
        h = self.stacks(h)
        return self.dropout(self.fc(h.flatten(1)))


class CNN1D(Model):
    """CNN1D (FoQuS): 1-D residual CNN, 6 stacks of 32 filters, after O'Shea et al. 2018."""

    name = "cnn1d"
    input_format = "iq"

    def build(self, num_classes: int, length: int) -> AMRNet:
        return CNN1DNet(num_classes, length)


@hookimpl
def amrbench_register(registry):
    registry.add(CNN1D)
