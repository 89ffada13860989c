"""What a grid will cost before it runs: CPU-hours and wall time for the cells still to
run and the shared artifacts they need.

The model is fitted on stored records' timings (every ``<results>/*/records.jsonl``):

- a training rate per (model, signal length): seconds per training signal-epoch, from
  the training times the built-in protocols record (``train_time_s``, ``eval_time_s``,
  ``classifier_train_time_s``);
- a cell costs ``k × rate(target) × signals × epochs``, where ``signals`` is the cell's
  training budget (rate × training split, spc × classes, or the whole split) and ``k``
  is fitted per (protocol, method) from stored cell times (it absorbs selection,
  evaluation and explanation work), falling back to the protocol's, then to 1;
- a shared training artifact (the scoring run of coreset selection, a fitted compressor,
  a classifier, the whole-dataset models of condensation) costs ``k × rate(model) ×
  signal-epochs`` of the training it does, ``k`` fitted per kind (per (kind, method)
  where the work depends on the method: compressors) from the artifact times records
  carry, else 1;
- a method whose computation is not a training run declares its own work
  (``Plugin.work_estimate``; a synthetic condensation, whose cost does not scale with the
  dataset: its iterations, ``lr: search`` probes and held-out scoring, in forward passes
  of its network, ``amrbench_plugins.condense.work``) × the network's forward FLOPs at
  the signal length. Seconds per such FLOP are fitted per method on the records'
  ``seconds_per_iteration``, else over every such method's records, else taken from the
  network's training rate (a training signal-epoch being ``FORWARD_TO_TRAINING``
  forward passes).

What is whose comes from the plugins' declarations: each protocol's ``training_time``
and ``cell_work``, each shared resource's ``time_metric``, ``subject`` and ``training``
(``Registry.add_resource``).

A model or signal length with no stored training time gets an analytic rate: its
forward FLOPs per signal × seconds per FLOP fitted on the stored rates, or, with no
records at all, a measured matrix-multiply rate of this machine times an efficiency.
A cell whose key is stored anywhere costs its stored time.

Every timing is read as CPU time where the record has it (``cpu_time_s`` beside a
cell's ``wall_time_s``, ``cpu_<metric>`` beside each timing metric, taken with
``amrbench.api.Stopwatch``) and ran on the CPU with one thread per cell, else as wall time
(``amrbench.basics.record_seconds``, ``metric_seconds``): a run that shared the machine
with other work has longer wall times, not longer CPU times, and would otherwise inflate
the fit.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional

from amrbench.api import AmrbenchError, Context
from amrbench.basics import metric_seconds, record_seconds
from amrbench.cache import stable_hash

CONFIRM_CPU_HOURS = 24.0
# Share of this machine's matrix-multiply rate that training small networks reaches
# (batches of tens of short signals, one thread); used only with no stored records.
TRAINING_EFFICIENCY = 0.05
FORWARD_TO_TRAINING = 3.0  # a training step ~ forward + backward (two forwards' worth)



@dataclass(frozen=True)
class DataShape:
    """What the cost of training on a dataset spec depends on."""
    n_train: int
    n_classes: int
    length: int


@dataclass
class Estimate:
    """The estimated cost of cells (and the artifacts they need)."""
    cells: int = 0
    cells_s: float = 0.0
    artifacts: int = 0
    artifacts_s: float = 0.0
    stored: int = 0  # cells costed by a stored record of the same key
    cached: int = 0  # shared artifacts already in the artifact cache (cost nothing)
    longest_cell_s: float = 0.0
    longest_artifact_s: float = 0.0
    unknown: list = field(default_factory=list)  # dataset labels whose size is unknown before loading

    @property
    def cpu_hours(self) -> float:
        return (self.cells_s + self.artifacts_s) / 3600.0

    def wall_s(self, jobs: int) -> float:
        """Wall time with ``jobs`` workers: artifacts first, then the cells."""
        jobs = max(1, int(jobs))
        first = max(self.artifacts_s / jobs, self.longest_artifact_s) if self.artifacts else 0.0
        return first + (max(self.cells_s / jobs, self.longest_cell_s) if self.cells else 0.0)

    def summary(self, jobs: int) -> str:
        text = (f"estimated {format_hours(self.cpu_hours)} CPU-hours for {self.cells} cell(s) and {self.artifacts} "
                f"shared artifact(s), about {format_duration(self.wall_s(jobs))} wall with --jobs {jobs}")
        if self.cached:
            text += f"; {self.cached} more shared artifact(s) already in the artifact cache, not counted"
        if self.unknown:
            text += f" (not counting datasets of unknown size: {', '.join(self.unknown)})"
        return text


def format_hours(hours: float) -> str:
    return f"{hours:.3f}" if hours < 0.1 else f"{hours:.2f}" if hours < 10 else f"{hours:,.0f}"


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# --------------------------------------------------------------------------- shapes
def _dataset_key(spec: dict) -> str:
    from amrbench.suite import dataset_config

    return stable_hash(dataset_config(spec), 24)


_SHAPES: dict = {}


def data_shape(registry, spec: dict) -> Optional[DataShape]:
    """The training-split size, class count and signal length of a dataset spec: from
    the plugin's parameters when they tell (``per_class_per_snr``, ``classes``, SNR grid,
    ``length``), else by loading a generator's output (cached on disk); None for a file
    whose size only reading it could tell."""
    key = _dataset_key(spec)
    if key not in _SHAPES:
        _SHAPES[key] = _shape_from_params(registry, spec) or _shape_by_loading(registry, spec)
    return _SHAPES[key]


def _shape_from_params(registry, spec: dict) -> Optional[DataShape]:
    plugin = registry.create("dataset", spec["name"], spec.get("params"))
    params = plugin.params
    classes = params.get("classes") or plugin.classes
    snrs = plugin.snr_values(tuple(spec["snr"]) if spec.get("snr") else None)
    per, length = params.get("per_class_per_snr"), params.get("length")
    if not (classes and snrs and isinstance(per, int) and isinstance(length, int)):
        return None
    total = per * len(classes) * len(snrs)
    test = int(round(total * float(spec.get("test_fraction", 0.2))))
    return DataShape(total - test, len(classes), length)


def _shape_by_loading(registry, spec: dict) -> Optional[DataShape]:
    from amrbench.resources import load_splits

    plugin = registry.create("dataset", spec["name"], spec.get("params"))
    if plugin.fingerprint() is not None:
        return None
    train, _ = load_splits(registry, spec)
    return DataShape(len(train), train.num_classes, train.length)


# --------------------------------------------------------------------------- FLOPs
@lru_cache(maxsize=None)
def forward_flops(model_name: str, n_classes: int, length: int) -> float:
    """Forward multiply-adds × 2 of one signal through a model, counted by hooks on its
    convolution, linear and recurrent layers (weights × output positions; recurrent:
    weights × time steps). torch's FlopCounterMode gives the same order but costs
    seconds on first use, too slow for a listing."""
    import torch
    from torch import nn

    from amrbench import transforms
    from amrbench.registry import default_registry

    model = default_registry().create("model", model_name)
    net = model.build(n_classes, length).eval()
    total = [0.0]

    def count(module, inputs, output):
        out = output[0] if isinstance(output, tuple) else output
        weights = sum(p.numel() for name, p in module.named_parameters(recurse=False) if "weight" in name)
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            total[0] += 2.0 * weights * out.numel() / module.out_channels
        elif isinstance(module, nn.Linear):
            total[0] += 2.0 * weights * out.numel() / module.out_features
        elif isinstance(module, nn.RNNBase):
            steps = out.shape[1] if module.batch_first else out.shape[0]
            total[0] += 2.0 * weights * steps

    layers = (nn.Conv1d, nn.Conv2d, nn.Linear, nn.RNNBase)
    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, layers)]
    try:
        with torch.no_grad():
            net(transforms.apply(model.input_format, torch.zeros(1, 2, length)))
    finally:
        for hook in hooks:
            hook.remove()
    return max(total[0], 2.0 * sum(p.numel() for p in net.parameters()))


@lru_cache(maxsize=1)
def machine_flops_per_second() -> float:
    """This machine's single-thread float32 matrix-multiply rate, measured once."""
    import torch

    n = 256
    a, b = torch.randn(n, n), torch.randn(n, n)
    with _one_thread():
        a @ b
        start, repeats = time.perf_counter(), 20
        for _ in range(repeats):
            a @ b
        seconds = time.perf_counter() - start
    return 2 * n ** 3 * repeats / max(seconds, 1e-9)


