"""SigNet (Chen et al. 2021): a learned signal-to-matrix (S2M) operator feeding a 2-D CNN.

Chen, Cui, Xiang, Qiu, Huang, Zheng, Chen, Xuan, Yang, "SigNet: A novel deep learning
framework for radio signal classification", IEEE TCCN 2021 (a FoQuS cross-architecture
target). SigNet turns the 1-D signal into a square matrix with an operator trained
together with the CNN, then classifies the matrix as an image. The S2M here follows the
co-authors' public reimplementation (PSR repository, ``signet.py``), re-expressed:

- S2M: for each of the I and Q channels c, the sliding windows of ``window`` (3) samples
  around every time step (zero-padded at the ends) form X_c (L x 3); with a learnable
  3 x 3 matrix W_c (standard-normal initialised) the channel's matrix is
  M_c = X_c W_c X_c^T (L x L), a learned quadratic form between every pair of time
  steps. Output (N, 2, L, L).
- backbone on the 2-channel L x L image, then global average pool (the embedding) ->
  Linear(classes) (the reimplementation's 1x1 convolution on the pooled map is the same
  map).

``backbone`` (parameter):

- ``"small"`` (default; amrbench's): the ResNet layout of the reimplementation at a
  fraction of the cost: Conv 7x7 stride 2 (2->16) -> BN -> ReLU -> MaxPool 3/2 -> four
  stages of one basic residual block each (16, 32, 64, 128 maps; strides 1, 2, 2, 2) ->
  global average pool (D = 128). About 0.31 M parameters; it keeps the S2M idea (learned
  pairwise-time matrix, 2-D convolutions over it) but not the depth.
- ``"resnet18"``: basic blocks [2, 2, 2, 2] at 64..512 maps (about 11.2 M parameters).
- ``"resnet50"``: the reimplementation's backbone, bottleneck blocks [3, 4, 6, 3], 64..2048
  maps, conv1 7x7 stride 2 from 2 channels (about 23.5 M parameters; far too slow on a
  CPU for the benchmark grids).

Open choices: the official S2M window and backbone depth are not published (the
reimplementation's are used); the default backbone is amrbench's small ResNet for speed.
Cost and memory grow with L^2 (the matrix is L x L): fine for L = 128, heavy for
L = 1024. ``last_conv`` is the last convolution of the last residual block (a 2-D map over
time x time; Grad-CAM explainers must reduce it to one time axis).

Version 2: the CNN's weights and activations are in channels-last layout (the S2M
matrices are copied into that layout once, so the stem convolution does not convert
them), which trains faster on the CPU than NCHW (figures: docs/performance.md). Same
function and initialisation; the summation order differs, so version 1's records are
not reused.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from amrbench.api import AmrbenchError, AMRNet, Model, did_you_mean
from amrbench.hookspecs import hookimpl
from amrbench_plugins.models.layers import memory_layout


class S2M(nn.Module):
    """Per-channel learned quadratic form between sliding windows: (N, C, L) -> (N, C, L, L)."""

    def __init__(self, channels: int = 2, window: int = 3):
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise ValueError(f"the S2M window must be odd and positive, got {window}")
        self.window = window
        self.weight = nn.Parameter(torch.randn(1, channels, window, window))

    def forward(self, x):
        half = self.window // 2
        windows = F.pad(x, (half, half)).unfold(-1, self.window, 1)  # (N, C, L, window)
        return (windows @ self.weight) @ windows.transpose(2, 3)


class _Basic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(cin, planes, stride)

    @property
    def last(self) -> nn.Module:
        return self.conv2

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)

    @property
    def last(self) -> nn.Module:
        return self.conv3

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        return torch.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


BACKBONES = {
    # name: (block, blocks per stage, stem width, stage widths)
    "small": (_Basic, (1, 1, 1, 1), 16, (16, 32, 64, 128)),
    "resnet18": (_Basic, (2, 2, 2, 2), 64, (64, 128, 256, 512)),
    "resnet50": (_Bottleneck, (3, 4, 6, 3), 64, (64, 128, 256, 512)),
}


class SigNetNet(AMRNet):
    def __init__(self, num_classes: int, length: int, backbone: str = "small", window: int = 3):
        super().__init__()
        block, depths, stem, widths = BACKBONES[backbone]
        self.s2m = S2M(2, window)
        self.stem = nn.Sequential(nn.Conv2d(2, stem, 7, 2, 3, bias=False), nn.BatchNorm2d(stem), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        stages, cin = [], stem
        for i, (depth, planes) in enumerate(zip(depths, widths)):
            blocks = []
            for j in range(depth):
                blocks.append(block(cin, planes, 2 if (i > 0 and j == 0) else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        # a plain attribute, not a submodule: AMRNet's class-level None would shadow a
        # registered one, and state_dict would hold the layer twice
        object.__setattr__(self, "last_conv", self.stages[-1][-1].last)
        self.head = nn.Linear(cin, num_classes)
        for cnn in (self.stem, self.stages):  # not the S2M matrix, a 4-D parameter too
            cnn.to(memory_format=torch.channels_last)

    def embed(self, x):
        matrices = self.s2m(x).contiguous(memory_format=memory_layout(self.stem[0].weight))
        return self.stages(self.stem(matrices)).mean(dim=(2, 3))


class SigNet(Model):
    """SigNet (Chen et al. 2021): learned signal-to-matrix operator + ResNet-style CNN (small backbone by default)."""

    name = "signet"
    input_format = "iq"
    defaults = {"backbone": "small", "window": 3}
    version = "2"  # 2: channels-last weights and activations (1: NCHW)

    def __init__(self, **params):
        super().__init__(**params)
        if self.params["backbone"] not in BACKBONES:
            raise AmrbenchError(f"model 'signet': unknown backbone {self.params['backbone']!r}"
                                f"{did_you_mean(self.params['backbone'], BACKBONES)}")

    def build(self, num_classes: int, length: int) -> AMRNet:
        return SigNetNet(num_classes, length, backbone=self.params["backbone"], window=int(self.params["window"]))


@hookimpl
def amrbench_register(registry):
    registry.add(SigNet)
