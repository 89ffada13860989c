"""VGG16 adapted to the (2, L) I/Q image, as in the ZJUT group's signal VGG (MDM target).

The MDM paper evaluates its condensed sets on "VGG16" (Simonyan & Zisserman 2014) without
a layer list. The same group's public signal reimplementation (PSR repository,
``vgg16_signal``) is followed here: square 3x3 convolutions on the (1, 2, L) view, each
followed by BatchNorm and ReLU; the convolutions of the first two blocks are padded by 3
so that the 2-row image grows tall enough for four 2x2 max-pools; the fifth VGG block is
dropped. On (N, 1, 2, L):

- block 1: 2 x [Conv 3x3 pad 3 -> BN -> ReLU] 64, 64  -> MaxPool 2x2
- block 2: 2 x [Conv 3x3 pad 3 -> BN -> ReLU] 128, 128 -> MaxPool 2x2
- block 3: 3 x [Conv 3x3 pad 1 -> BN -> ReLU] 256 x 3 -> MaxPool 2x2
- block 4: 3 x [Conv 3x3 pad 1 -> BN -> ReLU] 512 x 3 -> MaxPool 2x2
- flatten (512 x 1 x W: 4,608 at L = 128, 16,896 at 512, 33,280 at 1024, exactly the
  reference's sizes) -> Linear 256 -> BN -> ReLU -> Linear 128 -> BN -> ReLU (the
  embedding, D = 128) -> Linear(classes).

About 8.85 M parameters at L = 128, 11 classes. Nothing is left open beyond the reference
(no dropout there; PyTorch default initialisation; the flattened size is computed from L).
The dense layers' BatchNorm1d cannot take batch statistics from a single signal; in
training mode a batch of one (the harness's last batch can be one signal) is normalised
with the running statistics instead, where the reference would raise an error.
``last_conv`` is the last 512-map convolution (maps 3 tall before the final pool).
"""
from __future__ import annotations

from torch import nn

from amrbench.api import AMRNet, Model
from amrbench.hookspecs import hookimpl

class _DenseBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d that uses its running statistics for a training batch of one."""

    def forward(self, x):
        if self.training and x.shape[0] == 1:
            return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                            False, 0.0, self.eps)
        return super().forward(x)


_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512))
_PADS = (3, 3, 1, 1)


class VGG16Net(AMRNet):
    def __init__(self, num_classes: int, length: int):
        super().__init__()
        layers, cin, height, width = [], 1, 2, length
        for widths, pad in zip(_BLOCKS, _PADS):
            for cout in widths:
                layers += [nn.Conv2d(cin, cout, 3, padding=pad), nn.BatchNorm2d(cout), nn.ReLU()]
                cin, height, width = cout, height + 2 * pad - 2, width + 2 * pad - 2
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        if height < 1 or width < 1:
            raise ValueError(f"vgg16 needs signals of at least 4 samples, got {length}")
        self.features = nn.Sequential(*layers)
        # a plain attribute, not a submodule: AMRNet's class-level None would shadow a
        # registered one, and state_dict would hold the layer twice
        object.__setattr__(self, "last_conv", [m for m in self.features if isinstance(m, nn.Conv2d)][-1])
        self.fc = nn.Sequential(nn.Linear(cin * height * width, 256), _DenseBatchNorm(256), nn.ReLU(),
                                nn.Linear(256, 128), _DenseBatchNorm(128), nn.ReLU())
        self.head = nn.Linear(128, num_classes)

    def embed(self, x):
        return self.fc(self.features(x).flatten(1))


class VGG16(Model):
    """VGG16 on the I/Q image (4 blocks, 3x3 kernels, padded first blocks), after the PSR signal VGG."""

    name = "vgg16"
    input_format = "iq_2d"

    def build(self, num_classes: int, length: int) -> AMRNet:
        return VGG16Net(num_classes, length)


@hookimpl
def amrbench_register(registry):
    registry.add(VGG16)
