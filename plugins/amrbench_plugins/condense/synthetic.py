"""Shared machinery of the dataset condensers (DC, DM, MDM) and the condense protocol.

A condenser learns ``spc`` synthetic signals per class. What they share lives here:

- ``SyntheticCondenser``: the common parameters (``iterations``, ``lr``, ``momentum``,
  ``batch_real``, ``init``, ``augment``, ``net``, the ``search_*`` of the default
  ``lr: search`` policy), the synthetic tensor, its optimiser (SGD with momentum 0.5 on
  the signals, as the DC/DM reference code), seeding, the loss history and its
  convergence summary. Subclasses implement ``step`` and ``matching_loss``.
- ``convergence_summary``: what a condensation reached (first/last loss over 5 % windows,
  relative movement ||S - S_0|| / ||S_0||, a <= 50-point loss curve, ``converged``: moved
  >= 1 % and loss fell >= 10 %), recorded by the condense protocol.
- Initialisation from randomly chosen real signals of each class (``init: real``, the
  MDM paper's §III-C) or Gaussian noise with the real set's per-channel spread.
- Real mini-batches: ``batch_real`` signals of every class drawn without replacement
  (fewer when a class is smaller), gathered by index in one tensor.
- ``EmbeddingNet``: the matching network, a model plugin (by default the cell's *source*
  model, e.g. AlexNet, the MDM paper's condensation model) rebuilt with fresh random
  weights for every draw theta ~ P_theta, frozen, with the model's input transform;
  large batches go through in cache-sized slices on CPU (``chunk``).
- ``class_means`` / ``mean_embedding_loss``: the DM distance
  sum_c || mean psi(real_c) - mean psi(syn_c) ||^2 for all classes from one forward pass
  of the real batch and one of the synthetic set (per-class means by ``index_add``).
- ``dft_magnitude``: MDM's frequency view [|DFT(I)|, |DFT(Q)|] (Eqs. 6-8), per channel.
- ``IQAugment``: optional differentiable I/Q augmentations (random phase rotation,
  circular time shift, amplitude scaling), Siamese as DSA: one draw per class and
  iteration, applied identically to that class's real and synthetic signals.
- ``resolve_per_dataset``: ``lr`` and ``alpha`` may be a number, a mapping SPC -> value,
  or a mapping dataset -> (number or SPC mapping); ``"paper"`` is the MDM paper's table;
  ``"search"`` (the default) chooses it on a held-out matching loss (SyntheticCondenser).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from amrbench import transforms
from amrbench.api import AmrbenchError, Condenser, SignalSet, Stopwatch

# --------------------------------------------------------------------------- settings
#: The MDM paper's synthetic-signal learning rates (§III-C), by dataset and SPC.
#: ``name[lo,hi]`` keys match a dataset with that SNR filter, bare names any filter.
PAPER_LR = {
    "rml2016a[10,18]": {10: 1e-5, 50: 1e-4, 100: 1e-4},
    "rml2016a-synth[10,18]": {10: 1e-5, 50: 1e-4, 100: 1e-4},
    "rml2016a": {10: 1e-8, 50: 1e-7, 100: 1e-7},
    "rml2016a-synth": {10: 1e-8, 50: 1e-7, 100: 1e-7},
    "sig2019": {10: 1e-6, 50: 1e-5, 100: 1e-4},
    "sig2019-synth": {10: 1e-6, 50: 1e-5, 100: 1e-4},
}


def dataset_key(spec: Optional[dict]) -> str:
    """``name`` or ``name[lo,hi]`` (the SNR filter), as used in per-dataset mappings."""
    if not spec:
        return ""
    snr = spec.get("snr")
    if snr:
        return f"{spec['name']}[{_num(snr[0])},{_num(snr[1])}]"
    return str(spec["name"])


def _num(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _is_spc_key(key) -> bool:
    if isinstance(key, bool):
        return False
    if isinstance(key, int):
        return True
    return isinstance(key, str) and key.strip().isdigit()


def _by_spc(mapping: dict, spc: int, what: str):
    """Exact SPC, else the largest SPC key below it, else the smallest key."""
    table = {int(k): v for k, v in mapping.items()}
    if spc in table:
        return table[spc]
    lower = [k for k in table if k <= spc]
    return table[max(lower)] if lower else table[min(table)]


def check_per_dataset(value, what: str, allow_paper: bool = False) -> None:
    """Validate the shape of an ``lr``/``alpha`` parameter (raises AmrbenchError)."""
    if allow_paper and value == "paper":
        return
    if isinstance(value, bool):
        raise AmrbenchError(f"{what} must be a number or a mapping, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(float(value)) or float(value) < 0:
            raise AmrbenchError(f"{what} must be a finite number >= 0, got {value!r}")
        return
    if not isinstance(value, dict) or not value:
        hint = ", 'paper'" if allow_paper else ""
        raise AmrbenchError(f"{what} must be a number, a mapping SPC -> number or dataset -> number{hint}; "
                            f"got {value!r}")
    spc_keys = [_is_spc_key(k) for k in value]
    if all(spc_keys):
        for v in value.values():
            check_per_dataset(v, what)
            if isinstance(v, dict):
                raise AmrbenchError(f"{what}: an SPC mapping must map to numbers, got {v!r}")
        return
    if any(spc_keys):
        raise AmrbenchError(f"{what}: do not mix SPC keys and dataset keys in one mapping: {sorted(map(str, value))}")
    for v in value.values():
        check_per_dataset(v, what)


def resolve_per_dataset(value, dataset: Optional[dict], spc: int, what: str, paper: Optional[dict] = None) -> float:
    """The number ``value`` means for this dataset spec and SPC.

    ``value``: a number; a mapping SPC -> number (exact SPC, else the largest key below);
    or a mapping dataset -> (number or SPC mapping) whose keys are ``name[lo,hi]`` (that
    SNR filter), ``name`` (any filter) or ``default``; or ``"paper"`` (``paper`` table).
    """
    if value == "paper":
        if paper is None:
            raise AmrbenchError(f"{what}: no 'paper' table")
        found = _match_dataset(paper, dataset)
        if found is None:
            raise AmrbenchError(
                f"{what}: 'paper' knows the MDM paper's datasets ({', '.join(sorted(paper))}), not "
                f"{dataset_key(dataset)!r}; set {what} to a number or a mapping SPC -> number")
        value = found
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dict) and all(_is_spc_key(k) for k in value):
        return float(_by_spc(value, spc, what))
    if isinstance(value, dict):
        found = _match_dataset(value, dataset)
        if found is None:
            raise AmrbenchError(f"{what}: no entry for dataset {dataset_key(dataset)!r} (keys: "
                                f"{', '.join(sorted(map(str, value)))}); add it or a 'default' key")
        return resolve_per_dataset(found, dataset, spc, what)
    raise AmrbenchError(f"{what}: cannot interpret {value!r}")


def _match_dataset(mapping: dict, dataset: Optional[dict]):
    if dataset:
        norm = {str(k).replace(" ", ""): v for k, v in mapping.items()}
        for key in (dataset_key(dataset), str(dataset["name"])):
            if key in norm:
                return norm[key]
    return mapping.get("default")


# --------------------------------------------------------------------------- data
def class_indices(train: SignalSet) -> list[torch.Tensor]:
    y = train.y
    return [torch.nonzero(y == c).flatten() for c in range(train.num_classes)]


def init_synthetic(train: SignalSet, spc: int, rng: np.random.Generator, init: str = "real"):
    """(x (K*spc, 2, L), y (K*spc,), picks) sorted by class: ``spc`` real signals drawn
    without replacement from each class (``picks``: their indices in ``train``), or
    Gaussian noise with the real per-channel spread (``picks`` None)."""
    k = train.num_classes
    y = torch.arange(k).repeat_interleave(spc)
    picks = None
    if init == "real":
        chosen = []
        for c, members in enumerate(class_indices(train)):
            if len(members) < spc:
                raise AmrbenchError(f"class {train.classes[c]!r} has {len(members)} training signals, fewer than spc={spc}")
            chosen.append(members[torch.from_numpy(rng.choice(len(members), size=spc, replace=False))])
        picks = torch.cat(chosen)
        x = train.x[picks].clone()
    elif init == "noise":
        std = train.x.std(dim=(0, 2)).view(1, 2, 1)
        x = torch.from_numpy(rng.standard_normal((k * spc, 2, train.length)).astype(np.float32)) * std
    else:
        raise AmrbenchError(f"init {init!r}: allowed: real, noise")
    return x.float(), y, picks


def holdout_split(train: SignalSet, fraction: float, rng: np.random.Generator,
                  exclude: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(fit indices, held-out indices) of ``train``: ``fraction`` of every class (at least
    one signal) held out, drawn among the signals not in ``exclude`` (the synthetic set's
    real initialisation, so the held-out loss does not reward staying put)."""
    excluded = set() if exclude is None else set(exclude.tolist())
    fit, held = [], []
    for members in class_indices(train):
        free = np.array([i for i in members.tolist() if i not in excluded], dtype=np.int64)
        n_held = min(len(free), max(1, int(round(fraction * len(members)))))
        chosen = rng.choice(len(free), size=n_held, replace=False) if n_held else np.array([], dtype=np.int64)
        mask = np.zeros(len(members), dtype=bool)
        mask[np.isin(members.numpy(), free[chosen])] = True
        held.append(members[torch.from_numpy(mask)])
        fit.append(members[torch.from_numpy(~mask)])
    return torch.sort(torch.cat(fit)).values, torch.sort(torch.cat(held)).values


