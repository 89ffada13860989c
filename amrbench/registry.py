"""Plugin discovery: a pluggy PluginManager loading the ``amrbench`` entry-point group.

Built-ins are found exactly like a third party's plugins. Each entry point is loaded on
its own inside try/except, so one broken plugin is listed with its error and the others
still work.

Every registration is kept. Two plugins of one kind and name from different
distributions are a *conflict*: naming it bare is an error (a benchmark must not pick one
silently), and ``dist:name`` (e.g. ``amrbench:uniform``) names exactly one of them.
"""
from __future__ import annotations

import importlib.metadata
import inspect
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import pluggy

from amrbench import hookspecs
from amrbench.basics import KINDS, AmrbenchError, did_you_mean

GROUP = "amrbench"
_UNREGISTERED = ("(unregistered)", "", "")


def normalize_dist(name: str) -> str:
    """The PEP 503 form of a distribution name, so ``My_Selectors`` and ``my-selectors``
    are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


KIND_NAME = re.compile(r"[a-z][a-z0-9-]*")


def kind_base(cls) -> type:
    """The class that declares ``cls``'s kind (first in its MRO to set ``kind``): a
    built-in kind's base in amrbench.api, or a family's own base class for a new kind."""
    return next(klass for klass in cls.__mro__ if "kind" in vars(klass))


def check_plugin_class(cls) -> None:
    """Refuse a class that breaks the plugin contract with a one-line TypeError naming the
    class, its module and what to fix, so a broken plugin fails when it registers, not
    when a cell first builds it."""
    problem = _contract_problem(cls)
    if problem:
        where = f"{cls.__qualname__} ({cls.__module__})" if isinstance(cls, type) else repr(cls)
        raise TypeError(f"plugin class {where}: {problem}")


def _contract_problem(cls) -> Optional[str]:
    """What is wrong with ``cls`` as a plugin class, or None."""
    from amrbench.api import BASES, Plugin  # torch: only loading plugins needs it, not this module

    bases = ", ".join(f"amrbench.api.{base.__name__}" for base in BASES.values())
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        return f"not a plugin class; subclass one of {bases}"
    base = BASES.get(cls.kind) or kind_base(cls)
    if cls.kind not in BASES and (base is Plugin or not isinstance(cls.kind, str) or not KIND_NAME.fullmatch(cls.kind)):
        return (f"kind {cls.kind!r} is not a plugin kind: subclass one of {bases}, or declare a new kind "
                f"(lower-case letters, digits, '-') as `kind` on your family's base class")
    if not issubclass(cls, base):
        return f"a {cls.kind} plugin must subclass amrbench.api.{base.__name__}"
    if not isinstance(cls.name, str) or not cls.name:
        return "set name to a non-empty string, the name suites use"
    if ":" in cls.name:
        return f"plugin name {cls.name!r} must not contain ':' (it separates dist:name)"
    if inspect.isabstract(cls):
        missing = sorted(cls.__abstractmethods__)
        return f"implement {', '.join(missing)} (abstract in amrbench.api.{base.__name__})"
    return _parameters_problem(cls)


def _parameters_problem(cls) -> Optional[str]:
    """What is wrong with the parameter declarations (``defaults``, ``types``, ``choices``)."""
    from amrbench.api import Param

    if not isinstance(cls.defaults, dict):
        return f"defaults must be a dict (parameter -> default value), got {type(cls.defaults).__name__}"
    for attribute, table in (("types", cls.types), ("choices", cls.choices)):
        if not isinstance(table, dict):
            return f"{attribute} must be a dict keyed by parameter names, got {type(table).__name__}"
        undeclared = sorted(set(table) - set(cls.defaults), key=str)
        if undeclared:
            return (f"{attribute} names parameter {undeclared[0]!r}, which defaults lacks; add it to defaults "
                    f"or drop it from {attribute}")
    for key, spec in cls.types.items():
        if not isinstance(spec, (Param, tuple)) or (isinstance(spec, tuple) and not 1 <= len(spec) <= 6):
            return f"types[{key!r}] must be a Param or a tuple (kind, low, high), got {spec!r}"
    return None


@dataclass
class PluginInfo:
    cls: type
    dist: str
    dist_version: str
    entry_point: str

    @property
    def source(self) -> str:
        """Where it came from, for messages: ``my-selectors 0.1 (entry point selector-x)``."""
        return f"{self.dist} {self.dist_version}".strip() + f" (entry point {self.entry_point})"

    def same_registration(self, other: "PluginInfo") -> bool:
        """One class registered twice by one distribution (a module registered by hand
        twice, pluggy re-registration, a reloaded module) is one plugin, not a conflict."""
        if normalize_dist(self.dist) != normalize_dist(other.dist):
            return False
        return self.cls is other.cls or (self.cls.__module__, self.cls.__qualname__) == (
            other.cls.__module__, other.cls.__qualname__)


@dataclass
class BrokenPlugin:
    entry_point: str
    value: str
    dist: str
    error: str
    traceback: str


@dataclass
class Conflict:
    kind: str
    name: str
    infos: list

    def __post_init__(self):
        # messages and listings must not depend on the order entry points happen to load in
        self.infos = sorted(self.infos, key=lambda info: (normalize_dist(info.dist), info.entry_point))

    def choices(self) -> list[str]:
        """The ``dist:name`` spellings that pick each registration."""
        return [f"{normalize_dist(info.dist)}:{self.name}" for info in self.infos]


class _KindView(Mapping):
    """Read-only name -> PluginInfo of one kind, resolved like ``Registry.info`` (a
    conflicting bare name raises), so ``registry.plugins[kind][name]`` never picks one."""

    def __init__(self, registry: "Registry", kind: str):
        self._registry, self._kind = registry, kind

    def __getitem__(self, name: str) -> PluginInfo:
        if name.rpartition(":")[2] not in self._registry.registrations[self._kind]:
            raise KeyError(name)
        return self._registry.info(self._kind, name)

    def __contains__(self, name) -> bool:
        return name in self._registry.registrations[self._kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.registrations[self._kind])

    def __len__(self) -> int:
        return len(self._registry.registrations[self._kind])


RESOURCE_SUBJECTS = ("source", "target", "method", "method budget")


@dataclass(frozen=True)
class Resource:
    """A shared resource (artifact) cells read with ``ctx.resource(kind)``, computed once
    per config and cached: ``config(ctx)`` says what it depends on (its cache key),
    ``compute(ctx)`` builds it. ``words`` name it in progress lines ("scoring run"),
    followed by its ``subject``: the cell's source or target model, its method, or its
    method and budget. For cost estimates: ``time_metric``, the record metric that holds
    its compute time (every record using it carries the same value), and ``training``,
    ``(cell, n_train, registry) -> (model role, signal-epochs)`` of the training it does
    (None: one full-data run of the source model, ``amrbench.cost.full_data_epochs``)."""

    kind: str
    config: Callable
    compute: Callable
    words: str
    subject: str = "source"
    time_metric: Optional[str] = None
    training: Optional[Callable] = None


class Registry:
    def __init__(self):
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.registrations: dict[str, dict[str, list[PluginInfo]]] = {kind: {} for kind in KINDS}
        self.plugins: dict[str, _KindView] = {kind: _KindView(self, kind) for kind in KINDS}
        self.broken: list[BrokenPlugin] = []
        self.resources: dict[str, Resource] = {}  # shared-resource kind -> its declaration
        self.kind_bases: dict[str, type] = {}  # plugin kind -> the class that declares it
        self._origin = _UNREGISTERED
        self.pm.hook.amrbench_register.call_historic(kwargs={"registry": self})

    # called by plugins from their amrbench_register hook
    def add(self, cls: type) -> None:
        """Register a plugin class once :func:`check_plugin_class` accepts it (a refused class
        raises TypeError; from an entry point it is then listed in ``broken``)."""
        check_plugin_class(cls)
        self._add_kind(cls)
        dist, version, ep = self._origin
        new = PluginInfo(cls, dist, version, ep)
        known = self.registrations[cls.kind].setdefault(cls.name, [])
        if not any(info.same_registration(new) for info in known):
            known.append(new)

    def _add_kind(self, cls: type) -> None:
        """A family's new method kind is declared by its base class (``kind = "augmenter"``)
        and known from the first plugin of it that registers; every later one must
        subclass the same base."""
        base = kind_base(cls)
        known = self.kind_bases.setdefault(cls.kind, base)
        if known is not base and not issubclass(cls, known):
            raise TypeError(f"plugin class {cls.__qualname__} ({cls.__module__}): kind {cls.kind!r} is declared by "
                            f"{known.__module__}.{known.__qualname__}; subclass it")
        if cls.kind not in self.registrations:
            self.registrations[cls.kind] = {}
            self.plugins[cls.kind] = _KindView(self, cls.kind)

    def kinds(self) -> list:
        """The built-in kinds, then the kinds families added, in registration order."""
        return list(self.registrations)

    def add_resource(self, kind: str, config: Callable, compute: Callable, words: str = "",
                     subject: str = "source", time_metric: Optional[str] = None,
                     training: Optional[Callable] = None) -> None:
        """A shared resource cells read with ``ctx.resource(kind)`` (see :class:`Resource`).
        Registering the same one again is harmless; another under a taken kind is refused."""
        if subject not in RESOURCE_SUBJECTS:
            raise TypeError(f"resource {kind!r}: subject {subject!r} must be one of {', '.join(RESOURCE_SUBJECTS)}")
        new = Resource(kind, config, compute, words or kind, subject, time_metric, training)
        known = self.resources.get(kind)
        if known is not None and known != new:
            raise TypeError(f"resource {kind!r} is already registered by {known.compute.__module__}; "
                            f"{compute.__module__} must use another name")
        self.resources[kind] = new

    def resource(self, kind: str) -> "Resource":
        """A registered resource kind."""
        if kind not in self.resources:
            known = ", ".join(sorted(["dataset", *self.resources]))
            raise AmrbenchError(f"unknown resource {kind!r}{did_you_mean(kind, list(self.resources))}; known: {known}")
        return self.resources[kind]

    def load_entry_points(self) -> "Registry":
        """Load every entry point of the group, each under its own name; a second
        distribution reusing an entry-point name is loaded too, not skipped."""
        eps = importlib.metadata.entry_points(group=GROUP)
        for ep in sorted(eps, key=lambda e: (e.name, e.value, e.dist.name if e.dist else "")):
            dist = ep.dist.name if ep.dist else "?"
            if any((b.entry_point, b.value, b.dist) == (ep.name, ep.value, dist) for b in self.broken):
                continue  # already reported by an earlier call
            self._origin = (dist, ep.dist.version if ep.dist else "?", ep.name)
            try:
                self._load_entry_point(ep, dist)
            except Exception as exc:  # a broken plugin must not break the others
                self.broken.append(BrokenPlugin(ep.name, ep.value, dist, f"{type(exc).__name__}: {exc}",
                                                traceback.format_exc()))
        self._origin = _UNREGISTERED
        return self

    def _load_entry_point(self, ep, dist: str) -> None:
        plugin = ep.load()
        if self.pm.is_registered(plugin):  # loaded before (this call or an earlier one)
            return
        name = ep.name if not self.pm.has_plugin(ep.name) else f"{ep.name}@{normalize_dist(dist)}"
        self.pm.register(plugin, name=name)

    def register_module(self, module, name: Optional[str] = None, dist: str = "(local)") -> None:
        """Register a plugin module by hand (tests, notebooks); a module already
        registered is left as it is."""
        if self.pm.is_registered(module):
            return
        self._origin = (dist, "", name or module.__name__)
        try:
            self.pm.register(module, name=name or module.__name__)
        finally:
            self._origin = _UNREGISTERED

    def info(self, kind: str, name: str) -> PluginInfo:
        """The one plugin ``name`` (bare or ``dist:name``) stands for; an unknown,
        broken or conflicting name is an AmrbenchError saying how to fix it."""
        if kind not in self.registrations:
            raise AmrbenchError(f"unknown plugin kind {kind!r}{did_you_mean(kind, self.registrations)}")
        dist, _, bare = name.rpartition(":")  # a distribution name never holds ':', a plugin name neither
        found = self.registrations[kind].get(bare)
        if found is None:
            raise self._unknown(kind, bare)
        if dist:
            found = [info for info in found if normalize_dist(info.dist) == normalize_dist(dist)]
            if not found:
                sources = ", ".join(Conflict(kind, bare, self.registrations[kind][bare]).choices())
                raise AmrbenchError(f"{kind} {name!r}: distribution {dist!r} does not provide {bare!r}; "
                                    f"it is registered as {sources}")
        if len(found) > 1:
            raise AmrbenchError(self._conflict_message(Conflict(kind, bare, found), qualified=bool(dist)))
        return found[0]

    def _unknown(self, kind: str, name: str) -> AmrbenchError:
        broken = [b for b in self.broken if b.entry_point == name]
        if broken:
            return AmrbenchError(f"{kind} {name!r} failed to load ({broken[0].error}); fix or uninstall {broken[0].dist}")
        return AmrbenchError(f"unknown {kind} {name!r}{did_you_mean(name, self.registrations[kind])}")

    @staticmethod
    def _conflict_message(conflict: Conflict, qualified: bool) -> str:
        sources = " and ".join(info.source for info in conflict.infos)
        if qualified:  # one distribution registers two different classes under one name
            return (f"{conflict.kind} {conflict.name!r} is registered more than once by one distribution: {sources}; "
                    f"fix or uninstall {conflict.infos[0].dist}")
        choices = " or ".join(repr(choice) for choice in conflict.choices())
        return (f"{conflict.kind} {conflict.name!r} is registered by several distributions: {sources}; "
                f"name the one you mean as {choices}")

    def conflicts(self, kind: Optional[str] = None) -> list[Conflict]:
        """Every name of ``kind`` (or of all kinds) registered more than once."""
        kinds = [kind] if kind else self.kinds()
        return [Conflict(k, name, infos) for k in kinds for name, infos in sorted(self.registrations[k].items())
                if len(infos) > 1]

    def get(self, kind: str, name: str) -> type:
        return self.info(kind, name).cls

    def create(self, kind: str, name: str, params: Optional[dict] = None) -> Plugin:
        return self.get(kind, name)(**(params or {}))

    def names(self, kind: str) -> list[str]:
        """Each registered name of ``kind`` once, sorted, conflicting ones included."""
        return sorted(self.registrations[kind])

    def version_of(self, kind: str, name: str) -> str:
        info = self.info(kind, name)
        return f"{info.dist}=={info.dist_version}:{info.cls.version}"

    def call_reporters(self, hook_name: str, **kwargs) -> list[str]:
        """Call one event hook on every reporter, each isolated: a failing reporter is
        reported but cannot stop a run."""
        errors = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception as exc:
                errors.append(f"reporter {impl.plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}")
        return errors


_DEFAULT: Optional[Registry] = None


def default_registry() -> Registry:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Registry().load_entry_points()
    return _DEFAULT
