"""YAML suites: loading with line numbers, validation, profiles and grid expansion.

A suite names its protocol, datasets, methods, budget axis (``rates:`` or ``spc:``),
models (``source`` -> ``target`` pairs), seeds, training settings and table layout.
Unknown keys are errors with "did you mean"; every error names ``file:line``.

Everything a run could trip over later is checked at load, before anything is written:
the suite name is a plain folder name (results stay inside results/), no two entries of
an axis share a label or a computation, plugin parameters meet their declared types,
nested training settings and table metrics are ones the protocol knows, and every
profile is checked merged with the suite, whichever is chosen. Reading the YAML is
bounded (aliases, depth, size) and strict (duplicate keys, non-UTF-8 bytes).
"""
from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from amrbench.api import AmrbenchError, Budget, did_you_mean
from amrbench.cache import stable_hash
from amrbench.published import NAME as PUBLISHED
from amrbench.shipped import declared_name, shipped_suites, shipped_suites_dir  # noqa: F401 (re-exported)
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
    "claims": "the paper's claims about the table's rows, checked against the records",
    "published": "the paper's own table, for `amrbench agreement --against published`",
}
DATASET_KEYS = {"name", "params", "snr", "label", "test_fraction", "seed", "standardize", "snr_bins", "split"}
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
    "ci": None,
    "ranks": True,
    "pair_positions": True,
    "choose_by": None,
    "choose_against": None,
    "choose_from": None,
}
EXTRA_ROW_KEYS = {"label", "metric", "pool", "scale", "format", "position"}
AXES = ("dataset", "method", "budget", "model", "seed", "metric")


# Bounds of what a suite file may expand to: YAML aliases can nest aliases ("billion
# laughs"), so an 800-byte file could otherwise describe billions of values.
MAX_BYTES = 10 * 2 ** 20
MAX_VALUES = 100_000
MAX_DEPTH = 64
SUITE_NAME = re.compile(r"[A-Za-z0-9._-]+")


class _TooDeep(Exception):
    """Nesting past ``MAX_DEPTH``, at ``args[0]`` (a line number)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads 1e-3 (no dot) as a float, as YAML 1.2 does, and stops
    composing past ``MAX_DEPTH`` levels (deeper nesting costs the scanner quadratic time)."""

    depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


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
    claims: list = field(default_factory=list)
    published: Any = None  # amrbench.published.Published: the paper's table, when the suite copies it


class SuiteSource:
    """The parsed YAML and a map from key paths to line numbers, for error messages.

    Reading is bounded (``MAX_VALUES`` values after alias expansion, ``MAX_DEPTH`` levels)
    and strict: a key given twice, a list or mapping used as a key and a number that is
    not finite are errors naming their line."""

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
        except _TooDeep as exc:
            raise AmrbenchError(f"{filename}:{exc.args[0]}: the YAML nests deeper than {MAX_DEPTH} levels; "
                                f"flatten it") from None
        except RecursionError:
            raise AmrbenchError(f"{filename}: the YAML nests too deeply to read; flatten it") from None
        finally:
            loader.dispose()
        if node is None:
            self.data = {}
            return
        self._check_size(node, 0, {})
        self.data = self._build(loader, node, ())

    def _line(self, node) -> int:
        return node.start_mark.line + 1

    def _check_size(self, node, depth: int, seen: dict) -> tuple:
        """(values, levels) of ``node`` with every alias expanded, memoised per node so
        shared aliases cost nothing to count; errors when either bound is passed."""
        known = seen.get(id(node))
        if known is None:
            if depth > MAX_DEPTH:  # also what an alias that contains itself comes to
                raise AmrbenchError(f"{self.filename}:{self._line(node)}: the YAML nests deeper than {MAX_DEPTH} "
                                    f"levels (or an alias contains itself); flatten it")
            children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                        else node.value if isinstance(node, yaml.SequenceNode) else [])
            values, levels = 1, 0
            for child in children:
                child_values, child_levels = self._check_size(child, depth + 1, seen)
                values, levels = values + child_values, max(levels, child_levels + 1)
                if values > MAX_VALUES:
                    break
            known = seen[id(node)] = (values, levels)
        if known[0] > MAX_VALUES:
            raise AmrbenchError(f"{self.filename}:{self._line(node)}: the YAML expands to more than {MAX_VALUES:,} "
                                f"values (aliases nested in aliases?); a suite is far smaller, write it out")
        if depth + known[1] > MAX_DEPTH:
            raise AmrbenchError(f"{self.filename}:{self._line(node)}: the YAML nests deeper than {MAX_DEPTH} levels; "
                                f"flatten it")
        return known

    def _build(self, loader, node, path):
        self.lines[path] = self._line(node)
        if isinstance(node, yaml.MappingNode):
            out, first = {}, {}
            for key_node, value_node in node.value:
                key = self._key(loader, key_node, path)
                if key in out:
                    raise self.error(path + (key,), f"duplicate key (first given on line {first[key]}); "
                                                    f"give each key once", line=self._line(key_node))
                first[key] = self._line(key_node)
                out[key] = self._build(loader, value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._build(loader, item, path + (i,)) for i, item in enumerate(node.value)]
        return self._scalar(loader, node, path)

    def _key(self, loader, node, path):
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(path, "a list or mapping cannot be a key; keys are names such as 'epochs'",
                             line=self._line(node))
        key = self._scalar(loader, node, path)
        try:
            hash(key)
        except TypeError:
            raise self.error(path, f"{node.value!r} cannot be a key; keys are names such as 'epochs'",
                             line=self._line(node)) from None
        return key

    def _scalar(self, loader, node, path):
        try:
            value = loader.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise self.error(path, f"cannot read {node.value!r}: {problem}", line=self._line(node)) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(path, f"{node.value} is not a finite number; cell keys hold finite numbers only",
                             line=self._line(node))
        return value

    def where(self, path) -> str:
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return f"{self.filename}:{self.lines.get(path, 1)}"

    def error(self, path, message: str, line: Optional[int] = None) -> AmrbenchError:
        dotted = ".".join(str(p) for p in path)
        where = f"{self.filename}:{line}" if line is not None else self.where(path)
        return AmrbenchError(f"{where}: {dotted + ': ' if dotted else ''}{message}")


