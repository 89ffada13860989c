"""ResNet of the visualisation paper (Huang et al.): 3 residual stacks, 3 FC layers.

Huang, Zhang, Pan, Chen, Qian, Wu, "Visualizing deep learning-based radio modulation
classifier", IEEE TCCN 2021, Sec. IV-B-2 and Fig. 3: the ResNet classifier of its
reference [36], Ramjee et al., "Fast deep learning for automatic modulation
classification" (arXiv 1901.05850, public code dl4amc), cut to **three residual stacks
of five convolutions and one max-pooling each, and three fully connected layers**, with
the max-pool moved out of each stack so that Grad-CAM sees the stack's full-resolution
output. On (N, 2, L) I/Q (I and Q as the two channels of 1-D convolutions):

- 3 x [residual stack: Conv1d 1x1 to 32 maps (linear) + BN; 2 residual units of
  (Conv1d 32, k 5, "same", ReLU + BN -> Conv1d 32, k 5, "same", linear + BN -> add the
  unit input, no activation after the add)] each followed by MaxPool1d(2);
- flatten (32 L / 8) -> Linear 128, SELU -> AlphaDropout -> Linear 128, SELU ->
  AlphaDropout (the embedding, D = 128) -> Linear(classes).

Choices: kernel 5, BN placement and the SELU/AlphaDropout head come from the Ramjee et al.
code (the visualisation paper shows them only in a figure); the dropout rate is the
paper's Table I value for the ResNet, 0.25 (``dropout`` knob); dense layers LeCun-normal.

``last_conv`` is the **third residual stack** (its output, after the last residual
addition and before the moved-out max-pool): the paper computes the class activation
vector "from the feature maps from the third residual stack". Its output is
(N, 32, 1, L / 4) (two max-pools precede it), so the vector is resized to L, as in the paper.

Version 2: the network is built from these 1-D layers and then turned into the
same network of height-1 2-D layers in channels-last layout (``amrbench_plugins.models.layers.
as_height1_2d``), which trains faster on the CPU (figures: docs/performance.md): same
function, initial weights and parameter count as version 1 (Conv1d / BatchNorm1d, NCW).
The summation order differs, so version 1's records are not reused; ``layout="1d"``
builds version 1's layers.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from amrbench.api import AMRNet, Model
from amrbench.hookspecs import hookimpl
from amrbench_plugins.models.layers import convert_to_layout, height1_maps


class _Unit(nn.Module):
    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, kernel, padding="same")
        self.bn1 = nn.BatchNorm1d(channels)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding="same")
        self.bn2 = nn.BatchNorm1d(channels)

    def forward(self, x):
        return x + self.bn2(self.conv2(self.bn1(torch.relu(self.conv1(x)))))


class _Stack(nn.Module):
    """1x1 linear conv + BN, then two residual units (no pooling: it follows the stack)."""

    def __init__(self, in_channels: int, channels: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, channels, 1)
        self.bn = nn.BatchNorm1d(channels)
        self.unit1 = _Unit(channels, kernel)
        self.unit2 = _Unit(channels, kernel)

    def forward(self, x):
        return self.unit2(self.unit1(self.bn(self.conv(x))))


class ResNetVisNet(AMRNet):
    def __init__(self, num_classes: int, length: int, channels: int = 32, stacks: int = 3, kernel: int = 5,
                 hidden: int = 128, dropout: float = 0.25, layout: str = "2d"):
        super().__init__()
        layers, size, in_ch = [], length, 2
        for _ in range(stacks):
            layers.append(_Stack(in_ch, channels, kernel))
            if size >= 2:
                layers.append(nn.MaxPool1d(2))
                size //= 2
            in_ch = channels
        self.features = nn.Sequential(*layers)
        self.height1 = convert_to_layout(self.features, layout)
        # a plain attribute, not a submodule: AMRNet's class-level None would shadow a
        # registered one, and state_dict would hold the layer twice
        object.__setattr__(self, "last_conv", [m for m in self.features if isinstance(m, _Stack)][-1])
        self.fc1 = nn.Linear(channels * size, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.dropout = nn.AlphaDropout(dropout)
        self.head = nn.Linear(hidden, num_classes)
        for dense in (self.fc1, self.fc2):
            nn.init.kaiming_normal_(dense.weight, nonlinearity="linear")  # LeCun normal
            nn.init.zeros_(dense.bias)

    def embed(self, x):
        h = self.features(height1_maps(x) if self.height1 else x).flatten(1)
        h = self.dropout(F.selu(self.fc1(h)))
        return self.dropout(F.selu(self.fc2(h)))


class ResNetVis(Model):
    """ResNet of Huang et al.'s visualisation paper: 3 residual stacks (after Ramjee et al.), 3 FC layers."""

    name = "resnet-vis"
    input_format = "iq"
    defaults = {"dropout": 0.25}
    version = "2"  # 2: height-1 Conv2d / BatchNorm2d stacks, channels-last (1: 1-D layers, NCW)

    def build(self, num_classes: int, length: int) -> AMRNet:
        return ResNetVisNet(num_classes, length, dropout=float(self.params["dropout"]))


@hookimpl
def amrbench_register(registry):
    registry.add(ResNetVis)