class _one_thread:
    def __enter__(self):
        import torch

        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.threads)


# --------------------------------------------------------------------------- model
def _budget_signals(cell: dict, shape: DataShape) -> int:
    budget = cell.get("budget") or {}
    if budget.get("spc") is not None:
        return int(budget["spc"]) * shape.n_classes
    if budget.get("rate") is not None:
        return max(1, int(round(float(budget["rate"]) * shape.n_train)))
    if budget.get("count") is not None:
        return int(budget["count"]) * shape.n_classes
    return shape.n_train


def full_data_epochs(cell: dict, registry) -> int:
    """Epochs of a cell's full-data training runs (a scoring run, a classifier): its
    protocol's first training-setting override that is set (``train_settings``, e.g.
    ``scoring``), else the suite's ``train``."""
    settings = cell["settings"]
    overrides = {}
    for key in registry.get("protocol", cell["protocol"]).train_settings:
        if settings.get(key):
            overrides = settings[key]
            break
    return int(overrides.get("epochs", cell["train"]["epochs"]))


def _ratio(pairs: list) -> Optional[float]:
    """sum(seconds) / sum(units) over (units, seconds) pairs with positive units."""
    pairs = [(u, s) for u, s in pairs if u and u > 0 and s is not None and s >= 0]
    total = sum(u for u, _ in pairs)
    return sum(s for _, s in pairs) / total if total > 0 else None


