"""YAML suites: loading with line numbers, validation, profiles and grid expansion.

A suite names its protocol, datasets, methods, budget axis (``rates:`` or ``spc:``),
models (``source`` -> ``target`` pairs), seeds, training settings and table layout.
Unknown keys are errors with "did you mean"; every error names ``file:line``.
"""
from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from amrbench.api import AmrbenchError, Budget, did_you_mean
from amrbench.cache import stable_hash
from amrbench.train import TRAIN_DEFAULTS, validate_train_settings

TOP_KEYS = {
    "name": "suite name (results go to results/<name>/)",
    "description": "free text",
    "version": "suite version, folded into every cell key",
    "protocol": "what a cell measures (a protocol plugin)",
    "datasets": "list of dataset specs",
    "methods": "list of method specs",
    "rates": "budget axis: fractions of the training set in (0, 1]",
    "spc": "budget axis: signals per class",
    "models": "list of model names or {source, target} pairs",
    "seeds": "list of integer seeds",
    "repeats": "number of seeds 0..repeats-1",
    "train": "training settings",
    "settings": "protocol settings",
    "table": "table layout",
    "profiles": "named overrides, chosen with --profile",
}
DATASET_KEYS = {"name", "params", "snr", "label", "test_fraction", "seed", "standardize"}
DATASET_DEFAULTS = {"params": {}, "snr": None, "test_fraction": 0.2, "seed": 0}  # the data-deciding keys
METHOD_KEYS = {"name", "params", "label"}
MODEL_KEYS = {"source", "target", "name", "label"}
TABLE_DEFAULTS = {
    "rows": "method",
    "columns": "budget",
    "group": ["dataset", "model"],
    "metric": "accuracy",
    "scale": 100.0,
    "format": "{mean:.2f}±{std:.2f}",
    "higher_is_better": True,
    "avg": True,
    "title": None,
    "caption": None,
    "pool": None,
    "extra_rows": [],
    "metric_labels": None,
}
EXTRA_ROW_KEYS = {"label", "metric", "pool", "scale", "format", "position"}
AXES = ("dataset", "method", "budget", "model", "seed", "metric")


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads 1e-3 (no dot) as a float, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


@dataclass
class Suite:
    name: str
    path: str
    protocol: str
    datasets: list
    methods: list
    budgets: list
    models: list
    seeds: list
    train: dict
    settings: dict
    table: dict
    version: Any = None
    description: str = ""
    profile: Optional[str] = None
    raw: dict = field(default_factory=dict)


class SuiteSource:
    """The parsed YAML and a map from key paths to line numbers, for error messages."""

    def __init__(self, text: str, filename: str):
        self.filename = filename
        self.lines: dict = {}
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{filename}:{mark.line + 1}" if mark else filename
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise AmrbenchError(f"{where}: malformed YAML: {problem}; fix the syntax") from None
        finally:
            loader.dispose()
        self.data = self._build(loader, node, ()) if node is not None else {}

    def _build(self, loader, node, path):
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node)
                out[key] = self._build(loader, value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._build(loader, item, path + (i,)) for i, item in enumerate(node.value)]
        return loader.construct_object(node)

    def where(self, path) -> str:
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return f"{self.filename}:{self.lines.get(path, 1)}"

    def error(self, path, message: str) -> AmrbenchError:
        dotted = ".".join(str(p) for p in path)
        return AmrbenchError(f"{self.where(path)}: {dotted + ': ' if dotted else ''}{message}")


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_suite(path, profile: Optional[str] = None, seeds: Optional[list] = None, registry=None) -> Suite:
    path = Path(path)
    if not path.is_file():
        raise AmrbenchError(f"{path}: suite file not found; pass a YAML file such as suites/quick.yaml")
    src = SuiteSource(path.read_text(), str(path))
    if not isinstance(src.data, dict):
        raise src.error((), "a suite must be a YAML mapping of keys such as protocol, datasets, methods")
    data = dict(src.data)
    for key in data:
        if key not in TOP_KEYS:
            raise src.error((key,), f"unknown key{did_you_mean(key, TOP_KEYS)}")
    profiles = data.pop("profiles", None) or {}
    if profile is not None:
        if profile not in profiles:
            raise AmrbenchError(f"{path}: unknown profile {profile!r}{did_you_mean(profile, profiles)}")
        override = profiles[profile] or {}
        for key in override:
            if key not in TOP_KEYS or key == "profiles":
                raise src.error(("profiles", profile, key), f"unknown key{did_you_mean(key, set(TOP_KEYS) - {'profiles'})}")
        data = deep_merge(data, override)
    if seeds is not None:
        data.pop("repeats", None)
        data["seeds"] = list(seeds)
    return _validate(src, data, path, profile, registry)


