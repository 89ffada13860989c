"""MCLDNN (Xu et al. 2020): multi-channel convolutions on IQ, I and Q, then two LSTMs.

Xu, Luo, Parr, Luo, "A spatiotemporal multi-channel learning framework for automatic
modulation recognition", IEEE WCL 2020; layer list of the authors' Keras release, one of
the MDM paper's cross-architecture targets. The network takes plain (N, 2, L) I/Q and
splits I and Q itself (the release feeds three inputs: IQ, I, Q).

- IQ branch: Conv2d 1->50, kernel (2, 8), "same" padding, ReLU on the (1, 2, L) view
  -> (50, 2, L).
- I and Q branches: Conv1d 1->50, kernel 8, causal (7 zeros on the left), ReLU, each
  -> (50, L); stacked as two rows -> (50, 2, L) -> Conv2d 50->50, kernel (1, 8), "same",
  ReLU.
- concat the two (50, 2, L) maps -> (100, 2, L) -> Conv2d 100->100, kernel (2, 5),
  valid, ReLU -> (100, 1, L - 4).
- LSTM 128 (full sequence over the L - 4 steps) -> LSTM 128 (last step).
- Linear 128, SELU -> Dropout 0.5 -> Linear 128, SELU -> Dropout 0.5 (the embedding,
  D = 128) -> Linear(classes).

406,199 parameters at L = 128, 11 classes with PyTorch LSTMs (two bias vectors; Keras:
405,175). Parameters do not depend on L. "same" padding of even kernels puts the extra
zero after the signal (right/bottom), as TensorFlow and PyTorch both do.

Open choices: Keras initialisation (Glorot-uniform kernels, orthogonal recurrent weights,
zero biases, forget-gate bias 1); ``dropout`` knob (0.5 as published). ``last_conv`` is
the (2, 5) fusion convolution, the last convolution before the LSTMs (maps of height 1,
L - 4 wide).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from amrbench.api import AMRNet, Model
from amrbench.hookspecs import hookimpl


def _keras_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LSTM):
            hidden = m.hidden_size
            for name, param in m.named_parameters():
                if name.startswith("weight_ih"):
                    for gate in param.data.split(hidden):
                        nn.init.xavier_uniform_(gate)
                elif name.startswith("weight_hh"):
                    for gate in param.data.split(hidden):
                        nn.init.orthogonal_(gate)
                else:
                    nn.init.zeros_(param)
                    if name.startswith("bias_ih"):
                        param.data[hidden:2 * hidden] = 1.0


class MCLDNNNet(AMRNet):
    def __init__(self, num_classes: int, length: int, dropout: float = 0.5):
        super().__init__()
        if length < 5:
            raise ValueError(f"mcldnn needs signals of at least 5 samples, got {length}")
        self.conv_iq = nn.Conv2d(1, 50, (2, 8))
        self.conv_i = nn.Conv1d(1, 50, 8)
        self.conv_q = nn.Conv1d(1, 50, 8)
        self.conv_iq2 = nn.Conv2d(50, 50, (1, 8))
        self.conv_fuse = nn.Conv2d(100, 100, (2, 5))
        self.lstm1 = nn.LSTM(100, 128, batch_first=True)
        self.lstm2 = nn.LSTM(128, 128, batch_first=True)
        self.fc1 = nn.Linear(128, 128)
        self.fc2 = nn.Linear(128, 128)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(128, num_classes)
        _keras_init(self)
        # a plain attribute, not a submodule: AMRNet's class-level None would shadow a
        # registered one, and state_dict would hold the layer twice
        object.__setattr__(self, "last_conv", self.conv_fuse)

    def embed(self, x):
        a = torch.relu(self.conv_iq(F.pad(x.unsqueeze(1), (3, 4, 0, 1))))  # "same"
        i = torch.relu(self.conv_i(F.pad(x[:, :1], (7, 0))))
        q = torch.relu(self.conv_q(F.pad(x[:, 1:], (7, 0))))
        b = torch.relu(self.conv_iq2(F.pad(torch.stack([i, q], dim=2), (3, 4))))  # "same"
        h = torch.relu(self.conv_fuse(torch.cat([a, b], dim=1))).squeeze(2)  # (N, 100, L - 4)
        h, _ = self.lstm1(h.transpose(1, 2))
        _, (h_n, _) = self.lstm2(h)
        h = self.dropout(F.selu(self.fc1(h_n[-1])))
        return self.dropout(F.selu(self.fc2(h)))


class MCLDNN(Model):
    """MCLDNN (Xu et al. 2020): IQ/I/Q convolution branches, 2 x LSTM-128, 2 x dense-128 SELU."""

    name = "mcldnn"
    input_format = "iq"
    defaults = {"dropout": 0.5}

    def build(self, num_classes: int, length: int) -> AMRNet:
        return MCLDNNNet(num_classes, length, dropout=float(self.params["dropout"]))


@hookimpl
def amrbench_register(registry):
    registry.add(MCLDNN)
