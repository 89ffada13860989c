"""AlexNet adapted to (2, L) I/Q, as the MDM paper's synthesis and evaluation network.

The MDM paper (multi-domain distribution matching for AMR dataset condensation) learns
its synthetic signals with "AlexNet" (Krizhevsky et al. 2012) and evaluates on AlexNet,
VGG16, 2D-CNN, 1D-ResNet and MCLDNN, but publishes no layer list for its AMR AlexNet and
no code. MDM builds on the DC/DM dataset-condensation code, whose AlexNet is the compact
5-convolution variant (128-192-256-192-192 maps, kernels 5-5-3-3-3, max-pool after
conv 1, 2 and 5, a single linear classifier on the flattened features). amrbench keeps
that topology and adapts it to the (1, 2, L) view:

- Conv2d 1->128, kernel (1, 5), pad (0, 2), ReLU -> MaxPool (1, 2)      [per I/Q row]
- Conv2d 128->192, kernel (2, 5), pad (0, 2), ReLU -> MaxPool (1, 2)    [rows fused]
- Conv2d 192->256, kernel (1, 3), pad (0, 1), ReLU
- Conv2d 256->192, kernel (1, 3), pad (0, 1), ReLU
- Conv2d 192->192, kernel (1, 3), pad (0, 1), ReLU -> MaxPool (1, 2)
- flatten (192 x L / 8; 3,072 at L = 128 - the same width as the DC AlexNet's 192x4x4)
  = the embedding -> Linear(classes).

Open choices (amrbench's): kernels are 1 x k except the second layer, which spans both
rows (VT-CNN2 style) because a 2-row image cannot take AlexNet's square kernels and 2x2
pools more than once; pooling is along time only; stride 1 everywhere (as the DC variant);
no normalisation and no dropout (as the DC variant); the flattened size follows L (no
adaptive pooling), which only widens the final linear layer. About 0.69 M parameters at
L = 128, 11 classes. ``last_conv`` is the fifth convolution (height 1, L / 4 wide).
PyTorch's default initialisation, as the DC/DM code: its random biases swamp signals on
RML2016's raw L1 scale (mean |x| about 0.005), where it stays at chance; the DC/DM code
normalises every dataset, and the MDM suites do the same with ``standardize: true``.

Version 2: weights and activations in channels-last layout, which oneDNN's kernels
train faster on the CPU than NCHW (figures: docs/performance.md). Same function and
initialisation; the summation order differs, so version 1's records are not reused.
"""
from __future__ import annotations

import torch
from torch import nn

from amrbench.api import AMRNet, Model
from amrbench.hookspecs import hookimpl


class AlexNetNet(AMRNet):
    def __init__(self, num_classes: int, length: int, widths=(128, 192, 256, 192, 192)):
        super().__init__()
        w1, w2, w3, w4, w5 = widths
        size = length
        pools = []
        for _ in range(3):
            pools.append(size >= 2)
            size = size // 2 if size >= 2 else size

        def pool(flag):
            return [nn.MaxPool2d((1, 2))] if flag else []

        self.features = nn.Sequential(
            nn.Conv2d(1, w1, (1, 5), padding=(0, 2)), nn.ReLU(), *pool(pools[0]),
            nn.Conv2d(w1, w2, (2, 5), padding=(0, 2)), nn.ReLU(), *pool(pools[1]),
            nn.Conv2d(w2, w3, (1, 3), padding=(0, 1)), nn.ReLU(),
            nn.Conv2d(w3, w4, (1, 3), padding=(0, 1)), nn.ReLU(),
            nn.Conv2d(w4, w5, (1, 3), padding=(0, 1)), nn.ReLU(), *pool(pools[2]),
        )
        # a plain attribute, not a submodule: AMRNet's class-level None would shadow a
        # registered one, and state_dict would hold the layer twice
        object.__setattr__(self, "last_conv", [m for m in self.features if isinstance(m, nn.Conv2d)][-1])
        self.head = nn.Linear(w5 * size, num_classes)
        self.to(memory_format=torch.channels_last)

    def embed(self, x):
        return self.features(x).flatten(1)


class AlexNet(Model):
    """AlexNet (DC/DM 5-conv variant) adapted to the (2, L) I/Q image, as used by MDM."""

    name = "alexnet"
    input_format = "iq_2d"
    version = "2"  # 2: channels-last weights and activations (1: NCHW)

    def build(self, num_classes: int, length: int) -> AMRNet:
        return AlexNetNet(num_classes, length)


@hookimpl
def amrbench_register(registry):
    registry.add(AlexNet)
