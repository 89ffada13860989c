"""The contracts every plugin implements, and the data types they exchange.

A plugin is a class with a ``kind`` (model, dataset, selector, condenser, compressor,
explainer, protocol, executor), a registry ``name``, a ``version`` (folded into cell keys,
bump it when results change) and ``defaults`` (the parameters a suite may set; unknown
ones are errors). Its docstring's first line is the description ``amrbench list`` shows.

Each kind's base class marks the methods a plugin must implement as abstract (the
registry refuses a class that leaves one out) and declares every optional capability the
harness uses, with the default that applies when a plugin does not override it.
"""
from __future__ import annotations

import abc
import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import nn

from amrbench.basics import KINDS, AmrbenchError, cpu_metric, did_you_mean  # noqa: F401 (re-exported: plugins import them here)


# --------------------------------------------------------------------------- data types
@dataclass
class SignalSet:
    """I/Q signals with labels: ``x`` (N, 2, L) float32, ``y`` (N,) int64, ``snr`` (N,)
    float32 (NaN when unknown), ``classes`` the label names, optional ``weights`` (N,)."""

    x: torch.Tensor
    y: torch.Tensor
    snr: torch.Tensor
    classes: list
    name: str = ""
    weights: Optional[torch.Tensor] = None

    def __post_init__(self):
        self.x = torch.as_tensor(self.x, dtype=torch.float32)
        self.y = torch.as_tensor(self.y, dtype=torch.int64)
        self.snr = torch.as_tensor(self.snr, dtype=torch.float32)
        n = self.x.shape[0]
        if self.x.dim() != 3 or self.x.shape[1] != 2:
            raise AmrbenchError(f"dataset {self.name!r}: x must have shape (N, 2, L), got {tuple(self.x.shape)}")
        if self.y.shape != (n,) or self.snr.shape != (n,):
            raise AmrbenchError(
                f"dataset {self.name!r}: y and snr must have shape ({n},), got {tuple(self.y.shape)} and {tuple(self.snr.shape)}")
        if n and (int(self.y.min()) < 0 or int(self.y.max()) >= len(self.classes)):
            raise AmrbenchError(f"dataset {self.name!r}: labels must lie in 0..{len(self.classes) - 1}")
        if self.weights is not None:
            self.weights = torch.as_tensor(self.weights, dtype=torch.float32)
            if self.weights.shape != (n,):
                raise AmrbenchError(f"dataset {self.name!r}: weights must have shape ({n},)")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def length(self) -> int:
        return int(self.x.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, index) -> "SignalSet":
        index = torch.as_tensor(index, dtype=torch.int64)
        weights = None if self.weights is None else self.weights[index]
        return SignalSet(self.x[index], self.y[index], self.snr[index], list(self.classes), self.name, weights)

    def with_weights(self, weights) -> "SignalSet":
        return SignalSet(self.x, self.y, self.snr, list(self.classes), self.name, weights)

    def to(self, device) -> "SignalSet":
        weights = None if self.weights is None else self.weights.to(device)
        return SignalSet(self.x.to(device), self.y.to(device), self.snr.to(device), list(self.classes), self.name, weights)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y.cpu().numpy(), minlength=self.num_classes)


