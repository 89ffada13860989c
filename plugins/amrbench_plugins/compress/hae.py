"""HAE: the hierarchical (continuous) autoencoder of HQARF (Kaasaragadda et al.), stage 1.

A stack of ``layers`` 1-D autoencoders. Layer i encodes the latent of layer i-1 (the
I/Q signal for layer 0) to a ``latent_dim`` x L/2^(i+1) latent and decodes it back:

- encoder: Conv1d(k3, stride 2) - Mish - Conv1d(k3) - Mish - [ResBlock] x resnet_blocks -
  Conv1d(1x1) to ``latent_dim`` - BatchNorm1d (the authors' code normalises z_e with a
  BatchNorm; being part of the encoder, the next layer's target is the normalised z_e in
  train and eval alike);
- decoder: Conv1d(k3) - Mish - [ResBlock] x resnet_blocks - nearest upsample x2 -
  Conv1d(k3) - Mish - Conv1d(k3); the bottom decoder ends in Tanh when the training data
  lies in [-1, 1] (``bottom_activation: auto``; L-inf normalised TorchSig data), else is
  linear;
- ResBlock: x -> mish(x + conv(mish(conv(x)))).

Loss of layer i (paper Eq. 6): MSE(target, rec) + lambda_i * sum_t(1 - cos_t) / dims, where
cos_t is the cosine between target and reconstruction over the channel axis at each time
step (at layer 0 the (I, Q) pair: a per-sample phase-error penalty) and dims the number
of target elements -- the authors' normalisation, so the cosine term weighs lambda_i / 2
per time step at layer 0 and lambda_i / 64 above, as in the code the paper's lambdas
were tuned with.
``cos_lambda`` is the per-layer list (paper: [0.1, 0.05, 0.01, 0.005, 0.0001], each
1/5 .. 1/100 of the previous; a single number applies to every layer).

Training is greedy, layer by layer: layer i trains on the frozen (eval-mode) outputs of
layers 0..i-1, with Adam, a flat-then-cosine learning-rate schedule (flat for 2/3 of
the steps, cosine to lr/10; the authors' FlatCA without its T_max bug) and gradient
clipping. The trained stack is a shared artifact (``hae-stack``) keyed by the training
data, the seed and the stack's parameters, so the HQA of the same configuration reuses it.
``best_stack`` trains several stacks of one configuration (seeds derived from the cell's)
and keeps the one whose training signals reconstruct best: the HQA's ``hae_runs``.

Levels 0..layers-1; level i sends the layer-i latent as ``latent_bits``-bit floats
(64 x L/2^(i+1) x 32 bits: more than the float32 input until L/2^(i+1) * 64 < 2L, i.e. a
compression ratio below 1 up to layer 4 -- the HAE is a reference, not a codec), and
decodes it through decoders i, i-1, ..., 0.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from amrbench import progress
from amrbench.api import AmrbenchError, Compressor, derive_seed, seed_torch
from amrbench.hookspecs import hookimpl
from amrbench_plugins.compress import accounting as compress

PAPER_COS_LAMBDA = [0.1, 0.05, 0.01, 0.005, 0.0001]
STACK_VERSION = "1"
HAE_DEFAULTS = {
    "layers": 5,
    "latent_dim": 64,
    "enc_hidden": [16, 16, 32, 64, 128],
    "dec_hidden": [16, 64, 256, 512, 1024],
    "resnet_blocks": 1,
    "cos_lambda": PAPER_COS_LAMBDA,
    "epochs": 10,
    "batch_size": 64,
    "lr": 4e-4,
    "schedule": "flatcos",
    "grad_clip": 1.0,
    "bottom_activation": "auto",
}
STACK_KEYS = tuple(HAE_DEFAULTS)
MAX_CACHED_LATENT_BYTES = 1.5e9


# --------------------------------------------------------------------------- parameters
def per_layer(value, layers: int, name: str, kind=float) -> list:
    """A number (every layer) or a list (one per layer; a shorter list repeats its last
    value) as a list of ``layers`` values."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise AmrbenchError(f"compressor parameter {name!r} must be a number or a list of numbers, got {value!r}")
    values = values + [values[-1]] * (layers - len(values))
    return [kind(v) for v in values[:layers]]


