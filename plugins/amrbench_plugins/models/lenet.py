"""LeNet-style CNN of the visualisation paper (Huang et al.): 2 convolutions, 3 FC layers.

Huang, Zhang, Pan, Chen, Qian, Wu, "Visualizing deep learning-based radio modulation
classifier", IEEE TCCN 2021, Sec. IV-B-1: "two convolutional layers and three fully
connected layers"; the second convolution has 80 feature maps of width 1 (its kernel
spans both I/Q rows) and is the layer Grad-CAM uses; dropout 0.5 (Table I). The network is
the LeNet-based classifier of O'Shea et al. 2016 (the paper's reference [6]), so its front
end is VT-CNN2's. On the (N, 1, 2, L) view:

- zero-pad 2 on each side of time -> Conv2d 1->256, kernel (1, 3), ReLU -> Dropout
- zero-pad 2 on each side of time -> Conv2d 256->80, kernel (2, 3), ReLU -> Dropout
  -> (80, 1, L + 4)
- flatten -> Linear ``fc1`` (256), ReLU -> Dropout -> Linear ``fc2`` (128), ReLU ->
  Dropout (the embedding, D = 128) -> Linear(classes).

Choices: the first convolution and the two hidden FC widths are in a figure that is not
available; the VT-CNN2 front end (256 x (1, 3)) and widths 256 / 128 are amrbench's
reading (knobs ``fc1``, ``fc2``, ``dropout``). PyTorch default initialisation (the paper
used PyTorch). ``last_conv`` is the 80-map convolution; its maps are L + 4 wide, so the
class activation vector is resized to L, as the paper does. ``cam_layer`` is the ReLU
after it (a parameter-free ``nn.ReLU`` module: same numbers and state dict as before):
Grad-CAM's default weighs those rectified maps, its ``layer: conv`` the convolution's raw
output. Version 2, for CPU speed as VT-CNN2's version 2: ``amrbench_plugins.models.layers.FastDropout``
and channels-last convolution weights (version 1 used nn.Dropout, whose masks differ, so
its records are not reused).
"""
from __future__ import annotations

import torch
from torch import nn

from amrbench.api import AMRNet, Model
from amrbench.hookspecs import hookimpl
from amrbench_plugins.models.layers import FastDropout


class LeNetNet(AMRNet):
    def __init__(self, num_classes: int, length: int, fc1: int = 256, fc2: int = 128, dropout: float = 0.5):
        super().__init__()
        # zero padding as the convolutions' own (same numbers as an explicit pad, no copy)
        self.conv1 = nn.Conv2d(1, 256, (1, 3), padding=(0, 2))
        self.conv2 = nn.Conv2d(256, 80, (2, 3), padding=(0, 2))
        self.relu2 = nn.ReLU()
        self.fc1 = nn.Linear(80 * (length + 4), fc1)
        self.fc2 = nn.Linear(fc1, fc2)
        self.dropout = FastDropout(dropout)
        self.head = nn.Linear(fc2, num_classes)
        # a plain attribute, not a submodule: AMRNet's class-level None would shadow a
        # registered one, and state_dict would hold the layer twice
        object.__setattr__(self, "last_conv", self.conv2)
        object.__setattr__(self, "cam_layer", self.relu2)  # the rectified maps Grad-CAM weighs
        # channels-last convolution weights: oneDNN's NHWC kernels run the (2, 3)
        # convolution faster on the CPU (values and initialisation unchanged)
        self.to(memory_format=torch.channels_last)

    def embed(self, x):
        h = self.dropout(torch.relu(self.conv1(x)))
        h = self.dropout(self.relu2(self.conv2(h)))
        h = self.dropout(torch.relu(self.fc1(h.flatten(1))))
        return self.dropout(torch.relu(self.fc2(h)))


class LeNet(Model):
    """LeNet-style CNN (Huang et al. visualisation paper): conv 256x(1,3), conv 80x(2,3), FC 256-128-classes."""

    name = "lenet"
    input_format = "iq_2d"
    version = "2"  # 2: FastDropout and channels-last weights (1: nn.Dropout, NCHW)
    defaults = {"fc1": 256, "fc2": 128, "dropout": 0.5}

    def build(self, num_classes: int, length: int) -> AMRNet:
        p = self.params
        return LeNetNet(num_classes, length, fc1=int(p["fc1"]), fc2=int(p["fc2"]), dropout=float(p["dropout"]))


@hookimpl
def amrbench_register(registry):
    registry.add(LeNet)
