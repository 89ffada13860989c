"""1-D ResNet (O'Shea et al. 2018): 6 residual stacks of 32 filters, 2 x FC-128 SELU.

O'Shea, Roy, Clancy, "Over-the-air deep learning based radio signal classification",
IEEE JSTSP 2018 (the MDM paper's "1D-ResNet"). On (N, 2, L) I/Q with I and Q as the two
input channels:

- 6 residual stacks, each: Conv1d 1x1 to 32 maps (linear) -> 2 residual units
  [Conv1d 32, k 3, "same", ReLU -> Conv1d 32, k 3, "same", linear -> add the unit's
  input] -> MaxPool1d(2). For L = 1024 the stack outputs are 32x512 ... 32x16, as in the
  paper's table.
- flatten (32 L / 64) -> Linear 128, SELU -> AlphaDropout -> Linear 128, SELU ->
  AlphaDropout (the embedding, D = 128) -> Linear(classes).

Choices the paper leaves open (documented amrbench choices):

- kernel size 3 (the paper gives none; 3 is what most public reimplementations use);
- no batch norm and no activation after the residual addition (the paper's unit is
  conv-ReLU, conv-linear, add);
- convolutions with biases (Keras' ``use_bias`` default), initialised with PyTorch's
  defaults (uniform weights and biases), not Keras' Glorot weights and zero biases. On
  the raw RML2016 L1 scale (mean |x| about 0.005) those random biases swamp the signal
  and the network stays at chance, so the MDM suites standardise the inputs
  (``standardize: true``);
- AlphaDropout rate 0.3 (``dropout`` knob; the paper gives no rate, 0.3 matches the
  FoQuS CNN1D of the same lineage);
- the dense layers are LeCun-normal initialised, as SELU self-normalisation assumes;
- for L < 64 the stacks stop pooling once the time axis reaches 1.

``last_conv`` is the second convolution of the last residual unit of stack 6.

Version 2: the network is built from these 1-D layers and then turned into the
same network of height-1 2-D layers in channels-last layout (``amrbench_plugins.models.layers.
as_height1_2d``), which trains faster on the CPU (figures: docs/performance.md): same
function, initial weights and parameter count as version 1 (Conv1d, NCW). The summation
order differs, so version 1's records are not reused; ``layout="1d"`` builds version 1's
layers (the equivalence test and the benchmarks' conventional script use it).
``last_conv`` outputs (N, 32, 1, V) maps (Grad-CAM averages the row).

This is a different network from ``cnn1d`` (the FoQuS reference's ResNet1D, which has a
2-D first stack, ReLU after the addition and a single linear dense layer).
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
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding="same")

    def forward(self, x):
        return x + self.conv2(torch.relu(self.conv1(x)))


class ResNet1DNet(AMRNet):
    def __init__(self, num_classes: int, length: int, channels: int = 32, stacks: int = 6, kernel: int = 3,
                 hidden: int = 128, dropout: float = 0.3, layout: str = "2d"):
        super().__init__()
        layers, size, in_ch = [], length, 2
        for _ in range(stacks):
            layers += [nn.Conv1d(in_ch, channels, 1), _Unit(channels, kernel), _Unit(channels, kernel)]
            if size >= 2:
                layers.append(nn.MaxPool1d(2))
                size //= 2
            in_ch = channels
        self.stacks = nn.Sequential(*layers)
        self.height1 = convert_to_layout(self.stacks, layout)
        last_unit = [m for m in self.stacks if isinstance(m, _Unit)][-1]
        # a plain attribute, not a submodule: AMRNet's class-level None would shadow a
        # registered one, and state_dict would hold the layer twice
        object.__setattr__(self, "last_conv", last_unit.conv2)
        self.fc1 = nn.Linear(channels * size, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.dropout = nn.AlphaDropout(dropout)
        self.head = nn.Linear(hidden, num_classes)
        for dense in (self.fc1, self.fc2):
            nn.init.kaiming_normal_(dense.weight, nonlinearity="linear")  # LeCun normal
            nn.init.zeros_(dense.bias)

    def embed(self, x):
        h = self.stacks(height1_maps(x) if self.height1 else x).flatten(1)
        h = self.dropout(F.selu(self.fc1(h)))
        return self.dropout(F.selu(self.fc2(h)))


class ResNet1D(Model):
    """1-D ResNet (O'Shea et al. 2018): 6 residual stacks of 32 filters, 2 x FC-128 SELU."""

    name = "resnet1d"
    input_format = "iq"
    defaults = {"dropout": 0.3, "kernel": 3}
    version = "2"  # 2: height-1 Conv2d stacks, channels-last (1: Conv1d, NCW)

    def build(self, num_classes: int, length: int) -> AMRNet:
        return ResNet1DNet(num_classes, length, kernel=int(self.params["kernel"]),
                           dropout=float(self.params["dropout"]))


@hookimpl
def amrbench_register(registry):
    registry.add(ResNet1D)
