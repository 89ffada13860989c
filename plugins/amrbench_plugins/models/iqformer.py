"""IQFormer: I/Q + STFT fusion, BiLSTM, depthwise-conv MLP blocks and additive attention.

Shao, Li, Hong, Qi, Sun, "IQFormer: A novel transformer-based model with multi-modality
fusion for automatic modulation recognition", IEEE TCCN 2024 (used by FoQuS for its
cross-architecture table). Structure follows the authors' public release (configuration
for RML2016.10a/b: depths [2, 3, 2], 64 channels, mlp ratio 4, dropout 0.2, no layer
scale in the attention blocks), re-expressed here; about 355k parameters at 11 classes.

Layers, for (N, 2, L) I/Q:

- I/Q branch: BatchNorm1d(2) -> grouped Conv1d 2->8 (k 5, groups 2) -> BatchNorm.
- STFT branch: STFT of the I channel only (periodic Blackman window of 31, hop 1, FFT
  size 128, zero boundary, scaled by 1/sum(window) like ``scipy.signal.stft``; the first
  32 of the 65 bins are kept) -> (N, 1, 32, L) -> BatchNorm2d(1) -> Conv2d 1->8 kernel
  (32, 1) -> BatchNorm -> ReLU -> (N, 8, L).
- Fusion: concat (16 ch) -> 1x1 conv 16->32 -> BN -> GELU -> 1x1 conv 32->32 -> dropout.
- BiLSTM: 2 layers, hidden 32 per direction (dropout between layers) -> (N, 64, L).
- 3 stages of depths (2, 3, 2) at 64 channels; in every stage all blocks but the last are
  depthwise-conv MLP blocks (dw conv k3 -> BN -> 1x1 64->256 -> GELU -> 1x1 256->64,
  per-channel scale, residual); the last block is the IQFormer encoder: a local
  representation (dw conv k3 -> BN -> 1x1 -> GELU -> 1x1, per-channel scale, residual),
  efficient additive attention over the L time tokens (token dim 64, one head,
  residual), and a 1x1-conv FFN (BN -> 64->256 -> GELU -> 256->64, residual).
- BatchNorm1d(64) -> global average pool (the embedding, D = 64) -> Linear(classes).

Choices the paper leaves open, or where this port differs from the release:

- The release computes the STFT with scipy in the data loader and puts the complex result
  into a float tensor, which keeps the **real part** (checked: the torch constructor
  discards the imaginary part). ``stft_part="real"`` (default) reproduces that; "abs"
  uses the magnitude instead. The STFT is computed inside the model as a fixed linear map
  of sliding windows (a matmul), so it is differentiable and runs on the model's device.
- Any length L works: the STFT has one frame per sample (hop 1, zero boundary), so both
  branches stay L long; the attention is linear in L.
- Weight initialisation: PyTorch defaults, except truncated-normal(0.02) for 1-D convs
  and unit/zero BatchNorm, as in the release.
- ``last_conv`` is the last convolution of the network (the second 1x1 conv of the final
  encoder's FFN); its output has the full time resolution.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from amrbench.api import AMRNet, Model
from amrbench.hookspecs import hookimpl


class _STFT(nn.Module):
    """First ``bins`` bins of a hop-1 STFT of a real signal, scipy.signal.stft style."""

    def __init__(self, window: int = 31, nfft: int = 128, bins: int = 32, part: str = "real"):
        super().__init__()
        if part not in ("real", "abs"):
            raise ValueError(f"stft_part must be 'real' or 'abs', got {part!r}")
        self.window, self.part = window, part
        w = torch.blackman_window(window, periodic=True, dtype=torch.float64)
        n = torch.arange(window, dtype=torch.float64)[:, None]
        k = torch.arange(bins, dtype=torch.float64)[None, :]
        angle = 2 * math.pi * n * k / nfft
        scale = w[:, None] / w.sum()
        self.register_buffer("cos", (scale * torch.cos(angle)).float(), persistent=False)
        self.register_buffer("sin", (-scale * torch.sin(angle)).float(), persistent=False)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:  # (N, L) -> (N, 1, bins, L)
        half = self.window // 2
        frames = F.pad(signal, (half, half)).unfold(-1, self.window, 1)  # (N, L, window)
        real = frames @ self.cos
        if self.part == "real":
            spec = real
        else:
            imag = frames @ self.sin
            spec = torch.sqrt(real * real + imag * imag + 1e-12)
        return spec.transpose(1, 2).unsqueeze(1)


class _ConvMLP(nn.Module):
    """Depthwise conv k3 -> BN -> 1x1 expand -> GELU -> 1x1 project, scaled residual."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 3, padding=1, groups=dim)
        self.norm = nn.BatchNorm1d(dim)
        self.pw1 = nn.Conv1d(dim, hidden, 1)
        self.pw2 = nn.Conv1d(hidden, dim, 1)
        self.scale = nn.Parameter(torch.ones(dim, 1))

    def forward(self, x):
        return x + self.scale * self.pw2(F.gelu(self.pw1(self.norm(self.dwconv(x)))))