@dataclass(frozen=True)
class Budget:
    """How much data a selector or condenser may keep: a ``rate`` in (0, 1] of the training
    set, or ``spc`` signals per class."""

    rate: Optional[float] = None
    spc: Optional[int] = None

    def per_class(self, class_counts) -> np.ndarray:
        """Signals to keep per class: the rate's total split over classes like the data
        (largest remainder, never more than a class has), or ``spc`` capped likewise."""
        counts = np.asarray(class_counts, dtype=np.int64)
        if self.spc is not None:
            return np.minimum(counts, int(self.spc))
        exact = counts * float(self.rate)
        quota = np.floor(exact).astype(np.int64)
        total = int(round(counts.sum() * float(self.rate)))
        order = np.argsort(-(exact - quota), kind="stable")
        for c in order[: max(0, total - int(quota.sum()))]:
            quota[c] += 1
        return np.minimum(np.maximum(quota, (counts > 0).astype(np.int64)), counts)

    def label(self) -> str:
        if self.spc is not None:
            return f"SPC {self.spc}"
        pct = 100 * float(self.rate)
        return f"{pct:g}%"

    @classmethod
    def from_dict(cls, data: Optional[dict]) -> Optional["Budget"]:
        """The budget a cell config stores (``as_dict``), or None for a cell without one."""
        return cls(**data) if data else None

    def as_dict(self) -> dict:
        return {"rate": self.rate} if self.spc is None else {"spc": self.spc}


@dataclass
class Selection:
    """A selector's answer: indices into the training set, optional per-sample weights."""

    indices: torch.Tensor
    weights: Optional[torch.Tensor] = None


# --------------------------------------------------------------------------- plugins
_KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list",
               dict: "a mapping"}


def _is_kind(value, kind) -> bool:
    """``value`` is of ``kind``: int and float never accept a bool, float accepts an int,
    list accepts a tuple, str accepts a path."""
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, (list, tuple))
    if kind is str:
        return isinstance(value, (str, os.PathLike))
    return isinstance(value, kind)