class RealSampler:
    """Draws ``batch`` real signals of every class (without replacement; all of a class
    when it has fewer) as one flat index tensor with the matching labels."""

    def __init__(self, train: SignalSet, batch: int, generator: torch.Generator):
        self.members = class_indices(train)
        self.batch = int(batch)
        self.generator = generator
        self.labels = torch.cat([torch.full((min(self.batch, len(m)),), c, dtype=torch.int64)
                                 for c, m in enumerate(self.members)])

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        picks = []
        for members in self.members:
            n = len(members)
            if n <= self.batch:
                picks.append(members)
            else:
                picks.append(members[torch.randperm(n, generator=self.generator)[:self.batch]])
        return torch.cat(picks), self.labels

    def sample_class(self, c: int) -> torch.Tensor:
        members = self.members[c]
        if len(members) <= self.batch:
            return members
        return members[torch.randperm(len(members), generator=self.generator)[:self.batch]]


# --------------------------------------------------------------------------- networks
def resolve_chunk(chunk, device) -> int:
    """``auto``: 128 signals per forward on CPU (cache-sized batches run faster than one
    large batch there; docs/condense.md), everything at once on accelerators; 0 = no
    chunking."""
    if chunk == "auto":
        return 128 if torch.device(device).type == "cpu" else 0
    return int(chunk)


