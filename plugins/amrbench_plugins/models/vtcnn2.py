"""VT-CNN2 (O'Shea et al. 2016): two 2-D convolutions and a 256-unit dense layer.

O'Shea, Corgan, Clancy, "Convolutional radio modulation recognition networks", EANN
2016; layer list of the authors' RML2016.10a example notebook (Keras, channels first),
which the MDM paper cites as "2D-CNN". On the (N, 1, 2, L) "image" view:

- zero-pad 2 on each side of the time axis -> Conv2d 1->256, kernel (1, 3), ReLU ->
  Dropout 0.5
- zero-pad 2 on each side of the time axis -> Conv2d 256->80, kernel (2, 3), ReLU ->
  Dropout 0.5 -> (80, 1, L + 4)
- flatten (80 (L + 4)) -> Linear 256, ReLU -> Dropout 0.5 (the embedding, D = 256)
- Linear(classes) (softmax in the loss).

2,830,427 parameters at L = 128, 11 classes (the notebook's Keras summary). The flattened
size grows with L (L = 1024: 82,240 inputs, about 21 M parameters in the dense layer),
as in the original network; nothing is pooled.

Open choices: initialisation follows the notebook (Glorot-uniform convolutions, He-normal
dense layers, zero biases); the notebook's Keras version predates truncated He-normal, so a
plain normal with std sqrt(2 / fan_in) is used. ``dropout`` is a knob (0.5 as published).
``last_conv`` is the 80-map (2, 3) convolution, whose maps have height 1 (the layer the
visualisation paper hooks for the same front end).

Version 2, for CPU training throughput (figures: docs/performance.md): the dropouts are
``amrbench_plugins.models.layers.FastDropout`` (nn.Dropout's distribution, masks drawn
from random integers: ``bernoulli_`` on the 256 x 2 x (L + 4) maps is costly on the CPU)
and the convolution weights are channels-last (oneDNN's NHWC kernels). Version 1
(nn.Dropout, NCHW) drew other dropout masks, so its records are not reused.
"""
from __future__ import annotations

import torch
from torch import nn

from amrbench.api import AMRNet, Model
from amrbench.hookspecs import hookimpl
from amrbench_plugins.models.layers import FastDropout


class VTCNN2Net(AMRNet):
    def __init__(self, num_classes: int, length: int, dropout: float = 0.5):
        super().__init__()
        # the notebook's ZeroPadding2D((0, 2)) as the convolutions' own padding: same
        # numbers (checked bit for bit), no padded copy of the 256-map activations
        self.conv1 = nn.Conv2d(1, 256, (1, 3), padding=(0, 2))
        self.conv2 = nn.Conv2d(256, 80, (2, 3), padding=(0, 2))
        self.fc = nn.Linear(80 * (length + 4), 256)
        self.dropout = FastDropout(dropout)
        self.head = nn.Linear(256, num_classes)
        # a plain attribute, not a submodule: AMRNet's class-level None would shadow a
        # registered one, and state_dict would hold the layer twice
        object.__setattr__(self, "last_conv", self.conv2)
        for conv in (self.conv1, self.conv2):
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)
        for dense in (self.fc, self.head):
            nn.init.kaiming_normal_(dense.weight, nonlinearity="relu")
            nn.init.zeros_(dense.bias)
        # channels-last convolution weights: oneDNN's NHWC kernels run the (2, 3)
        # convolution faster on the CPU (values and initialisation unchanged)
        self.to(memory_format=torch.channels_last)

    def embed(self, x):
        h = self.dropout(torch.relu(self.conv1(x)))
        h = self.dropout(torch.relu(self.conv2(h)))
        return self.dropout(torch.relu(self.fc(h.flatten(1))))


class VTCNN2(Model):
    """VT-CNN2 (O'Shea et al. 2016), the MDM paper's "2D-CNN": conv 256x(1,3), conv 80x(2,3), dense 256."""

    name = "vtcnn2"
    input_format = "iq_2d"
    version = "2"  # 2: FastDropout and channels-last weights (1: nn.Dropout, NCHW)
    defaults = {"dropout": 0.5}

    def build(self, num_classes: int, length: int) -> AMRNet:
        return VTCNN2Net(num_classes, length, dropout=float(self.params["dropout"]))


@hookimpl
def amrbench_register(registry):
    registry.add(VTCNN2)