class _ProfileSource:
    """Error locations in a suite merged with one of its profiles: a value the profile
    sets is reported at its line inside ``profiles:``, the rest at the suite's own."""

    def __init__(self, src: SuiteSource, profile: str, override: dict):
        self.src, self.prefix, self.override = src, ("profiles", profile), override
        self.filename = src.filename

    def source_path(self, path) -> tuple:
        path, node = tuple(path), self.override
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return path  # merged in from the suite's own mapping
            node = node[key]
            if not isinstance(node, dict):  # the profile replaces everything below
                break
        return self.prefix + path

    def where(self, path) -> str:
        return self.src.where(self.source_path(path))

    def error(self, path, message: str, line: Optional[int] = None) -> AmrbenchError:
        return self.src.error(self.source_path(path), message, line)


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_profile(base: dict, override: dict) -> dict:
    """The suite with a profile applied: mappings merge key by key, other values are
    replaced; a profile's ``seeds`` replaces the suite's ``repeats`` and vice versa."""
    out = deep_merge(base, override)
    for given, replaced in (("seeds", "repeats"), ("repeats", "seeds")):
        if given in override and replaced not in override:
            out.pop(replaced, None)
    return out


def read_suite_text(path: Path) -> str:
    """The suite file as text: UTF-8 and at most ``MAX_BYTES``, else a one-line error."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AmrbenchError(f"{path}: cannot read the suite file ({exc.strerror or exc}); "
                            f"check its permissions") from None
    if len(raw) > MAX_BYTES:
        raise AmrbenchError(f"{path}: {len(raw):,} bytes is no suite (the limit is {MAX_BYTES:,}); check the path")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise AmrbenchError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the suite as UTF-8") \
            from None


def resolve_suite_path(spec) -> Path:
    """What ``amrbench run SUITE`` reads: an existing file wins; otherwise a shipped
    suite named by its file stem (``table1``, also ``suites/table1.yaml`` from any
    folder, as committed ``suite.json`` files name them) or by its ``name:``
    (``mdm-table1``). Anything else is one line with "did you mean"."""
    path = Path(spec)
    if path.is_file():
        return path
    shipped = shipped_suites()
    stem = path.stem if path.suffix in (".yaml", ".yml") else path.name
    if stem in shipped and (path.parent == Path(".") or path.parent.name == "suites"):
        return shipped[stem]
    by_name = {declared_name(p): p for p in shipped.values()}
    if str(spec) in by_name:
        return by_name[str(spec)]
    known = sorted(set(shipped) | set(by_name))
    raise AmrbenchError(f"{spec}: suite file not found, and no shipped suite has that name"
                        f"{did_you_mean(stem, known)}; `amrbench suites` lists them, or pass a YAML file's path")


def load_suite(path, profile: Optional[str] = None, seeds: Optional[list] = None, registry=None) -> Suite:
    """Read, check and resolve a suite. The suite and every one of its profiles are
    checked in full, whichever is chosen, so a broken profile is found before anyone
    runs it; ``seeds`` replaces the chosen one's seeds (``--seeds``)."""
    from amrbench.registry import default_registry

    path = Path(path)
    if not path.is_file():
        raise AmrbenchError(f"{path}: suite file not found; pass a YAML file such as suites/quick.yaml")
    src = SuiteSource(read_suite_text(path), str(path))
    if not isinstance(src.data, dict):
        raise src.error((), "a suite must be a YAML mapping of keys such as protocol, datasets, methods")
    data = dict(src.data)
    for key in data:
        if key not in TOP_KEYS:
            raise src.error((key,), f"unknown key{did_you_mean(key, TOP_KEYS)}")
    profiles = _profiles(src, data.pop("profiles", None))
    if profile is not None and profile not in profiles:
        raise AmrbenchError(f"{path}: unknown profile {profile!r}{did_you_mean(profile, profiles)}")
    seeds = _seed_override(seeds)
    registry = registry or default_registry()
    chosen = None
    for name in [None, *profiles]:
        merged, where = (data, src) if name is None else (merge_profile(data, profiles[name]),
                                                         _ProfileSource(src, name, profiles[name]))
        if name == profile and seeds is not None:
            merged = {**{k: v for k, v in merged.items() if k != "repeats"}, "seeds": seeds}
        suite = _validate(where, merged, path, name, registry, read_files=name == profile)
        if name == profile:
            chosen = suite
    return chosen