def _require_list(src, data, key):
    value = data.get(key)
    if not isinstance(value, list) or not value:
        raise src.error((key,), f"must be a non-empty list")
    return value


def _validate(src: SuiteSource, data: dict, path: Path, profile, registry) -> Suite:
    from amrbench.registry import default_registry

    registry = registry or default_registry()
    protocol_name = data.get("protocol", "select")
    try:
        protocol_cls = registry.get("protocol", protocol_name)
    except AmrbenchError as exc:
        raise src.error(("protocol",), str(exc)) from None
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise src.error(("settings",), "must be a mapping")
    for key in settings:
        if key not in protocol_cls.defaults:
            raise src.error(("settings", key), f"unknown setting of protocol {protocol_name!r}{did_you_mean(key, protocol_cls.defaults)}")
    datasets = [_dataset_spec(src, registry, i, d) for i, d in enumerate(_require_list(src, data, "datasets"))]
    methods = [_method_spec(src, registry, protocol_cls.method_kind, i, m)
               for i, m in enumerate(_require_list(src, data, "methods"))]
    models = [_model_spec(src, registry, i, m) for i, m in enumerate(_require_list(src, data, "models"))]
    budgets = _budgets(src, data, protocol_cls)
    seeds = _seeds(src, data)
    try:
        train = validate_train_settings(data.get("train") or {})
    except AmrbenchError as exc:
        raise src.error(("train",), str(exc)) from None
    table = dict(TABLE_DEFAULTS)
    for key, value in (data.get("table") or {}).items():
        if key not in TABLE_DEFAULTS:
            raise src.error(("table", key), f"unknown key{did_you_mean(key, TABLE_DEFAULTS)}")
        table[key] = value
    for key in ("rows", "columns"):
        if table[key] not in AXES:
            raise src.error(("table", key), f"must be one of {', '.join(AXES)}")
    _validate_table_metric(src, table)
    _validate_extra_rows(src, table)
    return Suite(
        name=str(data.get("name") or path.stem), path=str(path), protocol=protocol_name,
        datasets=datasets, methods=methods, budgets=budgets, models=models, seeds=seeds,
        train=train, settings={**protocol_cls.defaults, **settings}, table=table,
        version=data.get("version"), description=str(data.get("description") or ""), profile=profile, raw=data)


def _as_spec(src, where, value, allowed):
    spec = {"name": value} if isinstance(value, str) else value
    if not isinstance(spec, dict) or "name" not in spec and "source" not in spec:
        raise src.error(where, "must be a name or a mapping with 'name'")
    for key in spec:
        if key not in allowed:
            raise src.error(where + (key,), f"unknown key{did_you_mean(key, allowed)}")
    return spec