class CostModel:
    """Training rates and per-(protocol, method) factors fitted on stored records."""

    def __init__(self, records: Iterable[dict], registry=None):
        from amrbench.registry import default_registry

        self.registry = registry or default_registry()
        ok = [r for r in records if r.get("status") == "ok" and isinstance(r.get("config"), dict)
              and isinstance(r.get("metrics"), dict)]
        self.stored = {}
        for record in ok:
            seconds = record_seconds(record)
            if seconds is not None:
                self.stored.setdefault(record["key"], seconds)
        self.records = [r for r in ok if self._shape(r["config"]) is not None]
        self.rates = self._fit_rates()
        self.cell_factors = self._fit_cell_factors()
        self.artifact_factors = self._fit_artifact_factors()
        self.condensation_factors = self._fit_condensation_factors()

    @classmethod
    def from_results(cls, roots: Iterable, registry=None) -> "CostModel":
        """Fitted on every ``<root>/*/records.jsonl`` of the given folders."""
        from amrbench.store import RecordStore

        records, seen = [], set()
        for root in roots:
            for path in sorted(Path(root).glob("*/records.jsonl")):
                if path.resolve() in seen:
                    continue
                seen.add(path.resolve())
                try:
                    records += RecordStore(path).read()
                except AmrbenchError:
                    continue  # a damaged store says so when it is used; the estimate does without it
        return cls(records, registry)

    # ----------------------------------------------------------------- fitting
    def _shape(self, config: dict) -> Optional[DataShape]:
        try:
            return data_shape(self.registry, config["dataset"])
        except (AmrbenchError, KeyError, TypeError, ValueError):
            return None

    def _training_observations(self, record: dict) -> Optional[tuple]:
        """(model, length, signal-epochs, seconds) of the training a record timed."""
        config, metrics = record["config"], record["metrics"]
        spec = self._protocol_class(config).training_time
        seconds = metric_seconds(record, spec[0]) if spec is not None else None
        if seconds is None:
            return None
        shape = self._shape(config)
        if spec[2] is not None:
            signals = metrics.get(spec[2])
            work = signals * int(config["train"]["epochs"]) * (config["settings"].get("eval_models") or 1) \
                if isinstance(signals, int) else None
        else:
            work = shape.n_train * full_data_epochs(config, self.registry)
        return (config["protocol"], config["model"][spec[1]], shape.length, work, seconds) \
            if work else None

    def _fit_rates(self) -> dict:
        grouped = defaultdict(dict)
        for record in self.records:
            obs = self._training_observations(record)
            if obs:  # records sharing one artifact repeat its time: count it once
                grouped[obs[:3]][obs[3:]] = True
                grouped[obs[1:3]][obs[3:]] = True
        return {key: _ratio(list(pairs)) for key, pairs in grouped.items() if _ratio(list(pairs))}

    def rate(self, model: str, shape: DataShape, protocol: Optional[str] = None) -> float:
        """Seconds per training signal-epoch of ``model`` at this signal length: as the
        protocol's records timed it, else any protocol's, else from its FLOPs."""
        stored = self.rates.get((protocol, model, shape.length)) or self.rates.get((model, shape.length))
        return stored if stored is not None else forward_flops(model, shape.n_classes, shape.length) * \
            self.seconds_per_flop()

    def seconds_per_flop(self) -> float:
        if not hasattr(self, "_seconds_per_flop"):
            pairs = []
            for key, rate in self.rates.items():
                if len(key) != 2:
                    continue
                model, length = key
                try:
                    pairs.append((forward_flops(model, 10, length), rate))
                except Exception:  # a model that cannot build at this length tells nothing
                    continue
            fitted = _ratio(pairs)
            self._seconds_per_flop = fitted if fitted else \
                FORWARD_TO_TRAINING / (machine_flops_per_second() * TRAINING_EFFICIENCY)
        return self._seconds_per_flop

    def _fit_cell_factors(self) -> dict:
        pairs = defaultdict(list)
        for record in self.records:
            config, seconds = record["config"], record_seconds(record)
            if seconds is None:
                continue
            shape = self._shape(config)
            base = self.rate(config["model"]["target"], shape, config["protocol"]) * self._cell_work(config, shape)
            for key in ((config["protocol"], config["method"]["name"]), (config["protocol"],)):
                pairs[key].append((base, seconds))
        return {key: _ratio(p) for key, p in pairs.items() if _ratio(p) is not None}

    def _fit_artifact_factors(self) -> dict:
        pairs = defaultdict(dict)
        for record in self.records:
            config = record["config"]
            shape = self._shape(config)
            for kind, resource in self.registry.resources.items():
                seconds = metric_seconds(record, resource.time_metric) if resource.time_metric else None
                if seconds is None or kind not in self._needs(config) or \
                        self._method_work(config, kind, shape) is not None:
                    continue
                base = self._training_seconds(config, kind, shape)
                by_method = resource.subject.startswith("method")
                for key in ((kind, config["method"]["name"]), (kind,)) if by_method else ((kind,),):
                    pairs[key][(self._artifact_id(config, kind), seconds)] = base
        return {key: _ratio([(b, s) for (_, s), b in p.items()]) for key, p in pairs.items()
                if _ratio([(b, s) for (_, s), b in p.items()]) is not None}

    def _fit_condensation_factors(self) -> dict:
        """Seconds per forward FLOP of synthetic condensation, per condenser and over all
        of them (key None): stored ``seconds_per_iteration`` over one iteration's FLOPs,
        each condensed set counted once."""
        pairs = defaultdict(dict)
        for record in self.records:
            config, seconds = record["config"], metric_seconds(record, "seconds_per_iteration")
            if seconds is None:
                continue
            shape = self._shape(config)
            for kind in self._needs(config):
                work = self._method_work(config, kind, shape)
                flops = self._iteration_flops(work, shape) if work is not None else 0.0
                if flops:
                    for key in (config["method"]["name"], None):
                        pairs[key][self._artifact_id(config, kind)] = (flops, float(seconds))
        return {key: _ratio(list(p.values())) for key, p in pairs.items() if _ratio(list(p.values()))}

    @staticmethod
    def _iteration_flops(work, shape: DataShape) -> float:
        try:
            return work.iteration() * forward_flops(work.net, shape.n_classes, shape.length)
        except Exception:  # a network that cannot build at this shape tells nothing
            return 0.0

    # ----------------------------------------------------------------- what plugins declare
    def artifact_times(self) -> dict:
        """Shared-resource kind -> the record metric holding its compute time."""
        return {kind: r.time_metric for kind, r in self.registry.resources.items() if r.time_metric}

    def _protocol_class(self, config: dict):
        return self.registry.get("protocol", config["protocol"])

    def _cell_work(self, config: dict, shape: DataShape) -> float:
        return self._protocol_class(config).cell_work(config, _budget_signals(config, shape))

    def _method_work(self, config: dict, kind: str, shape: DataShape):
        """The method's own work model (``Plugin.work_estimate``) for a shared resource
        named by the method, else None (timed as a training run)."""
        resource = self.registry.resources.get(kind)
        if resource is None or not resource.subject.startswith("method"):
            return None
        try:
            cls = self.registry.get(self._protocol_class(config).method_kind, config["method"]["name"])
            return cls.work_estimate(config, shape.n_classes, shape.n_train)
        except (AmrbenchError, KeyError, TypeError, ValueError):
            return None

    # ----------------------------------------------------------------- estimating
    def _needs(self, config: dict) -> list:
        try:
            protocol = self.registry.create("protocol", config["protocol"], config["settings"])
            return list(protocol.needs(self.registry, config))
        except Exception:
            return []

    def _artifact_id(self, config: dict, kind: str) -> str:
        from amrbench import resources

        try:
            ctx = Context(seed=config["seed"], device=None, cell=config, cache=None, registry=self.registry,
                          resolver=resources.get)
            return kind + ":" + stable_hash(resources.artifact_config(ctx, kind), 24)
        except Exception:
            return kind + ":" + stable_hash(config, 24)

    def cell_seconds(self, cell: dict, shape: DataShape) -> float:
        if cell["key"] in self.stored:
            return float(self.stored[cell["key"]])
        config = cell["config"]
        factor = self.cell_factors.get((config["protocol"], config["method"]["name"]),
                                       self.cell_factors.get((config["protocol"],), 1.0))
        return factor * self.rate(config["model"]["target"], shape, config["protocol"]) * self._cell_work(config, shape)

    def _training_seconds(self, config: dict, kind: str, shape: DataShape) -> float:
        resource = self.registry.resources.get(kind)
        if resource is not None and resource.training is not None:
            role, work = resource.training(config, shape.n_train, self.registry)
        else:
            role, work = "source", shape.n_train * full_data_epochs(config, self.registry)
        return self.rate(config["model"][role], shape, config["protocol"]) * work

    def artifact_seconds(self, config: dict, kind: str, shape: DataShape) -> float:
        work = self._method_work(config, kind, shape)
        if work is not None:
            return self.method_seconds(config, work, shape)
        factor = self.artifact_factors.get((kind, config["method"]["name"]),
                                           self.artifact_factors.get((kind,), 1.0))
        return factor * self._training_seconds(config, kind, shape)

    def method_seconds(self, config: dict, work, shape: DataShape) -> float:
        """A method's own computation (a synthetic condensation): its forward passes
        (``work``) × the seconds per FLOP fitted for this method, else for any, else
        implied by the network's training rate."""
        flops = forward_flops(work.net, shape.n_classes, shape.length)
        per_flop = self.condensation_factors.get(config["method"]["name"], self.condensation_factors.get(None))
        if per_flop is None:
            per_flop = self.rate(work.net, shape) / (FORWARD_TO_TRAINING * flops)
        return per_flop * flops * work.total()

    def estimate(self, cells: list, skip_artifacts: Iterable = (), cached: Iterable = ()) -> Estimate:
        """The cost of running ``cells`` (expanded grid cells), artifacts included unless
        their id is in ``skip_artifacts`` or ``cached`` (``ArtifactCache.stored_ids``:
        a resumed run reads those, and the estimate counts them apart)."""
        out, seen, cached = Estimate(), set(skip_artifacts), set(cached)
        for cell in cells:
            config = cell["config"]
            shape = self._shape(config)
            if shape is None:
                label = cell["labels"].get("dataset", config["dataset"]["name"])
                out.unknown += [label] if label not in out.unknown else []
                continue
            seconds = self.cell_seconds(cell, shape)
            out.cells += 1
            out.stored += cell["key"] in self.stored
            out.cells_s += seconds
            out.longest_cell_s = max(out.longest_cell_s, seconds)
            for kind in self._needs(config):
                ident = self._artifact_id(config, kind)
                if ident in seen:
                    continue
                seen.add(ident)
                if ident in cached:
                    out.cached += 1
                    continue
                seconds = self.artifact_seconds(config, kind, shape)
                out.artifacts += 1
                out.artifacts_s += seconds
                out.longest_artifact_s = max(out.longest_artifact_s, seconds)
        return out


