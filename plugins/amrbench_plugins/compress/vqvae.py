"""vqvae: a single-level VQ-VAE baseline (van den Oord et al. 2017), trained end to end.

One model per ``downsample`` factor f (a power of two; the levels): the encoder stacks
log2 f stride-2 Conv1d stages (Mish) and ``resnet_blocks`` ResBlocks, then a 1x1 conv
to ``latent_dim``; the decoder mirrors it with nearest upsampling. Nearest-code
quantisation with the straight-through estimator; loss MSE(x, x_hat) +
||sg(z_e) - e||^2 + beta ||z_e - sg(e)||^2 (codebook and commitment terms); dead codes
are revived with the HQA usage rule (``reset_every`` steps, threshold 3 %). Unlike the
HQA, encoder, decoder and codebook all learn together. Bits at level f: L/f indices of
ceil(log2 K) bits.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from amrbench.api import AmrbenchError, Compressor
from amrbench.hookspecs import hookimpl
from amrbench_plugins.compress import accounting as compress
from amrbench_plugins.compress import hae
from amrbench_plugins.compress.hqa import Codebook, UsageReset


class VQVAENet(nn.Module):
    def __init__(self, factor: int, hidden: int, dim: int, blocks: int, codebook_size: int, bottom: str):
        super().__init__()
        stages = int(round(math.log2(factor)))
        enc = []
        for s in range(stages):
            enc += [nn.Conv1d(2 if s == 0 else hidden, hidden, 3, stride=2, padding=1), nn.Mish()]
        enc += [hae.ResBlock(hidden) for _ in range(blocks)] + [nn.Conv1d(hidden, dim, 1)]
        self.encoder = nn.Sequential(*enc)
        dec = [nn.Conv1d(dim, hidden, 3, padding=1), nn.Mish(), *[hae.ResBlock(hidden) for _ in range(blocks)]]
        for _ in range(stages):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv1d(hidden, hidden, 3, padding=1), nn.Mish()]
        dec.append(nn.Conv1d(hidden, 2, 3, padding=1))
        if bottom == "tanh":
            dec.append(nn.Tanh())
        self.decoder = nn.Sequential(*dec)
        self.codebook = Codebook(codebook_size, dim)


class VQVAE(Compressor):
    """Single-level VQ-VAE baseline (straight-through, codebook + commitment loss), one model per downsampling factor."""

    name = "vqvae"
    version = "1"
    defaults = {"downsample": [8], "codebook_size": 256, "latent_dim": 64, "hidden": 64, "resnet_blocks": 1,
                "epochs": 10, "batch_size": 64, "lr": 1e-3, "beta": 0.25, "reset_every": 25,
                "reset_threshold": 0.03, "schedule": "flatcos", "grad_clip": 1.0, "bottom_activation": "auto"}

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        factors = p["downsample"]
        if not isinstance(factors, list) or not factors or not all(
                isinstance(f, int) and not isinstance(f, bool) and f >= 2 and f & (f - 1) == 0 for f in factors):
            raise AmrbenchError(f"compressor 'vqvae': downsample must be a list of powers of two >= 2, got {factors!r}")
        for key, low in (("codebook_size", 2), ("latent_dim", 1), ("hidden", 1), ("resnet_blocks", 0), ("epochs", 0),
                         ("batch_size", 1), ("reset_every", 0)):
            hae.check_int(p, key, low, self.name)
        if p["schedule"] not in ("flatcos", "none") or p["bottom_activation"] not in ("auto", "tanh", "linear"):
            raise AmrbenchError("compressor 'vqvae': schedule must be flatcos|none, bottom_activation auto|tanh|linear")
        self.nets: dict = {}
        self.state: Optional[dict] = None
        self.device = torch.device("cpu")
        self.history: dict = {}

    def _net(self, factor: int, bottom: str) -> VQVAENet:
        p = self.params
        return VQVAENet(factor, p["hidden"], p["latent_dim"], p["resnet_blocks"], p["codebook_size"], bottom)

    def fit(self, ctx, train):
        p = self.params
        self.device = device = ctx.device
        bottom = hae.resolve_bottom_activation(p, train.x)
        x = train.x.to(device)
        states, history, resets = {}, {}, {}
        for f in p["downsample"]:
            hae.check_length(train.length, int(round(math.log2(f))), self.name)
            ctx.seed_torch("vqvae", "init", f)
            net = self._net(f, bottom).to(device).train()
            reset = UsageReset(net.codebook, p["reset_every"], float(p["reset_threshold"]))

            def loss_fn(target, step, total, net=net, reset=reset):
                z = net.encoder(target)
                index = net.codebook.distances(z).argmin(-1)
                reset.observe(index)
                e = net.codebook.lookup(index)
                rec = net.decoder(z + (e - z).detach())
                return (F.mse_loss(rec, target) + F.mse_loss(e, z.detach())
                        + float(p["beta"]) * F.mse_loss(z, e.detach()))

            history[str(f)] = hae.train_loop(net.parameters(), loss_fn, lambda i: x[i.to(device)], len(train),
                                             p["epochs"], p["batch_size"], float(p["lr"]), p["schedule"],
                                             float(p["grad_clip"]), ctx.torch_generator("vqvae", "order", f), device,
                                             on_step=reset)
            resets[str(f)] = reset.resets
            states[str(f)] = {k: v.cpu() for k, v in net.state_dict().items()}
        self.history = {"loss": history, "resets": resets}
        self.set_state({"nets": states, "bottom_activation": bottom, "history": self.history})

    def get_state(self):
        return self.state

    def set_state(self, state):
        self.state = state
        self.history = state.get("history") or {}
        self.nets = {}
        for f in self.params["downsample"]:
            net = self._net(f, state["bottom_activation"])
            net.load_state_dict(state["nets"][str(f)])
            self.nets[f] = net.to(self.device).requires_grad_(False).eval()

    def levels(self):
        return list(self.params["downsample"])

    def level_label(self, level):
        return f"f{level}"

    @torch.no_grad()
    def encode(self, x, level):
        net = self.nets[int(level)]
        return net.codebook.select(net.encoder(x.to(self.device)))

    @torch.no_grad()
    def decode(self, code, level):
        net = self.nets[int(level)]
        return net.decoder(net.codebook.lookup(code.to(self.device)))

    def bits(self, level, length):
        return compress.code_bits(length // int(level), self.params["codebook_size"])

    def alphabet(self, level):
        return self.params["codebook_size"]


@hookimpl
def amrbench_register(registry):
    registry.add(VQVAE)
