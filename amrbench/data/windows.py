"""Per-window normalisation of loaded signals, the ``norm`` parameter of the file loaders.

Recorded and converted files come at whatever scale their source wrote (int16 counts,
volts, unit power), and models train on raw I/Q: an unscaled input can keep a network
from learning at all. The synthetic sets scale every window themselves (``norm: rms``);
the file loaders offer the same choice, per window, on the complex magnitude
|z| = sqrt(I^2 + Q^2):

- ``rms``: mean |z|^2 = 1 (unit average power);
- ``energy``: sum |z|^2 = 1;
- ``l1``: sum |z| = 1 (as RML2016.10a was written);
- ``max``: max |z| = 1 (TorchSig's L-inf normalisation);
- ``none``: the file's values as stored.

An all-zero window is left as it is.
"""
from __future__ import annotations

import dataclasses

import torch

from amrbench.api import AmrbenchError, SignalSet

NORMS = ("none", "rms", "energy", "l1", "max")


def window_scale(x: torch.Tensor, norm: str) -> torch.Tensor:
    """The (N, 1, 1) divisor that gives every window of ``x`` (N, 2, L) the ``norm``."""
    power = x.double().square().sum(dim=1, keepdim=True)  # |z|^2 per sample, (N, 1, L)
    if norm == "rms":
        scale = power.mean(dim=2, keepdim=True).sqrt()
    elif norm == "energy":
        scale = power.sum(dim=2, keepdim=True).sqrt()
    elif norm == "l1":
        scale = power.sqrt().sum(dim=2, keepdim=True)
    elif norm == "max":
        scale = power.amax(dim=2, keepdim=True).sqrt()
    else:
        raise AmrbenchError(f"unknown normalisation {norm!r}; allowed: {', '.join(NORMS)}")
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def normalise_windows(data: SignalSet, norm: str) -> SignalSet:
    """``data`` with every window scaled to ``norm`` (see the module docstring)."""
    if norm == "none":
        return data
    return dataclasses.replace(data, x=(data.x.double() / window_scale(data.x, norm)).to(data.x.dtype))


class WindowNorm:
    """Mixin of the file dataset plugins: the ``norm`` parameter and :meth:`normalised`.

    List it before ``Dataset`` and merge :data:`NORM_DEFAULTS` and :data:`NORM_CHOICES`
    into the class's declarations. With ``norm: none`` (the default)
    the parameter is dropped from ``params``: cells are keyed by ``params``, so the
    keys of cells that read a file without normalising stay those written before the
    option existed, and writing ``norm: none`` gives the same key as leaving it out."""

    def __init__(self, **params):
        super().__init__(**params)
        if self.params.get("norm") == "none":
            del self.params["norm"]
        self.notes: list = []  # what the last load found about the file's layout (`datasets info` shows it)

    @property
    def norm(self) -> str:
        return self.params.get("norm", "none")

    def normalised(self, data: SignalSet) -> SignalSet:
        return normalise_windows(data, self.norm)


NORM_DEFAULTS = {"norm": "none"}
NORM_CHOICES = {"norm": NORMS}