@dataclass(frozen=True)
class Param:
    """A declared plugin parameter, checked when the plugin is built (so a suite fails at
    load, naming the value and what is allowed, not when a cell runs).

    ``kind``: int, float (ints accepted), bool, str, list or dict, or a tuple of them;
    ``low``/``high``: an inclusive range of a number, or of every item of a list;
    ``null``: None is allowed; ``items``: the kind of a list's items; ``nonempty``: a list
    needs at least one item."""

    kind: Any
    low: Optional[float] = None
    high: Optional[float] = None
    null: bool = False
    items: Any = None
    nonempty: bool = False

    def _kinds(self) -> tuple:
        return self.kind if isinstance(self.kind, tuple) else (self.kind,)

    def describe(self) -> str:
        """What is allowed, e.g. "an integer >= 1 or null", "a non-empty list, each item a number"."""
        if self.items is not None:
            item = Param(self.items, self.low, self.high).describe()
            text = f"{'a non-empty list' if self.nonempty else 'a list'}, each item {item}"
        else:
            text = " or ".join(_KIND_NAMES.get(k, getattr(k, "__name__", str(k))) for k in self._kinds())
            if self.low is not None and self.high is not None:
                text += f" in [{self.low:g}, {self.high:g}]"
            elif self.low is not None:
                text += f" >= {self.low:g}"
            elif self.high is not None:
                text += f" <= {self.high:g}"
        return text + (" or null" if self.null else "")

    def _number_ok(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return True
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def accepts(self, value) -> bool:
        if value is None:
            return self.null
        if not any(_is_kind(value, k) for k in self._kinds()):
            return False
        if self.items is not None:
            items = Param(self.items, self.low, self.high)
            return (not self.nonempty or len(value) > 0) and all(items.accepts(v) for v in value)
        return self._number_ok(value)


class Plugin(abc.ABC):
    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    defaults: ClassVar[dict] = {}
    choices: ClassVar[dict] = {}  # parameter -> allowed values, checked on construction
    # parameter -> Param (or a tuple (kind(s), low, high)), checked on construction
    types: ClassVar[dict] = {}

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.defaults)
        if unknown:
            key = sorted(unknown)[0]
            raise AmrbenchError(f"{self.kind} {self.name!r}: unknown parameter {key!r}{did_you_mean(key, self.defaults)}")
        self.params = {**self.defaults, **params}
        for key, allowed in self.choices.items():
            if self.params.get(key) not in allowed:
                raise AmrbenchError(f"{self.kind} {self.name!r}: {key}={self.params.get(key)!r} is not allowed"
                                    f"{did_you_mean(str(self.params.get(key)), [str(a) for a in allowed])}")
        self._check_types()

    def _check_types(self) -> None:
        """Each declared parameter's value against its :class:`Param`."""
        for key, spec in self.types.items():
            spec = spec if isinstance(spec, Param) else Param(*spec)
            value = self.params.get(key)
            if not spec.accepts(value):
                raise AmrbenchError(f"{self.kind} {self.name!r}: parameter {key!r} must be {spec.describe()}, "
                                    f"got {value!r}")

    @classmethod
    def work_estimate(cls, cell: dict, n_classes: int, n_train: int):
        """For cost estimates (``amrbench.cost``) of a method whose computation is not a
        training run: an object with ``net`` (the model it runs), ``iteration()`` and
        ``total()`` (forward passes of one signal through ``net``, per iteration and in
        all). None (the default): the cost model times it as a training run."""
        return None

    @classmethod
    def description(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


class AMRNet(nn.Module):
    """Base of every model network: ``embed`` gives the penultimate features (N, D),
    ``head`` maps them to logits, ``last_conv`` is the module Grad-CAM hooks (None for
    models without convolutions).

    Set ``last_conv`` with ``object.__setattr__(self, "last_conv", module)``: a plain
    ``self.last_conv = module`` would register the module a second time (duplicating its
    weights in ``state_dict``) and be shadowed by this class attribute."""

    last_conv: Optional[nn.Module] = None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class Model(Plugin):
    """A classifier architecture. ``input_format`` names the transform the harness applies
    to (N, 2, L) I/Q before the network sees it (see ``amrbench.transforms``)."""

    kind = "model"
    input_format: ClassVar[str] = "iq"

    @abc.abstractmethod
    def build(self, num_classes: int, length: int) -> AMRNet:
        """A fresh network for ``num_classes`` classes and signals of ``length`` samples."""
        raise NotImplementedError


class Dataset(Plugin):
    """Produces one SignalSet (all splits together); the harness filters SNR and splits.
    ``snr`` is passed so file loaders can skip what will be filtered out anyway."""

    kind = "dataset"
    #: The class names when the code fixes them (not a parameter), so the cost model can size the data unloaded.
    classes: ClassVar[Optional[list]] = None
    #: What the last ``load`` found about the data (layout, conversions); ``amrbench datasets info`` prints them.
    notes: Sequence[str] = ()

    @abc.abstractmethod
    def load(self, seed: int, snr: Optional[tuple] = None) -> SignalSet:
        """The whole set for ``seed`` (SNR outside ``snr`` may be left out)."""
        raise NotImplementedError

    def fingerprint(self) -> Optional[dict]:
        """What identifies the data beyond ``params``, folded into cell keys: None when the
        parameters decide the data (generators); a file loader returns its file's content
        fingerprint (``amrbench.data.fingerprint``), so a changed file gives new cells."""
        return None

    def snr_values(self, snr: Optional[tuple] = None) -> Optional[list]:
        """The SNR grid in dB (within ``snr`` = [low, high] when given) when the parameters
        alone tell it, without loading; None when only loading can tell (files)."""
        return None

    def cache_path(self, seed: int, snr: Optional[tuple] = None) -> Optional[os.PathLike]:
        """The file this dataset caches its signals in for ``seed`` and ``snr`` (``datasets
        info`` shows it); None when it keeps no single file of its own."""
        return None


class Selector(Plugin):
    """Coreset selection. ``needs`` lists the shared resources it reads from ``ctx``
    (e.g. "dynamics"), so the harness can compute them once and share them."""

    kind = "selector"
    needs: ClassVar[tuple] = ()
    #: Keeps exactly ``Budget.per_class`` signals of each class (the select protocol's
    #: default); a selector that spends the budget across classes sets it False.
    class_balanced: ClassVar[bool] = True

    @abc.abstractmethod
    def select(self, ctx: "Context", train: SignalSet, budget: Budget) -> Selection:
        """The training signals to keep within ``budget``."""
        raise NotImplementedError


class Condenser(Plugin):
    """Dataset condensation: a small synthetic set of ``spc`` signals per class.

    After ``condense`` a condenser may leave what it measured on itself (``history``,
    ``lr``, ``seconds``, ``cpu_seconds``, ``convergence``, ``details``); the protocol stores each in the
    condensed artifact, and the defaults below stand for "not measured"."""

    kind = "condenser"
    #: Shared resources it reads from ``ctx`` (as ``Selector.needs``) unless ``needs_for`` says otherwise.
    needs: ClassVar[tuple] = ()
    #: Its matching network is trained while it condenses (gradient matching): the cost model counts that.
    trainable_net: ClassVar[bool] = False
    #: The matching loss per iteration of the last ``condense`` (empty: no iterations).
    history: Optional[list] = None
    #: The learning rate the last ``condense`` used on the synthetic signals (None: none).
    lr: Optional[float] = None
    #: Seconds the last ``condense`` spent iterating (None: the protocol's own wall time).
    seconds: Optional[float] = None
    #: CPU seconds of the same iterations (``Stopwatch.cpu_seconds``; None: not measured).
    cpu_seconds: Optional[float] = None
    #: Convergence summary of the last ``condense`` (None: not measured).
    convergence: Optional[dict] = None
    #: Method-specific figures of the last ``condense``, stored with the condensed set (None: none).
    details: Optional[dict] = None

    @abc.abstractmethod
    def condense(self, ctx: "Context", train: SignalSet, spc: int) -> SignalSet:
        """``spc`` synthetic signals per class, with real labels."""
        raise NotImplementedError

    @classmethod
    def needs_for(cls, registry, params: dict) -> list:
        """The shared resources a condenser of these parameters reads (default: ``needs``)."""
        return list(cls.needs)

    @classmethod
    def reference_loops(cls, spc: int) -> tuple:
        """(outer matching steps, inner training epochs) of one iteration at ``spc`` for the
        cost model when ``trainable_net`` and no ``loops`` parameter say otherwise."""
        return (1, 1)

    def net_name(self, ctx: "Context") -> Optional[str]:
        """The model whose network it condenses with (None: no network of its own; default:
        the cell's source model)."""
        return ctx.cell["model"]["source"]


class Compressor(Plugin):
    """A signal codec with several rate levels, fitted on the training split."""

    kind = "compressor"
    #: ``encode`` samples: the protocol then repeats each reconstruction and reports mean and std.
    stochastic: bool = False
    #: What fitting recorded (training losses), stored JSON-safe with the fitted artifact (None: nothing).
    history: Any = None
    #: Where ``encode``/``decode`` run; the harness sets it to the cell's device before ``set_state``.
    device: torch.device = torch.device("cpu")

    @abc.abstractmethod
    def fit(self, ctx: "Context", train: SignalSet) -> None:
        """Learn the codec from ``train``."""
        raise NotImplementedError

    @abc.abstractmethod
    def levels(self) -> list:
        """The rate levels ``encode`` and ``decode`` accept, in table order."""
        raise NotImplementedError

    @abc.abstractmethod
    def encode(self, x: torch.Tensor, level) -> Any:
        """The code of the signals ``x`` at ``level``."""
        raise NotImplementedError

    @abc.abstractmethod
    def decode(self, code: Any, level) -> torch.Tensor:
        """The signals a code of ``level`` reconstructs."""
        raise NotImplementedError

    @abc.abstractmethod
    def bits(self, level, length: int) -> float:
        """Bits one signal of ``length`` samples costs at ``level``."""
        raise NotImplementedError

    @classmethod
    def fit_runs(cls, params: dict) -> float:
        """Training runs one fit does, in units of one run of its network: the cost
        model scales a fit's estimate by it (1 unless a compressor trains several)."""
        return 1.0

    def get_state(self) -> Optional[dict]:
        """The fitted codec as plain data (tensors, numbers, strings in dicts and lists) for
        the artifact cache; None keeps the fitted object itself, in memory only."""
        return None

    def set_state(self, state: dict) -> None:
        """Restore what ``get_state`` returned; a compressor returning a state implements it."""
        raise AmrbenchError(f"compressor {self.name!r} returns a state from get_state but does not implement "
                            f"set_state; implement set_state(state) to restore it")

    def level_label(self, level) -> str:
        """The table's column label of ``level``."""
        return str(level)

    def alphabet(self, level) -> Optional[int]:
        """The symbol alphabet size of the level's code (None: a continuous code)."""
        return None

    def symbols(self, code: Any, level) -> Optional[torch.Tensor]:
        """The discrete symbols of a code, for usage statistics: the code itself when it is an
        integer tensor, else None."""
        if isinstance(code, torch.Tensor) and not code.is_floating_point():
            return code
        return None


class Explainer(Plugin):
    kind = "explainer"
    #: Which implementation computes the attributions ("own" or "captum"), recorded with the metrics.
    backend: str = "own"
    #: Per-step objective of the last ``explain`` call (None: no optimisation); the protocol keeps each chunk's.
    history: Optional[list] = None

    @abc.abstractmethod
    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Class activation vectors (N, L) in [0, 1] for the model's (transformed) input."""
        raise NotImplementedError


class Protocol(Plugin):
    """What a cell measures. ``defaults`` are the keys allowed in a suite's ``settings:``;
    ``method_kind`` is the plugin kind its ``methods:`` name; ``budget_axis`` is
    "rates", "spc" or None.

    Declarations the suite checks at load: ``metrics``, the names of the metrics a record
    holds (regular expressions for families such as ``accuracy_L\\w+``; empty = not
    declared, a table may name any metric); ``train_settings``, the settings that are
    training-setting overrides (e.g. ``scoring``); ``param_overrides``, the settings whose
    keys override the parameters of the suite's methods; ``optional_settings``, the keys
    of ``defaults`` that enter a cell's settings (and so its key) only when a suite writes
    them, so adding one leaves the keys of every suite without it unchanged."""

    kind = "protocol"
    optional_settings: ClassVar[tuple] = ()
    method_kind: ClassVar[str] = ""
    budget_axis: ClassVar[Optional[str]] = None
    metrics: ClassVar[tuple] = ()
    train_settings: ClassVar[tuple] = ()
    param_overrides: ClassVar[tuple] = ()
    #: Per-record flags the tables mark (dicts with ``metric``, ``when``, ``sign``, ``text``).
    table_marks: ClassVar[tuple] = ()
    #: For cost estimates: (the record metric timing the cell's own training, the model
    #: role it trains, the metric counting the signals it trained on or None for the whole
    #: training split); None: its records time no training.
    training_time: ClassVar[Optional[tuple]] = None

    @classmethod
    def cell_work(cls, cell: dict, budget_signals: int) -> float:
        """For cost estimates: the units a cell's own time scales with (default: training
        signal-epochs of its ``eval_models`` target models on its budget)."""
        repeats = cell["settings"].get("eval_models", 1)
        repeats = repeats if isinstance(repeats, int) and repeats > 0 else 1
        return budget_signals * int(cell["train"]["epochs"]) * repeats

    @classmethod
    def produces(cls, metric: str) -> bool:
        """Whether a record of this protocol can hold ``metric`` (True when undeclared);
        ``a.b`` names entry ``b`` of the mapping metric ``a`` (``per_snr.18``)."""
        names = {str(metric), str(metric).partition(".")[0]}
        return not cls.metrics or any(re.fullmatch(pattern, name) for pattern in cls.metrics for name in names)

    @abc.abstractmethod
    def run_cell(self, ctx: "Context", cell: dict) -> dict:
        """Return the cell's metrics (JSON-serialisable)."""
        raise NotImplementedError

    def needs(self, registry, cell: dict) -> list:
        """Shared resource kinds (see ``amrbench.resources``) the cell reads; executors
        compute each distinct one once, before the cells that wait on it."""
        return []


class Executor(Plugin):
    """Runs cells somewhere and yields their records as they complete."""

    kind = "executor"

    @abc.abstractmethod
    def run(self, cells: list, options: dict, notify=None) -> Iterator[dict]:
        """Yield one record per cell, in completion order; call ``notify(cell)`` when a
        cell starts. ``options`` is ``RunOptions.as_dict()`` (device, jobs, cache, ...)."""
        raise NotImplementedError


#: The base class a plugin of each kind derives from (the registry checks it).
BASES: dict = {base.kind: base for base in (Model, Dataset, Selector, Condenser, Compressor, Explainer, Protocol,
                                            Executor)}


@dataclass
class Context:
    """What a cell's code may use: its seed, device, settings, artifact cache and the
    registry. Shared resources (datasets, full-data training dynamics) come through
    ``ctx.resource`` so every cell of a grid reuses one computation."""

    seed: int
    device: torch.device
    cell: dict
    cache: Any
    registry: Any
    memo: dict = field(default_factory=dict)
    resolver: Optional[Callable] = None  # (ctx, kind, **spec) -> resource; amrbench.resources.get in a run

    def rng(self, *tags) -> np.random.Generator:
        return np.random.default_rng(derive_seed(self.seed, *tags))

    def torch_generator(self, *tags) -> torch.Generator:
        return torch.Generator().manual_seed(derive_seed(self.seed, *tags))

    def seed_torch(self, *tags) -> None:
        """Seed torch's global generator (which ``nn.Module`` initialisation and dropout
        draw from) for the step named by ``tags``, from this cell's seed."""
        seed_torch(self.seed, *tags)

    def resource(self, kind: str, **spec) -> Any:
        if self.resolver is None:
            raise AmrbenchError(f"resource {kind!r}: this context has no resolver; build it with "
                                f"amrbench.runner.make_context or pass resolver=amrbench.resources.get")
        return self.resolver(self, kind, **spec)


def derive_seed(seed: int, *tags) -> int:
    """A 63-bit seed from a base seed and tags, stable across runs and platforms."""
    import hashlib

    text = "/".join([str(int(seed))] + [str(t) for t in tags])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def seed_torch(seed: int, *tags) -> None:
    """Seed torch's global generator with ``derive_seed(seed, *tags)``: a network built
    next gets the same weights in every run, whatever ran before it in the process."""
    torch.manual_seed(derive_seed(seed, *tags))


class Stopwatch:
    """Wall and CPU seconds of a block: ``with Stopwatch() as watch: ...``, then
    ``watch.seconds`` and ``watch.cpu_seconds`` (this process's CPU time over all its
    threads). Records keep both: the wall time is what a user waited, the CPU time is
    what the cost model fits, since it does not grow when other work shares the cores."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def __enter__(self) -> "Stopwatch":
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> bool:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu
        return False

    def timings(self, name: str, digits: int = 3) -> dict:
        """``{name: wall seconds, cpu_<name>: CPU seconds}``, rounded."""
        return {name: round(self.seconds, digits), cpu_metric(name): round(self.cpu_seconds, digits)}


def copy_timings(source: dict, **fields) -> dict:
    """``metric=field``: a timing stored in an artifact or a result and its CPU twin
    (``cpu_<field>``), as a record's metrics; a twin the source lacks (an artifact stored
    before CPU times were kept) is left out, and the cost model then fits the wall time."""
    out = {}
    for metric, field in fields.items():
        for name, key in ((metric, field), (cpu_metric(metric), cpu_metric(field))):
            if isinstance(source.get(key), (int, float)):
                out[name] = round(float(source[key]), 6)
    return out


def finite_or_none(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value
