"""CNN2D (FoQuS): a plain 2-D CNN on the (2, L) I/Q image; amrbench's reading, no public code.

The FoQuS paper (coreset selection for AMR) names "CNN2D" as its second selection and
evaluation network next to CNN1D but publishes no layer list and no code. amrbench reads
it as the plain (non-residual) 2-D counterpart of CNN1D in the VT-CNN2 tradition: 2-D
convolutions on the (1, 2, L) view, per-row filters first, one (2, k) convolution that
fuses the I and Q rows, then time-only processing, with a parameter budget close to
CNN1D's (about 0.12 M at 11 classes). On (N, 1, 2, L):

- Conv2d 1->64, kernel (1, 3), pad (0, 1) -> BN -> ReLU -> MaxPool (1, 2)
- Conv2d 64->64, kernel (2, 3), pad (0, 1) -> BN -> ReLU -> MaxPool (1, 2)   [rows fused]
- Conv2d 64->128, kernel (1, 3), pad (0, 1) -> BN -> ReLU -> MaxPool (1, 2)
- Conv2d 128->128, kernel (1, 3), pad (0, 1) -> BN -> ReLU
- global average pool over time -> Linear 128, ReLU -> Dropout 0.5 (the embedding,
  D = 128) -> Linear(classes).

Open choices (all amrbench's): the widths (64, 64, 128, 128), kernel 3, batch norm,
time-only pooling (the I/Q axis is only 2 tall), global average pooling so that the same
network serves L = 128, 512 and 1024 without a length-dependent dense layer, and the
dropout (knob ``dropout``). The FoQuS results (CNN2D below CNN1D on RML2016.10a) are
consistent with a plain CNN of this size. ``last_conv`` is the fourth convolution
(maps of height 1, L / 8 wide).

Version 2: channels-last weights and activations (oneDNN's NHWC convolution,
batch-norm and max-pool kernels; the NCHW (1, 2) max-pools are slow on the CPU), for
training throughput (figures: docs/performance.md). Same layers and initialisation as
version 1 (NCHW); the summation order differs, so version 1's records are not reused.
"""
from __future__ import annotations

import torch
from torch import nn

from amrbench.api import AMRNet, Model
from amrbench.hookspecs import hookimpl


def _block(cin: int, cout: int, kernel, pool: bool) -> list:
    layers = [nn.Conv2d(cin, cout, kernel, padding=(0, kernel[1] // 2)), nn.BatchNorm2d(cout), nn.ReLU()]
    return layers + ([nn.MaxPool2d((1, 2))] if pool else [])


class CNN2DNet(AMRNet):
    def __init__(self, num_classes: int, length: int, widths=(64, 64, 128, 128), hidden: int = 128,
                 dropout: float = 0.5):
        super().__init__()
        layers, size = [], length
        kernels = [(1, 3), (2, 3), (1, 3), (1, 3)]
        cin = 1
        for i, (cout, kernel) in enumerate(zip(widths, kernels)):
            pool = i < len(widths) - 1 and size >= 2
            layers += _block(cin, cout, kernel, pool)
            size = size // 2 if pool else size
            cin = cout
        self.features = nn.Sequential(*layers)
        # a plain attribute, not a submodule: AMRNet's class-level None would shadow a
        # registered one, and state_dict would hold the layer twice
        object.__setattr__(self, "last_conv", [m for m in self.features if isinstance(m, nn.Conv2d)][-1])
        self.fc = nn.Linear(cin, hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)
        self.to(memory_format=torch.channels_last)

    def embed(self, x):
        h = self.features(x).mean(dim=(2, 3))
        return self.dropout(torch.relu(self.fc(h)))


class CNN2D(Model):
    """CNN2D (FoQuS): plain 2-D CNN on the I/Q image (amrbench's reading; no public code)."""

    name = "cnn2d"
    input_format = "iq_2d"
    version = "2"  # 2: channels-last (1: NCHW)
    defaults = {"dropout": 0.5}

    def build(self, num_classes: int, length: int) -> AMRNet:
        return CNN2DNet(num_classes, length, dropout=float(self.params["dropout"]))


@hookimpl
def amrbench_register(registry):
    registry.add(CNN2D)