class EmbeddingNet:
    """A model plugin used as psi_theta: ``sample()`` draws fresh random weights (a new
    network from the model's own initialisation), frozen unless ``trainable``;
    ``__call__`` embeds raw (N, 2, L) I/Q through the model's input transform.

    ``chunk``: a large batch is pushed through in slices of ``chunk`` signals (same
    result up to float rounding: the network is per-sample) except for networks with
    batch norm, whose training-mode statistics must see the whole batch."""

    def __init__(self, registry, model_name: str, num_classes: int, length: int, device, trainable: bool = False,
                 chunk: int = 0):
        self.model = registry.create("model", model_name)
        self.name = model_name
        self.num_classes, self.length, self.device, self.trainable = num_classes, length, device, trainable
        self.chunk = int(chunk)
        self.net: Optional[nn.Module] = None
        self.batchnorm = False

    def sample(self) -> nn.Module:
        net = self.model.build(self.num_classes, self.length).to(self.device)
        net.train()  # as the DM reference: a fresh net in training mode (batch statistics for BN)
        if not self.trainable:
            net.requires_grad_(False)
        self.net = net
        self.batchnorm = has_batchnorm(net)
        return net

    def _chunked(self, fn, x: torch.Tensor) -> torch.Tensor:
        if self.chunk <= 0 or self.batchnorm or len(x) <= self.chunk:
            return fn(transforms.apply(self.model.input_format, x))
        return torch.cat([fn(transforms.apply(self.model.input_format, x[i:i + self.chunk]))
                          for i in range(0, len(x), self.chunk)])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self._chunked(self.net.embed, x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._chunked(self.net, x)

    __call__ = embed


def has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def class_means(emb: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, D) per-class means of (N, D) embeddings, one ``index_add`` (no class loop)."""
    sums = torch.zeros(num_classes, emb.shape[1], dtype=emb.dtype, device=emb.device).index_add_(0, labels, emb)
    counts = torch.bincount(labels, minlength=num_classes).clamp_min(1).to(emb.dtype)
    return sums / counts.unsqueeze(1)


def mean_embedding_loss(embed, real_x: torch.Tensor, real_y: torch.Tensor, syn_x: torch.Tensor,
                        syn_y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """DM: sum_c || mean embed(real_c) - mean embed(syn_c) ||^2, all classes batched; the
    real side is computed without gradients."""
    with torch.no_grad():
        mu_real = class_means(embed(real_x).float(), real_y, num_classes)
    mu_syn = class_means(embed(syn_x).float(), syn_y, num_classes)
    return ((mu_real - mu_syn) ** 2).sum()


def dft_magnitude(x: torch.Tensor, norm: str = "backward") -> torch.Tensor:
    """[|DFT(I)|, |DFT(Q)|] (MDM Eqs. 6-8): the DFT of each channel over time, magnitude,
    all N bins kept; same shape as ``x``. ``norm`` as ``torch.fft.fft`` ("backward" =
    unscaled, the paper's sum; "ortho" divides by sqrt(N))."""
    return torch.fft.fft(x, dim=-1, norm=norm).abs()


# --------------------------------------------------------------------------- augmentation
AUGMENTATIONS = ("phase", "shift", "scale")


class IQAugment:
    """Differentiable, Siamese I/Q augmentation (a DSA counterpart for signals).

    Each draw picks, for every class, one family from ``families`` (DSA's single-family
    mode) and its parameter: phase rotation theta ~ U(-pi, pi) (I + jQ times e^{j theta}),
    circular time shift s ~ U{-L/8..L/8}, amplitude scale g ~ U(1/1.2, 1.2). ``apply``
    gives every signal its class's transform, so real and synthetic signals of a class
    see the same one; gradients flow through all three."""

    def __init__(self, families: Sequence[str], length: int, generator: torch.Generator,
                 max_shift: Optional[int] = None, scale: float = 1.2):
        for f in families:
            if f not in AUGMENTATIONS:
                raise AmrbenchError(f"augment {f!r}: allowed: {', '.join(AUGMENTATIONS)}")
        self.families = list(families)
        self.length = length
        self.generator = generator
        self.max_shift = max(1, length // 8) if max_shift is None else int(max_shift)
        self.scale = float(scale)

    def draw(self, num_classes: int) -> Optional[dict]:
        if not self.families:
            return None
        g = self.generator
        family = torch.randint(len(self.families), (num_classes,), generator=g)
        kinds = torch.tensor([AUGMENTATIONS.index(f) for f in self.families])[family]
        theta = (torch.rand(num_classes, generator=g) * 2 - 1) * math.pi
        shift = torch.randint(-self.max_shift, self.max_shift + 1, (num_classes,), generator=g)
        log_s = math.log(self.scale)
        gain = torch.exp((torch.rand(num_classes, generator=g) * 2 - 1) * log_s)
        return {"theta": torch.where(kinds == 0, theta, torch.zeros_like(theta)),
                "shift": torch.where(kinds == 1, shift, torch.zeros_like(shift)),
                "gain": torch.where(kinds == 2, gain, torch.ones_like(gain))}

    @staticmethod
    def apply(x: torch.Tensor, labels: torch.Tensor, params: Optional[dict]) -> torch.Tensor:
        if params is None:
            return x
        device = x.device
        labels = labels.to(device)
        theta = params["theta"].to(device)[labels].view(-1, 1)
        gain = params["gain"].to(device)[labels].view(-1, 1)
        shift = params["shift"].to(device)[labels]
        cos, sin = torch.cos(theta), torch.sin(theta)
        i, q = x[:, 0], x[:, 1]
        i2 = (i * cos - q * sin) * gain
        q2 = (i * sin + q * cos) * gain
        out = torch.stack([i2, q2], dim=1)
        if bool((shift != 0).any()):
            length = x.shape[-1]
            index = (torch.arange(length, device=device).view(1, -1) - shift.view(-1, 1)) % length
            out = torch.gather(out, 2, index.unsqueeze(1).expand(-1, 2, -1))
        return out


# --------------------------------------------------------------------------- convergence
#: A condensation is "unconverged" when its synthetic set moved less than MIN_MOVEMENT
#: of its initial norm, or its matching loss fell by less than MIN_LOSS_DROP (first vs
#: last LOSS_WINDOW of the iterations): the result is then its initialisation, not the
#: method's.
MIN_MOVEMENT = 0.01
MIN_LOSS_DROP = 0.10
LOSS_WINDOW = 0.05
CURVE_POINTS = 50
UNCONVERGED_TEXT = (f"the synthetic set moved < {MIN_MOVEMENT:.0%} from its initialisation or its matching loss "
                    f"fell < {MIN_LOSS_DROP:.0%}")


def relative_movement(x0: torch.Tensor, x: torch.Tensor) -> float:
    """||x - x0|| / ||x0|| (Frobenius norms over the whole synthetic set)."""
    x0, x = x0.detach().double(), x.detach().double()
    return float((x - x0).norm() / x0.norm().clamp_min(1e-30))


def loss_curve(history: Sequence[float], points: int = CURVE_POINTS) -> list:
    """[[iteration, loss], ...]: at most ``points`` equal bins of the history, each its
    mean loss at the bin's last iteration (1-based); the whole history when shorter."""
    n = len(history)
    if n <= points:
        return [[i + 1, float(v)] for i, v in enumerate(history)]
    edges = np.linspace(0, n, points + 1).round().astype(int)
    values = np.asarray(history, dtype=float)
    return [[int(b), float(values[a:b].mean())] for a, b in zip(edges[:-1], edges[1:])]


def convergence_summary(history: Sequence[float], x0: torch.Tensor, x: torch.Tensor) -> dict:
    """What a condensation reached: ``first_loss`` / ``final_loss`` (means over the first
    and last ``loss_window`` iterations, 5 % of them, at least 1), ``loss_drop`` (1 -
    final/first), ``movement`` (||S_final - S_0|| / ||S_0||), ``loss_curve`` (<= 50
    points), ``iterations`` and ``converged`` (moved >= 1 % and loss fell >= 10 %)."""
    n = len(history)
    movement = relative_movement(x0, x)
    if n == 0:
        return {"iterations": 0, "loss_window": 0, "first_loss": None, "final_loss": None, "loss_drop": None,
                "movement": movement, "loss_curve": [], "converged": False}
    window = max(1, math.ceil(LOSS_WINDOW * n))
    first, final = float(np.mean(history[:window])), float(np.mean(history[-window:]))
    drop = 1.0 - final / first if first > 0 else 0.0
    return {"iterations": n, "loss_window": window, "first_loss": first, "final_loss": final, "loss_drop": drop,
            "movement": movement, "loss_curve": loss_curve(history),
            "converged": bool(movement >= MIN_MOVEMENT and drop >= MIN_LOSS_DROP)}


def convergence_text(summary: Optional[dict]) -> str:
    """One line: the loss first -> last (and over which window), the movement, the verdict."""
    if not summary or not summary.get("iterations"):
        return "no iterations: the synthetic set is its initialisation (unconverged)"
    verdict = "converged" if summary["converged"] else f"UNCONVERGED ({UNCONVERGED_TEXT})"
    return (f"matching loss {summary['first_loss']:.4g} -> {summary['final_loss']:.4g} "
            f"({-100 * summary['loss_drop']:+.1f} %; means over the first/last {summary['loss_window']} of "
            f"{summary['iterations']} iterations), movement ||S - S0|| / ||S0|| = {100 * summary['movement']:.3g} %: "
            f"{verdict}")


def search_edge(search: Optional[dict]) -> Optional[str]:
    """Whether an ``lr: search`` record chose an end of its grid (``"largest"`` or
    ``"smallest"`` candidate): the best rate may then lie outside ``search_steps``."""
    if not search or len(search.get("lrs") or []) < 2:
        return None
    lrs = search["lrs"]
    return {lrs[-1]: "largest", lrs[0]: "smallest"}.get(search.get("chosen"))


# --------------------------------------------------------------------------- base class
#: relative first-step sizes the ``lr: search`` policy tries (lr = step x ||S_0|| / ||dL/dS||)
SEARCH_STEPS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
LR_POLICIES = ("search", "paper")

SYNTHETIC_DEFAULTS = {
    "iterations": 20000,
    "lr": "search",
    "momentum": 0.5,
    "batch_real": 256,
    "init": "real",
    "augment": [],
    "net": "source",
    "chunk": "auto",
    "search_steps": list(SEARCH_STEPS),
    "search_iterations": 20,
    "search_holdout": 0.2,
    "search_nets": 8,
}


class SyntheticCondenser(Condenser):
    """Learns synthetic signals by gradient steps on a matching loss (``step``).

    Learning-rate policies (``lr``): a number or mapping (see ``resolve_per_dataset``);
    ``"paper"`` (the MDM paper's §III-C table); ``"search"`` (the default): the rate is
    chosen on the matching loss against a held-out part of the training split, never on
    test accuracy. ``search_holdout`` of every class (not the initial signals) is held
    out; on the rest, ``search_iterations`` iterations are run from the same S_0 and the
    same random streams at each candidate lr = step x ||S_0|| / mean ||dL/dS(S_0)||
    (``search_steps``: the first step moves S by that fraction of its norm; the gradient
    averaged over ``search_nets`` networks), and the candidate whose S has the lowest
    matching loss against the held-out signals (the same ``search_nets`` fixed networks,
    no augmentation) wins. A scale-free rule: the three losses differ by orders of
    magnitude, so no shared absolute rate is a fair control. Short probes favour larger
    steps (short-horizon bias); the record's movement and loss curve show what the full
    run did with the choice."""

    defaults: dict = dict(SYNTHETIC_DEFAULTS)
    matching_domains: int = 1  # matching losses per iteration through the same network (MDM: time and |DFT|)
    #: shared resources the condenser reads (none for the synthetic ones)
    needs: tuple = ()

    def __init__(self, **params: Any):
        super().__init__(**params)
        p = self.params
        for key in ("iterations", "batch_real", "search_iterations", "search_nets"):
            if isinstance(p[key], bool) or not isinstance(p[key], int) or p[key] < (0 if key == "iterations" else 1):
                raise AmrbenchError(f"condenser {self.name!r}: {key} must be a{' non-negative' if key == 'iterations' else ' positive'} integer, got {p[key]!r}")
        if p["init"] not in ("real", "noise"):
            raise AmrbenchError(f"condenser {self.name!r}: init {p['init']!r}: allowed: real, noise")
        augment = p["augment"] or []
        if isinstance(augment, str):
            augment = [augment]
        for f in augment:
            if f not in AUGMENTATIONS:
                raise AmrbenchError(f"condenser {self.name!r}: augment {f!r}: allowed: {', '.join(AUGMENTATIONS)}")
        p["augment"] = list(augment)
        if p["lr"] != "search":
            try:
                check_per_dataset(p["lr"], "lr", allow_paper=True)
            except AmrbenchError as exc:
                raise AmrbenchError(f"condenser {self.name!r}: {exc} (or 'search')") from None
        steps = p["search_steps"]
        if not isinstance(steps, (list, tuple)) or not steps or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < math.inf for v in steps):
            raise AmrbenchError(f"condenser {self.name!r}: search_steps must be a list of positive numbers "
                                f"(relative first-step sizes, e.g. {list(SEARCH_STEPS)}), got {steps!r}")
        p["search_steps"] = [float(v) for v in steps]
        holdout = p["search_holdout"]
        if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 < holdout < 1:
            raise AmrbenchError(f"condenser {self.name!r}: search_holdout must be a fraction in (0, 1), got {holdout!r}")
        if p["chunk"] != "auto" and (isinstance(p["chunk"], bool) or not isinstance(p["chunk"], int) or p["chunk"] < 0):
            raise AmrbenchError(f"condenser {self.name!r}: chunk must be 'auto' or an integer >= 0, got {p['chunk']!r}")
        if not isinstance(p["net"], str):
            raise AmrbenchError(f"condenser {self.name!r}: net must be 'source' or a model name")
        self.history: list = []
        self.details: dict = {}
        self.convergence: Optional[dict] = None

    @classmethod
    def needs_for(cls, registry, params: dict) -> list:
        return list(cls.needs)

    @classmethod
    def work_estimate(cls, cell: dict, n_classes: int, n_train: int):
        """Its forward passes (``condense.work.CondensationWork``), when it runs a set
        number of ``iterations``."""
        from amrbench_plugins.condense.work import CondensationWork

        iterations = (cell["method"].get("params") or {}).get("iterations")
        return CondensationWork(cls, cell, n_classes, n_train) if isinstance(iterations, int) else None

    def net_name(self, ctx) -> str:
        return ctx.cell["model"]["source"] if self.params["net"] == "source" else self.params["net"]

    def learning_rate(self, ctx, spc: int) -> float:
        return resolve_per_dataset(self.params["lr"], (ctx.cell or {}).get("dataset"), spc, "lr", PAPER_LR)

    # subclasses: set up per-run state, compute the matching loss, do one iteration
    def setup(self, ctx, train: SignalSet, spc: int) -> None:
        pass

    def calibrate(self, ctx, train: SignalSet, x0: torch.Tensor) -> None:
        """Once per condensation, before any run (MDM weighs its two domains here)."""

    def step(self, iteration: int) -> float:
        raise NotImplementedError

    def matching_loss(self, real_x, real_y, syn_x, syn_y) -> torch.Tensor:
        """The loss at the current network (``self.embedder.net``), differentiable in syn_x."""
        raise NotImplementedError

    def condense(self, ctx, train: SignalSet, spc: int) -> SignalSet:
        p = self.params
        x0, y, picks = init_synthetic(train, spc, ctx.rng("condense", "init"), p["init"])
        self.spc, self.device, self.num_classes = spc, ctx.device, train.num_classes
        self.syn_y = y.to(ctx.device)
        self.embedder = EmbeddingNet(ctx.registry, self.net_name(ctx), train.num_classes, train.length, ctx.device,
                                     trainable=self.trainable_net,
                                     chunk=resolve_chunk(p["chunk"], ctx.device))
        self.details = {}
        self.stream = ("condense",)
        self._start(ctx, train, x0, 0.0)
        self.calibrate(ctx, train, x0)
        self.lr = self.search_lr(ctx, train, x0, picks) if p["lr"] == "search" else self.learning_rate(ctx, spc)
        with Stopwatch() as iterating:
            self.history = self._optimise(ctx, train, x0, self.lr, p["iterations"], ("condense",))
        self.seconds, self.cpu_seconds = iterating.seconds, iterating.cpu_seconds
        out = self.syn_x.detach().cpu()
        if not torch.isfinite(out).all():
            raise AmrbenchError(f"condenser {self.name!r}: synthetic signals diverged (NaN/inf); lower lr ({self.lr:g})")
        self.convergence = convergence_summary(self.history, x0, out)
        return SignalSet(out, self.syn_y.cpu(), torch.full((len(out),), float("nan")), list(train.classes),
                         f"{train.name}:{self.name}")

    def _start(self, ctx, train: SignalSet, x0: torch.Tensor, lr: float) -> None:
        """Fresh run state on ``train`` from ``x0``: synthetic tensor, optimiser, real
        sampler and augmentation streams (named by ``self.stream``)."""
        p, device = self.params, ctx.device
        self.train = train
        self.real_x = train.x.to(device)
        self.syn_x = x0.clone().to(device).requires_grad_(True)
        self.optimizer = torch.optim.SGD([self.syn_x], lr=lr, momentum=float(p["momentum"]))
        self.sampler = RealSampler(train, p["batch_real"], ctx.torch_generator(*self.stream, "real"))
        self.augment = IQAugment(p["augment"], train.length, ctx.torch_generator(*self.stream, "augment"))
        self.setup(ctx, train, self.spc)

    def _optimise(self, ctx, train: SignalSet, x0: torch.Tensor, lr: float, iterations: int, stream: tuple) -> list:
        """``iterations`` steps at ``lr`` from ``x0``; the loss history (raises on divergence)."""
        self.stream = stream
        ctx.seed_torch(*stream, "nets")
        self._start(ctx, train, x0, lr)
        history = []
        for iteration in range(iterations):
            loss = float(self.step(iteration))
            if not math.isfinite(loss):
                raise AmrbenchError(f"condenser {self.name!r}: the matching loss diverged ({loss}) at iteration "
                                    f"{iteration + 1}; lower lr ({lr:g})")
            history.append(loss)
        return history

    # ------------------------------------------------------------------ lr search
    def _fixed_nets(self, ctx, tag: str):
        """The same ``search_nets`` networks, drawn afresh from a fixed seed each time."""
        for i in range(self.params["search_nets"]):
            ctx.seed_torch("condense", tag, i)
            yield self.embedder.sample()

    def _heldout_loss(self, ctx, real_x, real_y) -> float:
        """Mean matching loss of the current synthetic set against ``real_x`` over the fixed networks."""
        syn = self.syn_x.detach()
        return float(np.mean([float(self.matching_loss(real_x, real_y, syn, self.syn_y)) for _ in
                              self._fixed_nets(ctx, "search-score")]))

    def _gradient_scale(self, ctx) -> float:
        """||S_0|| / mean ||dL/dS|| at S_0 over the fixed networks (real batches of the fit part)."""
        norms = []
        for _ in self._fixed_nets(ctx, "search-grad"):
            index, labels = self.sampler.sample()
            loss = self.matching_loss(self.real_x[index], labels.to(self.device), self.syn_x, self.syn_y)
            (grad,) = torch.autograd.grad(loss, [self.syn_x])
            norms.append(float(grad.norm()))
        scale = float(np.mean(norms))
        if not scale > 0 or not math.isfinite(scale):
            raise AmrbenchError(f"condenser {self.name!r}: lr search: the matching loss has no finite, nonzero gradient "
                                f"at initialisation ({scale}); give lr a number")
        return float(self.syn_x.detach().norm()) / scale

    def search_lr(self, ctx, train: SignalSet, x0: torch.Tensor, picks) -> float:
        """The ``lr: search`` policy (class docstring); records candidates and scores in ``details``."""
        p = self.params
        fit_idx, held_idx = holdout_split(train, float(p["search_holdout"]), ctx.rng("condense", "search", "holdout"),
                                          picks)
        fit, held = train.subset(fit_idx), train.subset(held_idx)
        held_sampler = RealSampler(held, p["batch_real"], ctx.torch_generator("condense", "search", "held"))
        index, held_y = held_sampler.sample()
        held_x, held_y = held.x[index].to(self.device), held_y.to(self.device)
        self.stream = ("condense", "search")
        self._start(ctx, fit, x0, 0.0)
        unit = self._gradient_scale(ctx)
        initial = self._heldout_loss(ctx, held_x, held_y)
        lrs, scores = [step * unit for step in p["search_steps"]], []
        for lr in lrs:
            try:
                self._optimise(ctx, fit, x0, lr, p["search_iterations"], ("condense", "search"))
                score = self._heldout_loss(ctx, held_x, held_y)
            except AmrbenchError:  # diverged: not a candidate
                score = math.inf
            scores.append(score if math.isfinite(score) else math.inf)
        best = int(np.argmin(scores))
        self.details["lr_search"] = {
            "steps": list(p["search_steps"]), "lrs": lrs, "heldout_loss": [s if math.isfinite(s) else None for s in scores],
            "initial_heldout_loss": initial, "iterations": p["search_iterations"], "n_fit": len(fit),
            "n_heldout": len(held), "chosen": lrs[best]}
        if not math.isfinite(scores[best]):
            raise AmrbenchError(f"condenser {self.name!r}: lr search: every candidate diverged (lr {lrs[0]:g} .. "
                                f"{lrs[-1]:g}); give smaller search_steps or an lr")
        return lrs[best]

    def update(self, loss: torch.Tensor) -> None:
        """One optimiser step on the synthetic signals only (the network gets no gradient)."""
        self.optimizer.zero_grad(set_to_none=True)
        (grad,) = torch.autograd.grad(loss, [self.syn_x])
        self.syn_x.grad = grad
        self.optimizer.step()