def check_int(params: dict, key: str, low: int, plugin: str) -> int:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise AmrbenchError(f"compressor {plugin!r}: parameter {key!r} must be an integer >= {low}, got {value!r}")
    return value


def check_stack_params(params: dict, plugin: str) -> None:
    layers = check_int(params, "layers", 1, plugin)
    check_int(params, "latent_dim", 1, plugin)
    check_int(params, "resnet_blocks", 0, plugin)
    check_int(params, "epochs", 0, plugin)
    check_int(params, "batch_size", 1, plugin)
    per_layer(params["enc_hidden"], layers, "enc_hidden", int)
    per_layer(params["dec_hidden"], layers, "dec_hidden", int)
    if any(v < 0 for v in per_layer(params["cos_lambda"], layers, "cos_lambda")):
        raise AmrbenchError(f"compressor {plugin!r}: cos_lambda must be >= 0")
    if not float(params["lr"]) > 0:
        raise AmrbenchError(f"compressor {plugin!r}: lr must be > 0")
    if params["schedule"] not in ("flatcos", "none"):
        raise AmrbenchError(f"compressor {plugin!r}: schedule must be 'flatcos' or 'none'")
    if params["bottom_activation"] not in ("auto", "tanh", "linear"):
        raise AmrbenchError(f"compressor {plugin!r}: bottom_activation must be auto, tanh or linear")


def check_length(length: int, layers: int, plugin: str) -> None:
    if length % (2 ** layers):
        raise AmrbenchError(f"compressor {plugin!r}: signal length {length} must be divisible by 2^layers = "
                            f"{2 ** layers}; use fewer layers or another length")


# --------------------------------------------------------------------------- networks
class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x):
        return F.mish(x + self.conv2(F.mish(self.conv1(x))))


class Encoder(nn.Module):
    """Halves the length: (B, c_in, T) -> (B, dim, T/2)."""

    def __init__(self, c_in: int, hidden: int, dim: int, blocks: int, stride: int = 2):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(c_in, hidden, 3, stride=stride, padding=1), nn.Mish(),
            nn.Conv1d(hidden, hidden, 3, padding=1), nn.Mish(),
            *[ResBlock(hidden) for _ in range(blocks)],
            nn.Conv1d(hidden, dim, 1), nn.BatchNorm1d(dim))

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """Doubles the length: (B, dim, T) -> (B, c_out, 2T)."""

    def __init__(self, dim: int, hidden: int, c_out: int, blocks: int, final: str = "linear", scale: int = 2):
        super().__init__()
        layers = [nn.Conv1d(dim, hidden, 3, padding=1), nn.Mish(), *[ResBlock(hidden) for _ in range(blocks)],
                  nn.Upsample(scale_factor=scale, mode="nearest"),
                  nn.Conv1d(hidden, hidden, 3, padding=1), nn.Mish(), nn.Conv1d(hidden, c_out, 3, padding=1)]
        if final == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def build_layer(params: dict, i: int, bottom_activation: str) -> tuple[Encoder, Decoder]:
    layers = params["layers"]
    enc_hidden = per_layer(params["enc_hidden"], layers, "enc_hidden", int)
    dec_hidden = per_layer(params["dec_hidden"], layers, "dec_hidden", int)
    c_in = 2 if i == 0 else params["latent_dim"]
    encoder = Encoder(c_in, enc_hidden[i], params["latent_dim"], params["resnet_blocks"])
    decoder = Decoder(params["latent_dim"], dec_hidden[i], c_in, params["resnet_blocks"],
                      bottom_activation if i == 0 else "linear")
    return encoder, decoder