def default_model(extra_roots: Iterable = ()) -> CostModel:
    """Fitted on the records under the results root, the given folders, and the
    checkout's committed ``results/`` when amrbench runs from one."""
    from amrbench.shipped import results_root

    checkout = Path(__file__).resolve().parent.parent / "results"
    roots = [results_root(), *extra_roots] + ([checkout] if checkout.is_dir() else [])
    return CostModel.from_results(roots)


def confirm_cost(estimate: Estimate, jobs: int, executor: str, yes: bool, suite_name: str) -> None:
    """Refuse a local run estimated at more than ``CONFIRM_CPU_HOURS`` unless confirmed."""
    if yes or executor != "local" or estimate.cpu_hours <= CONFIRM_CPU_HOURS:
        return
    raise AmrbenchError(f"{suite_name}: {estimate.summary(jobs)}, over the {CONFIRM_CPU_HOURS:g} CPU-hour limit of "
                        f"an unconfirmed local run; rerun with --yes to run it, or --dry-run to see the grid")


# --------------------------------------------------------------------------- listing
def suite_costs(model: Optional[CostModel] = None) -> list:
    """One row per shipped suite and profile: name, file, profile, cells, CPU-hours and
    how the figure was got (measured: every cell has a stored time; the shared
    artifacts, whose time records do not all carry, are estimated either way)."""
    from amrbench.suite import expand, load_suite, shipped_suites

    model = model or default_model()
    rows = []
    for stem, path in shipped_suites().items():
        try:
            base = load_suite(path)
        except AmrbenchError as exc:
            rows.append([stem, f"suites/{path.name}", "-", "-", f"cannot load: {exc}"])
            continue
        for profile in [None, *_profile_names(path)]:
            suite = base if profile is None else load_suite(path, profile=profile)
            cells = expand(suite, model.registry)
            estimate = model.estimate(cells)
            how = "measured" if estimate.stored == estimate.cells and estimate.cells else \
                "estimated" if not estimate.stored else f"{estimate.stored}/{estimate.cells} cells measured"
            rows.append([suite.name, f"suites/{path.name}", profile or "(default)", len(cells),
                         format_hours(estimate.cpu_hours), how])
    return rows


def _profile_names(path: Path) -> list:
    import yaml

    from amrbench.suite import read_suite_text

    data = yaml.safe_load(read_suite_text(path))
    profiles = data.get("profiles") if isinstance(data, dict) else None
    return list(profiles) if isinstance(profiles, dict) else []


def suites_table(model: Optional[CostModel] = None) -> str:
    from tabulate import tabulate

    return tabulate(suite_costs(model), headers=["suite", "file", "profile", "cells", "CPU-hours", "cost from"],
                    tablefmt="simple")