def _profiles(src: SuiteSource, profiles) -> dict:
    """``profiles:``: a mapping of names to mappings of top-level keys."""
    profiles = profiles or {}
    if not isinstance(profiles, dict):
        raise src.error(("profiles",), "must be a mapping of profile names to overrides, e.g. {quick: {seeds: [0]}}")
    allowed = set(TOP_KEYS) - {"profiles"}
    for name, override in profiles.items():
        if not isinstance(name, str):
            raise src.error(("profiles", name), "a profile name must be a string such as quick")
        if name == PUBLISHED:  # `amrbench agreement --against published` names the paper's table
            raise src.error(("profiles", name), "is reserved for the paper's table (published:); rename the profile")
        if not isinstance(override or {}, dict):
            raise src.error(("profiles", name), "must be a mapping of suite keys to override, e.g. {seeds: [0]}")
        for key in override or {}:
            if key not in allowed:
                raise src.error(("profiles", name, key), f"unknown key{did_you_mean(key, allowed)}")
    return {name: override or {} for name, override in profiles.items()}


def _seed_override(seeds) -> Optional[list]:
    if seeds is None:
        return None
    seeds = list(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise AmrbenchError(f"seeds {seeds}: the seeds that replace the suite's must be distinct non-negative integers")
    return seeds


def _require_list(src, data, key):
    value = data.get(key)
    if not isinstance(value, list) or not value:
        raise src.error((key,), f"must be a non-empty list")
    return value


def _mapping(src, data: dict, key: str, example: str) -> dict:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise src.error((key,), f"must be a mapping, e.g. {example}")
    return value


def _validate(src, data: dict, path: Path, profile, registry, read_files: bool = True) -> Suite:
    """The checked, resolved suite; ``read_files`` False skips what needs the dataset files
    (a profile not chosen may name files this machine lacks)."""
    name = _suite_name(src, data, path)
    protocol_name = data.get("protocol", "select")
    try:
        protocol_cls = registry.get("protocol", protocol_name)
    except (AmrbenchError, TypeError) as exc:
        message = str(exc) if isinstance(exc, AmrbenchError) else "must be a protocol name"
        raise src.error(("protocol",), message) from None
    try:
        train = validate_train_settings(_mapping(src, data, "train", "{epochs: 10, batch_size: 128}"))
    except AmrbenchError as exc:
        raise src.error(("train",), str(exc)) from None
    settings = _settings(src, data, protocol_cls, registry, train)
    datasets = [_dataset_spec(src, registry, i, d, read_files)
                for i, d in enumerate(_require_list(src, data, "datasets"))]
    _no_duplicates(src, "datasets", datasets, lambda d: stable_hash({k: v for k, v in d.items() if k != "label"}))
    methods = [_method_spec(src, registry, protocol_cls.method_kind, i, m)
               for i, m in enumerate(_require_list(src, data, "methods"))]
    _no_duplicates(src, "methods", methods, lambda m: (_class_id(registry, protocol_cls.method_kind, m["name"]),
                                                       stable_hash(m["params"])))
    _check_param_overrides(src, settings, protocol_cls, methods, registry)
    models = [_model_spec(src, registry, i, m) for i, m in enumerate(_require_list(src, data, "models"))]
    _no_duplicates(src, "models", models, lambda m: (_class_id(registry, "model", m["source"]),
                                                     _class_id(registry, "model", m["target"])))
    budgets = _budgets(src, data, protocol_cls)
    seeds = _seeds(src, data)
    table = _table(src, data, protocol_cls)
    version = data.get("version")
    if not (version is None or isinstance(version, (str, int, float))):
        raise src.error(("version",), "must be a number or a short string, e.g. 1 or 2024.1")
    suite = Suite(
        name=name, path=str(path), protocol=protocol_name,
        datasets=datasets, methods=methods, budgets=budgets, models=models, seeds=seeds,
        train=train, settings=settings, table=table,
        version=version, description=str(data.get("description") or ""), profile=profile, raw=data)
    from amrbench.claims import validate_claims
    from amrbench.published import validate_published

    _validate_ranks(src, suite)
    _validate_choice(src, suite)
    suite.claims = validate_claims(src, data.get("claims"), suite)
    suite.published = validate_published(src, data.get("published"), suite)
    return suite


def _validate_ranks(src, suite: Suite) -> None:
    """``table: ranks`` is true, false, or the column labels to rank over."""
    chosen = suite.table["ranks"]
    if isinstance(chosen, bool):
        return
    from amrbench.tables import axis_labels

    columns = [str(c) for c in axis_labels(suite)[suite.table["columns"]]]
    if not (isinstance(chosen, list) and chosen):
        raise src.error(("table", "ranks"), "must be true or false (the Rank column), or the column labels to "
                                            "rank over, e.g. [1%, 5%]")
    for k, label in enumerate(chosen):
        _require_label(src, ("table", "ranks", k), label, columns, "column")


def _require_label(src, where: tuple, label, known: list, what: str) -> None:
    """``label`` is one of the table's ``known`` row or column labels (``what``)."""
    if str(label) not in known:
        raise src.error(where, f"{label!r} is not a {what} of the table"
                               f"{did_you_mean(str(label), known)}; {what}s: {', '.join(known)}")


def _validate_choice(src, suite: Suite) -> None:
    """``table: choose_against`` names the row (e.g. the current default) that the row
    chosen on ``choose_by`` is compared with, ``choose_from`` the rows the choice is among
    (e.g. a method's settings, not the baselines beside them); both need ``choose_by``."""
    from amrbench.tables import axis_labels

    rows = [str(r) for r in axis_labels(suite)[suite.table["rows"]]]
    named = [(("table", "choose_against"), suite.table["choose_against"])]
    listed = suite.table["choose_from"]
    if listed is not None:
        if not (isinstance(listed, list) and listed):
            raise src.error(("table", "choose_from"), "must be a list of the row labels to choose among")
        named += [(("table", "choose_from", k), label) for k, label in enumerate(listed)]
    for where, label in named:
        if label is None:
            continue
        if not suite.table["choose_by"]:
            raise src.error(where[:2], "needs table.choose_by (the metric that chooses the row), "
                                       "e.g. choose_by: val_accuracy")
        _require_label(src, where, label, rows, "row")


def _suite_name(src, data: dict, path: Path) -> str:
    """The results folder's name: a plain folder name, so results stay inside results/."""
    given = data.get("name")
    name = path.stem if given is None or given == "" else given
    if isinstance(name, int) and not isinstance(name, bool):
        name = str(name)
    if not isinstance(name, str) or not SUITE_NAME.fullmatch(name) or name in (".", ".."):
        origin = "" if given not in (None, "") else f"the file name gives the name {name!r}, which "
        raise src.error(("name",) if origin == "" else (),
                        f"{origin}must be a plain folder name (letters, digits, '-', '_', '.'; not '.' or '..'), "
                        f"got {name!r}: results go to results/<name>/; e.g. name: my_suite")
    return name


def _class_id(registry, kind: str, name: str) -> str:
    cls = registry.get(kind, name)
    return f"{cls.__module__}.{cls.__qualname__}"


def _no_duplicates(src, axis: str, entries: list, identity) -> None:
    """Two entries of one axis must differ in what they compute and in their label:
    the table groups by label, so a shared label pools two entries as if they were seeds."""
    seen, labels = {}, {}
    for i, entry in enumerate(entries):
        ident = identity(entry)
        if ident in seen:
            raise src.error((axis, i), f"the same entry as {axis}.{seen[ident]} (same name and parameters); "
                                       f"list it once")
        label = entry["label"]
        if label in labels:
            raise src.error((axis, i), f"label {label!r} is also the label of {axis}.{labels[label]}: tables would "
                                       f"pool the two as if they were seeds; give each its own label")
        seen[ident], labels[label] = i, i


def _settings(src, data: dict, protocol_cls, registry, train: dict) -> dict:
    """The protocol's settings: known keys, nested training-setting overrides checked
    like ``train:``, and whatever the protocol itself checks when it is built."""
    protocol_name = protocol_cls.name
    settings = _mapping(src, data, "settings", "{scoring: {epochs: 5}}")
    for key in settings:
        if key not in protocol_cls.defaults:
            raise src.error(("settings", key), f"unknown setting of protocol {protocol_name!r}"
                                               f"{did_you_mean(key, protocol_cls.defaults)}")
    for key in protocol_cls.train_settings:
        overrides = settings.get(key)
        if overrides is None:
            continue
        if not isinstance(overrides, dict):
            raise src.error(("settings", key), "must be a mapping of training settings, e.g. {epochs: 5}")
        for sub in overrides:
            if sub not in TRAIN_DEFAULTS:
                raise src.error(("settings", key, sub), f"unknown training setting{did_you_mean(sub, TRAIN_DEFAULTS)}")
        try:
            validate_train_settings({**train, **overrides})
        except AmrbenchError as exc:
            raise src.error(("settings", key), str(exc)) from None
    try:
        registry.create("protocol", protocol_name, settings)
    except AmrbenchError as exc:
        raise src.error(("settings",), str(exc)) from None
    defaults = {k: v for k, v in protocol_cls.defaults.items() if k not in protocol_cls.optional_settings}
    return {**defaults, **settings}


def _check_param_overrides(src, settings: dict, protocol_cls, methods: list, registry) -> None:
    """Settings such as compress's ``fit`` override the parameters of every method that
    has them: each key must be a parameter of some method, and each method must accept
    its overridden parameters."""
    for key in protocol_cls.param_overrides:
        overrides = settings.get(key) or {}
        if not isinstance(overrides, dict):
            raise src.error(("settings", key), "must be a mapping of method parameters, e.g. {epochs: 2}")
        classes = [registry.get(protocol_cls.method_kind, m["name"]) for m in methods]
        known = set().union(*(cls.defaults for cls in classes))
        for sub in overrides:
            if sub not in known:
                raise src.error(("settings", key, sub), f"no method of this suite has this parameter"
                                                        f"{did_you_mean(sub, known)}")
        for i, (method, cls) in enumerate(zip(methods, classes)):
            try:
                cls(**{**method["params"], **{k: v for k, v in overrides.items() if k in cls.defaults}})
            except AmrbenchError as exc:
                raise src.error(("settings", key), f"with methods.{i}: {exc}") from None


def _as_spec(src, where, value, allowed):
    spec = {"name": value} if isinstance(value, str) else value
    if not isinstance(spec, dict) or "name" not in spec and "source" not in spec:
        raise src.error(where, "must be a name or a mapping with 'name'")
    for key in spec:
        if key not in allowed:
            raise src.error(where + (key,), f"unknown key{did_you_mean(key, allowed)}")
    for key in ("name", "source", "target"):
        if key in spec and not isinstance(spec[key], str):
            raise src.error(where + (key,), f"must be a plugin name, got {spec[key]!r}")
    if "label" in spec and not isinstance(spec["label"], (str, int, float)):
        raise src.error(where + ("label",), f"must be a short text, got {spec['label']!r}")
    return spec


def _table(src, data: dict, protocol_cls) -> dict:
    table = dict(TABLE_DEFAULTS)
    for key, value in _mapping(src, data, "table", "{metric: accuracy}").items():
        if key not in TABLE_DEFAULTS:
            raise src.error(("table", key), f"unknown key{did_you_mean(key, TABLE_DEFAULTS)}")
        table[key] = value
    for key in ("rows", "columns"):
        if table[key] not in AXES:
            raise src.error(("table", key), f"must be one of {', '.join(AXES)}")
    group = table["group"]
    if not (group is None or isinstance(group, list) and all(g in AXES for g in group)):
        raise src.error(("table", "group"), f"must be a list of axes: {', '.join(AXES)}")
    _check_look(src, ("table",), table)
    _validate_table_metric(src, table)
    _validate_extra_rows(src, table)
    _validate_metric_names(src, table, protocol_cls)
    return table


def _check_look(src, where: tuple, spec: dict) -> None:
    """``scale`` a number, ``format`` a format of ``mean`` and ``std``, flags true/false,
    titles text: what rendering needs, checked before any cell runs."""
    scale = spec.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise src.error(where + ("scale",), "must be a number, e.g. 100 for percent")
    fmt = spec.get("format", "{mean}")
    try:
        if not isinstance(fmt, str):
            raise TypeError
        fmt.format(mean=1.0, std=0.5)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise src.error(where + ("format",), "must be a format of mean and std, e.g. '{mean:.2f}±{std:.2f}'") from None
    for key in ("higher_is_better", "avg"):
        if key in spec and not isinstance(spec[key], bool):
            raise src.error(where + (key,), "must be true or false")
    for key in ("title", "caption"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise src.error(where + (key,), "must be text")


def _validate_metric_names(src, table: dict, protocol_cls) -> None:
    """Every metric the table reads must be one the protocol records (when it declares
    its metrics): an unknown name would give an empty table."""
    wanted = [(("table", "metric"), m) for m in ([table["metric"]] if isinstance(table["metric"], str)
                                                 else table["metric"])]
    for key in ("pool", "choose_by"):
        if table[key] is not None:
            wanted.append((("table", key), table[key]))
    for j, row in enumerate(table["extra_rows"] or []):
        wanted += [(("table", "extra_rows", j, key), row[key]) for key in ("metric", "pool")
                   if row.get(key) is not None]
    for where, metric in wanted:
        if not isinstance(metric, str):
            raise src.error(where, f"must be a metric name, got {metric!r}")
        if not protocol_cls.produces(metric):
            raise src.error(where, f"protocol {protocol_cls.name!r} records no metric {metric!r}"
                                   f"{did_you_mean(metric, protocol_cls.metrics)}")


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
        _check_look(src, ("table", "extra_rows", j), row)


def _plugin(src, where, registry, kind, name, params):
    """The plugin built with the suite's parameters (its own checks run here)."""
    if params is not None and not isinstance(params, dict):
        raise src.error(where + ("params",), "must be a mapping")
    try:
        return registry.create(kind, name, params or {})
    except AmrbenchError as exc:
        raise src.error(where, str(exc)) from None


def _check_snr_grid(src, where, plugin, snr) -> None:
    """An SNR filter must keep some of the dataset's SNRs (when its grid is known
    without loading the data)."""
    grid = plugin.snr_values() if snr is not None else None
    if grid is not None and not plugin.snr_values(tuple(snr)):
        shown = ", ".join(f"{v:g}" for v in grid) if len(grid) <= 8 else f"{min(grid):g} .. {max(grid):g}"
        raise src.error(where + ("snr",), f"no SNR of dataset {plugin.name!r} ({shown} dB) lies in "
                                          f"[{snr[0]}, {snr[1]}]; widen the filter or the dataset's SNR parameters")


def _dataset_spec(src, registry, i, value, read_files: bool = True):
    where = ("datasets", i)
    spec = _as_spec(src, where, value, DATASET_KEYS)
    plugin = _plugin(src, where, registry, "dataset", spec["name"], spec.get("params"))
    params = plugin.params
    snr = spec.get("snr")
    if snr is not None and not (_numbers(snr) and len(snr) == 2 and snr[0] <= snr[1]):
        raise src.error(where + ("snr",), "must be [low, high] in dB, e.g. [10, 18]")
    _check_snr_grid(src, where, plugin, snr)
    test_fraction = spec.get("test_fraction", DATASET_DEFAULTS["test_fraction"])
    if not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise src.error(where + ("test_fraction",), "must be a number in (0, 1); the default 0.2 is the 4:1 split")
    data_seed = spec.get("seed", DATASET_DEFAULTS["seed"])
    if not isinstance(data_seed, int) or isinstance(data_seed, bool) or data_seed < 0:
        raise src.error(where + ("seed",), "the data seed must be a non-negative integer (default 0)")
    standardize = spec.get("standardize", False)
    if not isinstance(standardize, bool):
        raise src.error(where + ("standardize",), "must be true or false (per-channel mean/std of the training split)")
    snr_bins = spec.get("snr_bins")
    if snr_bins is not None:
        snr_bins = _snr_bins(src, where, snr_bins)
    split = spec.get("split", "per_group")
    if split not in ("per_group", "exact"):
        raise src.error(where + ("split",), "must be per_group (default: each class x SNR group rounded on its own) "
                                            "or exact (every class's test count exactly round(size x test_fraction))")
    try:
        fingerprint = plugin.fingerprint() if read_files else None  # a file's contents, in the keys of its cells
    except AmrbenchError as exc:
        raise src.error(where, str(exc)) from None
    return {"name": spec["name"], "params": params, "snr": snr, "test_fraction": float(test_fraction), "seed": data_seed,
            "standardize": standardize, "snr_bins": snr_bins, "fingerprint": fingerprint,
            "split": "exact" if split == "exact" else None,
            "label": str(spec.get("label") or spec["name"] + (f" [{snr[0]}, {snr[1]}] dB" if snr else "")
                         + (" standardised" if standardize else ""))}


def _snr_bins(src, where, value):
    """``snr_bins`` (stratification only): a bin width in dB, or a list of bin edges."""
    from amrbench.data.splits import snr_bins_problem

    problem = snr_bins_problem(value)
    if problem:
        raise src.error(where + ("snr_bins",), problem)
    return [float(v) for v in value] if isinstance(value, list) else float(value)


def _method_spec(src, registry, kind, i, value):
    where = ("methods", i)
    spec = _as_spec(src, where, value, METHOD_KEYS)
    params = _plugin(src, where, registry, kind, spec["name"], spec.get("params")).params
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
        return _distinct_budgets(src, "rates", [Budget(rate=float(r)) for r in rates])
    for j, s in enumerate(_require_list(src, data, "spc")):
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise src.error(("spc", j), f"signals per class {s!r} must be a positive integer")
    return _distinct_budgets(src, "spc", [Budget(spc=int(s)) for s in spc])


def _distinct_budgets(src, key: str, budgets: list) -> list:
    """Budgets whose labels coincide would pool in the table (0.05 and 0.0500001 are both 5%)."""
    first = {}
    for j, budget in enumerate(budgets):
        if budget.label() in first:
            raise src.error((key, j), f"{budget.label()} repeats {key}.{first[budget.label()]}; list each budget once")
        first[budget.label()] = j
    return budgets


def _numbers(values) -> bool:
    return isinstance(values, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _seeds(src, data):
    if "seeds" in data and "repeats" in data:
        raise src.error(("repeats",), "give either seeds or repeats, not both")
    if "seeds" in data:
        seeds = _require_list(src, data, "seeds")
        for j, seed in enumerate(seeds):
            if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
                raise src.error(("seeds", j), f"seeds must be non-negative integers, got {seed!r}")
        if len(set(seeds)) != len(seeds):
            raise src.error(("seeds",), "seeds must be distinct")
        return list(seeds)
    repeats = data.get("repeats", 1)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise src.error(("repeats",), f"must be a positive integer (seeds 0..repeats-1), got {repeats!r}")
    return list(range(repeats))


# --------------------------------------------------------------------------- cells
def dataset_config(dataset: dict) -> dict:
    """The part of a dataset entry that decides the data (not its label). ``standardize``
    appears only when on, so the keys of cells without it stay what they were."""
    config = {"name": dataset["name"], **{k: dataset.get(k, default) for k, default in DATASET_DEFAULTS.items()}}
    if dataset.get("standardize"):
        config["standardize"] = True
    for optional in ("snr_bins", "fingerprint", "split"):  # only when set: keys without them stay what they were
        if dataset.get(optional) is not None:
            config[optional] = dataset[optional]
    return config


@dataclass(frozen=True)
class CellSpec:
    """What decides one cell's numbers, before resolution: ``cell_config`` turns it into
    the stored config (plugin versions added, JSON-normalised) whose hash is the key."""

    protocol: str
    dataset: dict  # the data-deciding part of a dataset entry (``dataset_config``)
    method: dict  # {"name", "params"}
    budget: Optional[Budget]
    model: dict  # {"source", "target"}
    seed: int
    train: dict
    settings: dict
    suite_version: Optional[int] = None


def cell_config(spec: CellSpec, registry) -> dict:
    """The one builder of a cell's config, for suite expansion and for the commands that
    compute a single cell (``amrbench condense``, ``amrbench explain``)."""
    method_kind = registry.get("protocol", spec.protocol).method_kind
    config = {
        "protocol": spec.protocol,
        "suite_version": spec.suite_version,
        "dataset": spec.dataset,
        "method": {"name": spec.method["name"], "params": spec.method["params"]},
        "budget": spec.budget.as_dict() if spec.budget else None,
        "model": {"source": spec.model["source"], "target": spec.model["target"]},
        "seed": spec.seed,
        "train": spec.train,
        "settings": spec.settings,
        "versions": {
            "protocol": registry.version_of("protocol", spec.protocol),
            "dataset": registry.version_of("dataset", spec.dataset["name"]),
            "method": registry.version_of(method_kind, spec.method["name"]),
            "source": registry.version_of("model", spec.model["source"]),
            "target": registry.version_of("model", spec.model["target"]),
        },
    }
    return normalise(config)


def expand(suite: Suite, registry=None) -> list[dict]:
    """The grid: datasets x models x methods x budgets x seeds, each a resolved cell."""
    from amrbench.registry import default_registry

    registry = registry or default_registry()
    cells = []
    for dataset, model, method, budget, seed in itertools.product(
            suite.datasets, suite.models, suite.methods, suite.budgets, suite.seeds):
        config = cell_config(CellSpec(protocol=suite.protocol, dataset=dataset_config(dataset), method=method,
                                      budget=budget, model=model, seed=seed, train=suite.train,
                                      settings=suite.settings, suite_version=suite.version), registry)
        cells.append({
            "key": stable_hash(config, 24),
            "suite": suite.name,
            "config": config,
            "labels": {"dataset": dataset["label"], "method": method["label"],
                       "budget": budget.label() if budget else "", "model": model["label"], "seed": seed},
        })
    return cells


ONLY_AXES = ("dataset", "model", "method", "budget")


def only_cells(cells: list, only: dict) -> list:
    """The cells of a block: those whose label, or plugin name, on every axis of
    ``only`` ({axis: [values]}, ``--only AXIS=VALUE,...``) is one of the values (case
    apart). A value holding commas is one label if a cell has it ("equal, top of each
    tier"), else a list. A value that names no cell of the grid is an error listing the
    axis's labels, so a typo never runs an empty block."""
    wanted = {}
    for axis, values in only.items():
        if axis not in ONLY_AXES:
            raise AmrbenchError(f"--only {axis}=...: unknown axis{did_you_mean(axis, ONLY_AXES)} "
                                f"(seeds: --seeds)")
        known, wanted[axis] = {}, set()
        for cell in cells:
            for name in _cell_names(cell, axis):
                known.setdefault(name.lower(), cell["labels"][axis])
        for value in values:
            for part in _only_parts(value, known):
                if part.lower() not in known:
                    split = " (a label holding a comma goes in an --only of its own)" if "," in str(value) else ""
                    raise AmrbenchError(f"--only {axis}={part}: no cell of the grid has that {axis}{split}"
                                        f"{did_you_mean(part, set(known.values()))}")
                wanted[axis].add(part.lower())
    return [c for c in cells if all(any(n.lower() in wanted[a] for n in _cell_names(c, a)) for a in wanted)]


def _only_parts(value, known: dict) -> list:
    """``value`` whole when it names a cell, else its comma-separated parts."""
    text = str(value).strip()
    return [text] if text.lower() in known else [v.strip() for v in text.split(",") if v.strip()]


def _cell_names(cell: dict, axis: str) -> list:
    """What ``--only`` may call a cell on an axis: its label, and its plugin name."""
    config = cell["config"]
    names = [str(cell["labels"][axis])]
    if axis == "dataset":
        names.append(config["dataset"]["name"])
    elif axis == "method":
        names.append(config["method"]["name"])
    elif axis == "model":
        names += [config["model"]["target"]] if config["model"]["source"] == config["model"]["target"] else []
    return names


def normalise(value):
    """Canonical JSON types (string keys, tuples as lists) so keys are stable."""
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


# --------------------------------------------------------------------------- which profile made the records
def profiles_with_records(suite_path, stored_keys: set) -> list:
    """The suite's profiles (None for the default) whose grid shares a key with the
    stored records."""
    path = Path(suite_path)
    data = SuiteSource(path.read_text(), str(path)).data
    names = list(((data or {}).get("profiles") or {}).keys()) if isinstance(data, dict) else []
    found = []
    for name in [None, *names]:
        try:
            keys = {c["key"] for c in expand(load_suite(path, profile=name))}
        except AmrbenchError:
            continue
        if keys & stored_keys:
            found.append(name)
    return found


def require_records(suite, records: list, stored_keys: set, store_path) -> None:
    """A table of a profile with no records is an error naming the profiles that have them."""
    if records:
        return
    have = profiles_with_records(suite.path, stored_keys)
    which = f"profile {suite.profile!r}" if suite.profile else "the default profile"
    if not have:
        raise AmrbenchError(f"{store_path}: no records of {which} of {suite.path} (nor of any of its profiles); "
                            f"run `amrbench run {suite.path}{' --profile ' + suite.profile if suite.profile else ''}` first")
    listed = ", ".join(f"--profile {p}" if p else "the default profile (no --profile)" for p in have)
    raise AmrbenchError(f"{store_path}: no records of {which} of {suite.path}; records exist for: {listed}")
