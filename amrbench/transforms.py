"""Input formats a model can declare; the harness converts (N, 2, L) I/Q before the
network sees it, so no model copies this code.

- ``iq``: unchanged (N, 2, L).
- ``amp_phase``: (N, 2, L) = [amplitude / ||amplitude||_2, atan2(Q, I) / pi], the LSTM
  input of Rajendran et al. 2018 (per-example L2 normalisation of the amplitude).
- ``iq_2d``: (N, 1, 2, L), the "image" view of 2-D CNNs (VT-CNN2, AlexNet, VGG).
"""
from __future__ import annotations

import torch

from amrbench.api import AmrbenchError

FORMATS = ("iq", "amp_phase", "iq_2d")


def amplitude_phase(x: torch.Tensor) -> torch.Tensor:
    amplitude = torch.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2)
    amplitude = amplitude / amplitude.norm(dim=1, keepdim=True).clamp_min(1e-12)
    phase = torch.atan2(x[:, 1], x[:, 0]) / torch.pi
    return torch.stack([amplitude, phase], dim=1)


def apply(input_format: str, x: torch.Tensor) -> torch.Tensor:
    if input_format == "iq":
        return x
    if input_format == "amp_phase":
        return amplitude_phase(x)
    if input_format == "iq_2d":
        return x.unsqueeze(1)
    raise AmrbenchError(f"unknown input format {input_format!r}; allowed: {', '.join(FORMATS)}")
