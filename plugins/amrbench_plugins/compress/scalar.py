"""scalar: uniform scalar quantisation of I and Q, the rate-distortion anchor.

Each real component is quantised independently with a uniform mid-rise quantiser of
2^b cells over [-A, A] (values beyond are clipped): index = floor((x + A) / delta),
reconstruction at the cell centre, delta = 2A / 2^b. Levels are bit depths ``bits``
(default 1..8), costing 2 b bits per complex sample. ``range: global`` fits A on the
training split (the ``clip_percentile`` percentile of |x|, 100 = max |x|; 1 for L-inf
normalised data); ``range: per_signal`` uses each window's own max |component| and
sends it as one float32 (32 more bits per signal).
"""
from __future__ import annotations

import torch

from amrbench.api import AmrbenchError, Compressor
from amrbench.hookspecs import hookimpl


class Scalar(Compressor):
    """Uniform scalar quantisation of I/Q at 1-8 bits per component (levels = bit depths)."""

    name = "scalar"
    version = "1"
    defaults = {"bits": [1, 2, 3, 4, 5, 6, 7, 8], "range": "global", "clip_percentile": 100.0}
    choices = {"range": ("global", "per_signal")}

    def __init__(self, **params):
        super().__init__(**params)
        bits = self.params["bits"]
        if not isinstance(bits, list) or not bits or not all(isinstance(b, int) and not isinstance(b, bool)
                                                              and 1 <= b <= 16 for b in bits):
            raise AmrbenchError(f"compressor 'scalar': bits must be a list of integers in 1..16, got {bits!r}")
        if not 0 < float(self.params["clip_percentile"]) <= 100:
            raise AmrbenchError("compressor 'scalar': clip_percentile must lie in (0, 100]")
        self.amplitude = 1.0

    def fit(self, ctx, train):
        values = train.x.abs().flatten()
        q = float(self.params["clip_percentile"]) / 100.0
        if q >= 1.0:
            self.amplitude = float(values.max())
        else:
            sample = values[torch.randperm(values.numel(), generator=ctx.torch_generator("scalar"))[:1_000_000]]
            self.amplitude = float(torch.quantile(sample, q))
        self.amplitude = max(self.amplitude, 1e-12)

    def get_state(self):
        return {"amplitude": self.amplitude}

    def set_state(self, state):
        self.amplitude = float(state["amplitude"])

    def levels(self):
        return list(self.params["bits"])

    def level_label(self, level):
        return f"{level}b"

    def _scale(self, x):
        if self.params["range"] == "per_signal":
            return x.abs().flatten(1).amax(1).clamp_min(1e-12).float()
        return torch.full((x.shape[0],), self.amplitude)

    def encode(self, x, level):
        cells = 2 ** int(level)
        a = self._scale(x).to(x.device).view(-1, 1, 1)
        index = torch.floor((x + a) / (2 * a) * cells).clamp(0, cells - 1).long()
        return {"index": index, "scale": a.view(-1).cpu()}

    def decode(self, code, level):
        cells = 2 ** int(level)
        index = code["index"]
        a = code["scale"].to(index.device).view(-1, 1, 1)
        return (index.float() + 0.5) * (2 * a / cells) - a

    def symbols(self, code, level):
        return code["index"]

    def alphabet(self, level):
        return 2 ** int(level)

    def bits(self, level, length):
        extra = 32 if self.params["range"] == "per_signal" else 0
        return float(2 * length * int(level) + extra)


@hookimpl
def amrbench_register(registry):
    registry.add(Scalar)