class Stack(nn.Module):
    """The encoders and decoders of all layers."""

    def __init__(self, params: dict, bottom_activation: str):
        super().__init__()
        pairs = [build_layer(params, i, bottom_activation) for i in range(params["layers"])]
        self.encoders = nn.ModuleList(p[0] for p in pairs)
        self.decoders = nn.ModuleList(p[1] for p in pairs)

    def encode(self, x, level: int):
        for i in range(level + 1):
            x = self.encoders[i](x)
        return x

    def decode(self, z, level: int):
        for i in reversed(range(level + 1)):
            z = self.decoders[i](z)
        return z


# --------------------------------------------------------------------------- training
def per_element(total: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A summed loss term divided by the number of target elements (B x C x T): the
    authors' normalisation ("/dims"), under which the paper's coefficients were tuned."""
    return total / target.numel()


def cosine_penalty(target: torch.Tensor, rec: torch.Tensor) -> torch.Tensor:
    """sum over (batch, time) of 1 - cos between target and rec over the channel axis,
    per target element (i.e. the mean over time steps divided by the channel count)."""
    return per_element((1.0 - F.cosine_similarity(rec, target, dim=1, eps=1e-8)).sum(), target)


def flatcos_factor(step: int, total: int, flat: float = 2 / 3, floor: float = 0.1) -> float:
    """Learning-rate factor: 1 for the first ``flat`` of the steps, then a cosine to ``floor``."""
    start = int(flat * total)
    if step < start or total - start <= 1:
        return 1.0
    progress = (step - start) / (total - start - 1)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_loop(parameters, loss_fn: Callable, source: Callable, n: int, epochs: int, batch_size: int, lr: float,
               schedule: str, grad_clip: float, generator: torch.Generator, device: torch.device,
               on_step: Optional[Callable] = None) -> list:
    """Minibatch Adam on ``loss_fn(batch, step, total_steps)``; ``source(index)`` gives a
    batch (tensors stay on the device, batches by index). Returns per-epoch mean losses;
    each epoch is reported to the progress display (``amrbench.progress.epoch_done``)."""
    parameters = [p for p in parameters if p.requires_grad]
    if not parameters or n == 0 or epochs == 0:
        return []
    batch = min(batch_size, n)
    steps_per_epoch = math.ceil(n / batch)
    total = steps_per_epoch * epochs
    optimizer = torch.optim.Adam(parameters, lr=lr)
    history, step = [], 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        running = 0.0
        for s in range(steps_per_epoch):
            index = order[s * batch:(s + 1) * batch]
            if schedule == "flatcos":
                for group in optimizer.param_groups:
                    group["lr"] = lr * flatcos_factor(step, total)
            loss = loss_fn(source(index), step, total)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip and grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
            optimizer.step()
            if on_step is not None:
                on_step(step)
            running += float(loss.detach())
            step += 1
        history.append(running / steps_per_epoch)
        progress.epoch_done(len(history), epochs)
    return history


@torch.no_grad()
def run_frozen(fn: Callable, x: torch.Tensor, device: torch.device, batch: int = 256) -> torch.Tensor:
    return compress.batched(fn, x, batch, device)


class LayerInputs:
    """Training inputs of layer i: the I/Q signals (i = 0) or the frozen latent of layer
    i-1, precomputed when it fits in ``MAX_CACHED_LATENT_BYTES``, else recomputed per
    batch from the signals through the frozen encoders."""

    def __init__(self, x: torch.Tensor, encoders: list, device: torch.device):
        self.x, self.encoders, self.device = x, encoders, device
        self.cached: Optional[torch.Tensor] = x.to(device)

    def advance(self, encoder: nn.Module) -> None:
        """Move on to the next layer (after ``encoder`` was trained)."""
        encoder.eval()
        self.encoders = self.encoders + [encoder]
        if self.cached is not None:
            size = self.cached.shape[0] * encoder.net[-1].num_features * self.cached.shape[-1] // 2 * 4
            if size <= MAX_CACHED_LATENT_BYTES:
                self.cached = run_frozen(encoder, self.cached, self.device).to(self.device)
                return
        self.cached = None

    def __call__(self, index: torch.Tensor) -> torch.Tensor:
        if self.cached is not None:
            return self.cached[index.to(self.cached.device)]
        with torch.no_grad():
            z = self.x[index].to(self.device)
            for encoder in self.encoders:
                z = encoder(z)
            return z


def resolve_bottom_activation(params: dict, x: torch.Tensor) -> str:
    if params["bottom_activation"] != "auto":
        return params["bottom_activation"]
    return "tanh" if float(x.abs().max()) <= 1.0 + 1e-6 else "linear"


def train_stack(params: dict, x: torch.Tensor, seed: int, device: torch.device) -> dict:
    """Greedy layer-wise HAE training; returns the stack's state (CPU tensors)."""
    check_length(x.shape[-1], params["layers"], "hae")
    bottom = resolve_bottom_activation(params, x)
    lambdas = per_layer(params["cos_lambda"], params["layers"], "cos_lambda")
    inputs = LayerInputs(x, [], device)
    layers, history, seconds = [], [], []
    for i in range(params["layers"]):
        seed_torch(seed, "hae", "init", i)
        encoder, decoder = build_layer(params, i, bottom)
        encoder.to(device).train()
        decoder.to(device).train()
        lam = lambdas[i]

        def loss_fn(target, step, total, encoder=encoder, decoder=decoder, lam=lam):
            rec = decoder(encoder(target))
            loss = F.mse_loss(rec, target)
            return loss + lam * cosine_penalty(target, rec) if lam else loss

        started = time.perf_counter()
        history.append(train_loop(list(encoder.parameters()) + list(decoder.parameters()), loss_fn, inputs,
                                  x.shape[0], params["epochs"], params["batch_size"], float(params["lr"]),
                                  params["schedule"], float(params["grad_clip"]),
                                  torch.Generator().manual_seed(derive_seed(seed, "hae", "order", i)), device))
        seconds.append(time.perf_counter() - started)
        decoder.eval()
        inputs.advance(encoder)
        layers.append({"encoder": {k: v.cpu() for k, v in encoder.state_dict().items()},
                       "decoder": {k: v.cpu() for k, v in decoder.state_dict().items()}})
    return {"layers": layers, "bottom_activation": bottom, "history": history, "seconds": seconds}


def stack_config(params: dict, train_x: torch.Tensor, seed: int) -> dict:
    return {"data": compress.data_fingerprint(train_x), "seed": int(seed), "version": STACK_VERSION,
            "params": {k: params[k] for k in STACK_KEYS}}


def fitted_stack(ctx, train_x: torch.Tensor, params: dict, seed: Optional[int] = None) -> dict:
    """The trained HAE stack of these parameters, training data and seed (default: the
    cell's): a shared artifact."""
    seed = ctx.seed if seed is None else int(seed)
    config = stack_config(params, train_x, seed)
    compute = lambda: train_stack({k: params[k] for k in STACK_KEYS}, train_x, seed, ctx.device)  # noqa: E731
    cache = getattr(ctx, "cache", None)
    return cache.get_or_compute("hae-stack", config, compute) if cache is not None else compute()


def load_stack(params: dict, state: dict, device: torch.device) -> Stack:
    stack = Stack(params, state["bottom_activation"])
    for i, layer in enumerate(state["layers"]):
        stack.encoders[i].load_state_dict(layer["encoder"])
        stack.decoders[i].load_state_dict(layer["decoder"])
    return stack.to(device).eval()


# --------------------------------------------------------------------------- best of N runs
SELECTION_SIGNALS = 4096  # training signals the runs are compared on (all when fewer)


def run_seeds(seed: int, runs: int) -> list:
    """Seeds of ``runs`` HAE runs: the cell's own seed first (so one run is the stack a
    single fit trains, and the ``hae`` plugin's artifact), then seeds derived from it."""
    return [int(seed)] + [derive_seed(seed, "hae-run", r) for r in range(1, runs)]


@torch.no_grad()
def reconstruction_nmse_db(params: dict, state: dict, x: torch.Tensor, device: torch.device,
                           batch: int = 256) -> list:
    """Per level i: the NMSE (dB, ``compress.nmse_db``) of ``x`` encoded to level i and
    decoded through decoders i..0, i.e. what a level-i reconstruction loses."""
    stack = load_stack(params, state, device)
    errors = [[] for _ in range(params["layers"])]
    for start in range(0, x.shape[0], batch):
        signals = x[start:start + batch].to(device)
        z = signals
        for level, encoder in enumerate(stack.encoders):
            z = encoder(z)
            errors[level].append(compress.per_signal_nmse(signals, stack.decode(z, level)).cpu())
    return [10.0 * math.log10(max(float(torch.cat(e).mean()), 1e-30)) for e in errors]


def selection_signals(ctx, train_x: torch.Tensor) -> torch.Tensor:
    """The training signals the runs are compared on: a seeded sample of at most
    ``SELECTION_SIGNALS``, the same for every run (a paired comparison)."""
    if train_x.shape[0] <= SELECTION_SIGNALS:
        return train_x
    index = torch.randperm(train_x.shape[0], generator=ctx.torch_generator("hae-select"))[:SELECTION_SIGNALS]
    return train_x[index.sort().values]


def best_stack(ctx, train_x: torch.Tensor, params: dict, runs: int) -> tuple:
    """The best of ``runs`` HAE stacks (each a shared ``hae-stack`` artifact) and what the
    choice rests on. Criterion: the mean over levels of the training signals'
    reconstruction NMSE in dB (lower is better; each level counts alike, as the paper's
    tables weigh every layer's accuracy alike). Training data only, never test data.
    One run is the single stack of the cell's seed, with nothing to compare."""
    seeds = run_seeds(ctx.seed, runs)
    if runs == 1:
        return fitted_stack(ctx, train_x, params), {"seeds": seeds, "chosen": 0}
    sample = selection_signals(ctx, train_x)
    best, per_level, scores = None, [], []
    for seed in seeds:
        state = fitted_stack(ctx, train_x, params, seed)
        per_level.append(reconstruction_nmse_db(params, state, sample, ctx.device))
        scores.append(sum(per_level[-1]) / len(per_level[-1]))
        if best is None or scores[-1] < scores[best[0]]:
            best = (len(scores) - 1, state)
    return best[1], {"seeds": seeds, "chosen": best[0], "criterion": "mean train NMSE dB over levels",
                     "score": scores, "nmse_db": per_level, "n_signals": int(sample.shape[0])}


# --------------------------------------------------------------------------- plugin
class HAE(Compressor):
    """HAE (HQARF stage 1): greedy hierarchical 1-D autoencoder, MSE + per-layer cosine loss, float latents."""

    name = "hae"
    version = "1"
    defaults = {**HAE_DEFAULTS, "latent_bits": 32}

    def __init__(self, **params):
        super().__init__(**params)
        check_stack_params(self.params, self.name)
        check_int(self.params, "latent_bits", 1, self.name)
        self.state: Optional[dict] = None
        self.stack: Optional[Stack] = None
        self.device = torch.device("cpu")
        self.history: dict = {}

    def fit(self, ctx, train):
        check_length(train.length, self.params["layers"], self.name)
        self.device = ctx.device
        self.set_state(fitted_stack(ctx, train.x, self.params))

    def get_state(self) -> dict:
        return self.state

    def set_state(self, state: dict) -> None:
        self.state = state
        self.stack = load_stack(self.params, state, self.device)
        self.history = {"layer_loss": state.get("history"), "layer_seconds": state.get("seconds")}

    def levels(self):
        return list(range(self.params["layers"]))

    def level_label(self, level) -> str:
        return f"L{level}"

    @torch.no_grad()
    def encode(self, x, level):
        return self.stack.encode(x.to(self.device), int(level))

    @torch.no_grad()
    def decode(self, code, level):
        return self.stack.decode(code.to(self.device), int(level))

    def bits(self, level, length):
        return compress.float_bits(self.params["latent_dim"] * length // 2 ** (int(level) + 1),
                                   self.params["latent_bits"])

    def alphabet(self, level):
        return None


@hookimpl
def amrbench_register(registry):
    registry.add(HAE)