class _AdditiveAttention(nn.Module):
    """Efficient additive attention (SwiftFormer style) over tokens (N, T, D)."""

    def __init__(self, dim: int):
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.w_g = nn.Parameter(torch.randn(dim, 1))
        self.scale = dim ** -0.5
        self.proj = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        q = F.normalize(self.query(x), dim=-1)
        k = F.normalize(self.key(x), dim=-1)
        alpha = F.normalize((q @ self.w_g) * self.scale, dim=1)  # (N, T, 1), over tokens
        context = (alpha * q).sum(dim=1, keepdim=True)  # (N, 1, D) global query
        return self.out(self.proj(context * k) + q)


class _FFN(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(dim)
        self.fc1 = nn.Conv1d(dim, hidden, 1)
        self.fc2 = nn.Conv1d(hidden, dim, 1)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class _Encoder(nn.Module):
    """IQFormer encoder: local representation, additive attention, 1x1-conv FFN."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.local = _ConvMLP(dim, dim)
        self.attn = _AdditiveAttention(dim)
        self.ffn = _FFN(dim, hidden)

    def forward(self, x):
        x = self.local(x)
        x = x + self.attn(x.transpose(1, 2)).transpose(1, 2)
        return x + self.ffn(x)


def _trunc_init(module):
    if isinstance(module, nn.Conv1d):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class IQFormerNet(AMRNet):
    def __init__(self, num_classes: int, length: int, dim: int = 64, depths=(2, 3, 2), mlp_ratio: int = 4,
                 dropout: float = 0.2, stft_part: str = "real"):
        super().__init__()
        stem = dim // 8  # 8 maps per branch at dim 64
        self.stft = _STFT(part=stft_part)
        self.bn_iq = nn.BatchNorm1d(2)
        self.bn_stft = nn.BatchNorm2d(1)
        self.stem_iq = nn.Sequential(nn.Conv1d(2, stem, 5, padding=2, groups=2), nn.BatchNorm1d(stem))
        self.stem_stft = nn.Sequential(nn.Conv2d(1, stem, (32, 1)), nn.BatchNorm2d(stem), nn.ReLU())
        self.fusion = nn.Sequential(nn.Conv1d(2 * stem, 4 * stem, 1), nn.BatchNorm1d(4 * stem), nn.GELU(),
                                    nn.Conv1d(4 * stem, 4 * stem, 1), nn.Dropout(dropout))
        self.bilstm = nn.LSTM(4 * stem, dim // 2, num_layers=2, batch_first=True, bidirectional=True,
                              dropout=dropout)
        blocks = []
        for depth in depths:
            blocks += [_ConvMLP(dim, mlp_ratio * dim) for _ in range(depth - 1)]
            blocks.append(_Encoder(dim, mlp_ratio * dim))
        self.blocks = nn.Sequential(*blocks)
        self.norm = nn.BatchNorm1d(dim)
        self.head = nn.Linear(dim, num_classes)
        self.apply(_trunc_init)
        # a plain attribute, not a submodule: AMRNet's class-level None would shadow a
        # registered one, and state_dict would hold the layer twice
        object.__setattr__(self, "last_conv", self.blocks[-1].ffn.fc2)

    def embed(self, x):
        spec = self.bn_stft(self.stft(x[:, 0]))
        a = self.stem_iq(self.bn_iq(x))
        b = self.stem_stft(spec).squeeze(2)
        h = self.fusion(torch.cat([a, b], dim=1))
        h, _ = self.bilstm(h.transpose(1, 2))
        h = self.blocks(h.transpose(1, 2))
        return self.norm(h).mean(dim=2)


class IQFormer(Model):
    """IQFormer (Shao et al. 2024): IQ + STFT fusion, BiLSTM and additive-attention blocks."""

    name = "iqformer"
    input_format = "iq"
    defaults = {"dropout": 0.2, "stft_part": "real"}

    def build(self, num_classes: int, length: int) -> AMRNet:
        return IQFormerNet(num_classes, length, dropout=float(self.params["dropout"]),
                           stft_part=str(self.params["stft_part"]))


@hookimpl
def amrbench_register(registry):
    registry.add(IQFormer)
