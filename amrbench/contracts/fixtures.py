"""What the contracts run plugins on: tiny seeded signals, tiny networks, and cell
contexts built the way a run builds them.

The contracts bring their own data set and model (``contract-signals``, ``contract-net``)
rather than borrowing installed plugins: a third party's selector is then checked on the
same inputs whatever else is installed, and the core names no plugin. Both are
registered only in the contracts' own registry (``contract_registry``), never in the
default one, so ``amrbench list`` and suites never see them.
"""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from typing import Optional

import torch
from torch import nn

from amrbench.api import AMRNet, Budget, Context, Dataset, Model, SignalSet
from amrbench.hookspecs import hookimpl
from amrbench.registry import Registry, normalize_dist
from amrbench.runner import RunOptions, make_context
from amrbench.suite import CellSpec, cell_config, dataset_config
from amrbench.train import validate_train_settings

#: The training settings of the contracts' cells (and of a selector's scoring run): one short epoch.
TRAIN = {"epochs": 1, "batch_size": 32, "eval_batch_size": 256}
#: The distribution the contracts' own plugins are registered under.
FIXTURE_DIST = "amrbench-contracts"


# --------------------------------------------------------------------------- data
def tones(classes: int, snr_values, per_class_per_snr: int, length: int, seed: int) -> SignalSet:
    """Complex tones, one frequency per class, random phase, in white noise at each SNR:
    separable after one epoch, so a scoring run's dynamics are not all alike."""
    g = torch.Generator().manual_seed(int(seed))
    snr_values = torch.tensor([float(s) for s in snr_values])
    y = torch.arange(classes).repeat_interleave(len(snr_values) * per_class_per_snr)
    snr = snr_values.repeat_interleave(per_class_per_snr).repeat(classes)
    frequency = (y.float() + 1) / (4.0 * (classes + 1))  # cycles per sample, in (0, 1/4)
    phase = 2 * math.pi * torch.rand(len(y), generator=g)
    angle = 2 * math.pi * frequency[:, None] * torch.arange(length)[None, :] + phase[:, None]
    noise = torch.randn(len(y), 2, length, generator=g) * torch.sqrt(10 ** (-snr / 10) / 2)[:, None, None]
    x = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1) + noise
    return SignalSet(x, y, snr, [f"tone-{c}" for c in range(classes)], name="contract-signals")


class ContractSignals(Dataset):
    """Tiny seeded tones in noise: the contracts' data set (never in the default registry)."""

    name = "contract-signals"
    defaults = {"num_classes": 4, "snr_values": [0, 10], "per_class_per_snr": 8, "length": 64}

    def load(self, seed, snr=None):
        p = self.params
        return tones(p["num_classes"], p["snr_values"], p["per_class_per_snr"], p["length"], seed)


def signals(n: int = 6, length: int = 64, classes: int = 4, seed: int = 0) -> SignalSet:
    """``n`` signals of ``classes`` tones (at least one per class when n allows), for
    checks that need inputs but no cell."""
    data = tones(classes, [10], -(-n // classes), length, seed)
    order = torch.arange(len(data)).view(classes, -1).t().flatten()[:n]  # interleave the classes
    return data.subset(order)


# --------------------------------------------------------------------------- networks
class ConvNet(AMRNet):
    """One 1-D convolution, global average pooling, a linear head; (N, 2, L) I/Q input."""

    def __init__(self, num_classes: int, width: int = 8):
        super().__init__()
        self.conv = nn.Conv1d(2, width, kernel_size=5, padding=2)
        self.head = nn.Linear(width, num_classes)
        object.__setattr__(self, "last_conv", self.conv)

    def embed(self, x):
        return torch.relu(self.conv(x)).mean(dim=2)


class Conv2dNet(AMRNet):
    """One 2-D convolution over the (1, 2, L) image view (``iq_2d``), pooled, a linear head."""

    def __init__(self, num_classes: int, width: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(1, width, kernel_size=(2, 5), padding=(0, 2))
        self.head = nn.Linear(width, num_classes)
        object.__setattr__(self, "last_conv", self.conv)

    def embed(self, x):
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


class RecurrentNet(AMRNet):
    """A GRU over time, its last hidden state as the embedding: no convolution at all."""

    def __init__(self, num_classes: int, width: int = 8):
        super().__init__()
        self.rnn = nn.GRU(2, width, batch_first=True)
        self.head = nn.Linear(width, num_classes)

    def embed(self, x):
        _, hidden = self.rnn(x.transpose(1, 2))
        return hidden[-1]


#: The networks explainers are checked on: id -> (input format, network class).
EXPLAINED_NETS = {"conv": ("iq", ConvNet), "conv2d": ("iq_2d", Conv2dNet), "recurrent": ("iq", RecurrentNet)}


class ContractNet(Model):
    """The contracts' model (never in the default registry): ``ConvNet``."""

    name = "contract-net"
    input_format = "iq"

    def build(self, num_classes, length):
        return ConvNet(num_classes)


@hookimpl
def amrbench_register(registry):
    registry.add(ContractSignals)
    registry.add(ContractNet)


# --------------------------------------------------------------------------- contexts
@lru_cache(maxsize=None)
def contract_registry() -> Registry:
    """Every installed plugin plus the contracts' data set and model, in a registry of
    its own (one per process)."""
    import sys

    registry = Registry().load_entry_points()
    registry.register_module(sys.modules[__name__], dist=FIXTURE_DIST)
    return registry


def registered_name(registry: Registry, cls: type) -> str:
    """The name a cell uses for ``cls``, registering it first when it is not (a class a
    test built by hand): bare, or ``dist:name`` when the name is taken several times."""
    if not any(info.cls is cls for info in registry.registrations.get(cls.kind, {}).get(cls.name, [])):
        registry.add(cls)
    infos = registry.registrations[cls.kind][cls.name]
    if len(infos) == 1:
        return cls.name
    mine = next(info for info in infos if info.cls is cls)
    return f"{normalize_dist(mine.dist)}:{cls.name}"


def protocol_for(registry: Registry, kind: str):
    """The protocol whose ``methods:`` are plugins of ``kind`` (the first by name)."""
    for name in registry.names("protocol"):
        protocol = registry.get("protocol", name)
        if protocol.method_kind == kind:
            return protocol
    raise LookupError(f"no installed protocol runs {kind} plugins")


def contract_context(cls: type, params: Optional[dict] = None, budget: Optional[Budget] = None,
                     seed: int = 0) -> Context:
    """The context of a cell of the protocol that runs ``cls``'s kind, with ``cls`` as its
    method, on ``contract-signals`` with ``contract-net`` as source and target model,
    one-epoch training: built by ``cell_config`` and ``make_context`` like a run's, so
    ``ctx.resource`` computes the family's shared resources (a scoring run, gradient
    norms) for real. The artifact cache is ``$AMRBENCH_CACHE``'s."""
    registry = contract_registry()
    protocol = protocol_for(registry, cls.kind)
    spec = CellSpec(protocol=protocol.name, dataset=dataset_config({"name": ContractSignals.name}),
                    method={"name": registered_name(registry, cls), "params": dict(params or {})}, budget=budget,
                    model={"source": ContractNet.name, "target": ContractNet.name}, seed=seed,
                    train=validate_train_settings(TRAIN), settings=dict(protocol.defaults))
    ctx = make_context(cell_config(spec, registry), RunOptions(threads=1).as_dict())
    return dataclasses.replace(ctx, registry=registry)