def _validate_table_metric(src: SuiteSource, table: dict) -> None:
    """``metric`` is one name, or a list of names when ``metric`` is the rows or columns
    axis (e.g. per-layer accuracies as columns); ``metric_labels`` renames them."""
    metric, as_axis = table["metric"], "metric" in (table["rows"], table["columns"])
    if as_axis:
        if not (isinstance(metric, list) and metric and all(isinstance(m, str) for m in metric)):
            raise src.error(("table", "metric"), "with rows or columns: metric, give a list of metric names, "
                                                 "e.g. [accuracy_L0, accuracy_L1]")
        if table["pool"] or table["extra_rows"]:
            raise src.error(("table", "metric"), "a list of metrics cannot be combined with pool or extra_rows")
    elif not isinstance(metric, str):
        raise src.error(("table", "metric"), "must be one metric name; a list needs rows: metric or columns: metric")
    labels = table["metric_labels"]
    if labels is not None and not (as_axis and isinstance(labels, list) and len(labels) == len(metric)
                                   and all(isinstance(x, (str, int, float)) for x in labels)):
        raise src.error(("table", "metric_labels"), "must be a list of labels, one per entry of the metric list")


def _validate_extra_rows(src: SuiteSource, table: dict) -> None:
    if not isinstance(table["extra_rows"] or [], list):
        raise src.error(("table", "extra_rows"), "must be a list of {label, metric, ...} mappings")
    for j, row in enumerate(table["extra_rows"] or []):
        if not isinstance(row, dict) or "label" not in row or "metric" not in row:
            raise src.error(("table", "extra_rows", j), "must be a mapping with at least label and metric")
        for key in row:
            if key not in EXTRA_ROW_KEYS:
                raise src.error(("table", "extra_rows", j, key), f"unknown key{did_you_mean(key, EXTRA_ROW_KEYS)}")
        if row.get("position", "last") not in ("first", "last"):
            raise src.error(("table", "extra_rows", j, "position"), "must be first or last")


def _plugin_params(src, where, registry, kind, name, params):
    if params is not None and not isinstance(params, dict):
        raise src.error(where + ("params",), "must be a mapping")
    try:
        plugin = registry.create(kind, name, params or {})
    except AmrbenchError as exc:
        raise src.error(where, str(exc)) from None
    return plugin.params


def _dataset_spec(src, registry, i, value):
    where = ("datasets", i)
    spec = _as_spec(src, where, value, DATASET_KEYS)
    params = _plugin_params(src, where, registry, "dataset", spec["name"], spec.get("params"))
    snr = spec.get("snr")
    if snr is not None and (not isinstance(snr, list) or len(snr) != 2 or not all(isinstance(v, (int, float)) for v in snr)
                            or snr[0] > snr[1]):
        raise src.error(where + ("snr",), "must be [low, high] in dB, e.g. [10, 18]")
    test_fraction = spec.get("test_fraction", DATASET_DEFAULTS["test_fraction"])
    if not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise src.error(where + ("test_fraction",), "must be a number in (0, 1); the default 0.2 is the 4:1 split")
    data_seed = spec.get("seed", DATASET_DEFAULTS["seed"])
    if not isinstance(data_seed, int) or isinstance(data_seed, bool) or data_seed < 0:
        raise src.error(where + ("seed",), "the data seed must be a non-negative integer (default 0)")
    standardize = spec.get("standardize", False)
    if not isinstance(standardize, bool):
        raise src.error(where + ("standardize",), "must be true or false (per-channel mean/std of the training split)")
    return {"name": spec["name"], "params": params, "snr": snr, "test_fraction": float(test_fraction), "seed": data_seed,
            "standardize": standardize,
            "label": str(spec.get("label") or spec["name"] + (f" [{snr[0]}, {snr[1]}] dB" if snr else "")
                         + (" standardised" if standardize else ""))}


def _method_spec(src, registry, kind, i, value):
    where = ("methods", i)
    spec = _as_spec(src, where, value, METHOD_KEYS)
    params = _plugin_params(src, where, registry, kind, spec["name"], spec.get("params"))
    return {"name": spec["name"], "params": params, "label": str(spec.get("label") or spec["name"])}


def _model_spec(src, registry, i, value):
    where = ("models", i)
    spec = _as_spec(src, where, value, MODEL_KEYS)
    source = spec.get("source") or spec.get("name")
    target = spec.get("target") or source
    for role, name in (("source", source), ("target", target)):
        try:
            registry.get("model", name)
        except AmrbenchError as exc:
            raise src.error(where, str(exc)) from None
    label = spec.get("label") or (source if source == target else f"{source}→{target}")
    return {"source": source, "target": target, "label": str(label)}


def _budgets(src, data, protocol_cls):
    rates, spc = data.get("rates"), data.get("spc")
    if rates is not None and spc is not None:
        raise src.error(("spc",), "give either rates or spc, not both")
    if rates is None and spc is None:
        if protocol_cls.budget_axis:
            raise src.error((), f"protocol {protocol_cls.name!r} needs a budget axis: 'rates:' or 'spc:'")
        return [None]
    if rates is not None:
        for j, r in enumerate(_require_list(src, data, "rates")):
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r <= 1:
                raise src.error(("rates", j), f"rate {r!r} must lie in (0, 1], e.g. 0.05 for 5%")
        return [Budget(rate=float(r)) for r in rates]
    for j, s in enumerate(_require_list(src, data, "spc")):
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise src.error(("spc", j), f"signals per class {s!r} must be a positive integer")
    return [Budget(spc=int(s)) for s in spc]


def _seeds(src, data):
    if "seeds" in data:
        seeds = _require_list(src, data, "seeds")
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise src.error(("seeds",), "seeds must be non-negative integers")
        if len(set(seeds)) != len(seeds):
            raise src.error(("seeds",), "seeds must be distinct")
        return list(seeds)
    repeats = data.get("repeats", 1)
    if not isinstance(repeats, int) or repeats < 1:
        raise src.error(("repeats",), "must be a positive integer")
    return list(range(repeats))


# --------------------------------------------------------------------------- cells
def dataset_config(dataset: dict) -> dict:
    """The part of a dataset entry that decides the data (not its label). ``standardize``
    appears only when on, so the keys of cells without it stay what they were."""
    config = {"name": dataset["name"], **{k: dataset.get(k, default) for k, default in DATASET_DEFAULTS.items()}}
    if dataset.get("standardize"):
        config["standardize"] = True
    return config


def expand(suite: Suite, registry=None) -> list[dict]:
    """The grid: datasets x models x methods x budgets x seeds, each a resolved cell."""
    from amrbench.registry import default_registry

    registry = registry or default_registry()
    cells = []
    for dataset, model, method, budget, seed in itertools.product(
            suite.datasets, suite.models, suite.methods, suite.budgets, suite.seeds):
        method_kind = registry.get("protocol", suite.protocol).method_kind
        config = {
            "protocol": suite.protocol,
            "suite_version": suite.version,
            "dataset": dataset_config(dataset),
            "method": {"name": method["name"], "params": method["params"]},
            "budget": budget.as_dict() if budget else None,
            "model": {"source": model["source"], "target": model["target"]},
            "seed": seed,
            "train": suite.train,
            "settings": suite.settings,
            "versions": {
                "protocol": registry.version_of("protocol", suite.protocol),
                "dataset": registry.version_of("dataset", dataset["name"]),
                "method": registry.version_of(method_kind, method["name"]),
                "source": registry.version_of("model", model["source"]),
                "target": registry.version_of("model", model["target"]),
            },
        }
        config = normalise(config)
        cells.append({
            "key": stable_hash(config, 24),
            "suite": suite.name,
            "config": config,
            "labels": {"dataset": dataset["label"], "method": method["label"],
                       "budget": budget.label() if budget else "", "model": model["label"], "seed": seed},
        })
    return cells


def normalise(value):
    """Canonical JSON types (string keys, tuples as lists) so keys are stable."""
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value
