"""Plugin discovery: a pluggy PluginManager loading the ``amrbench`` entry-point group.

Built-ins are found exactly like a third party's plugins. Each entry point is loaded on
its own inside try/except, so one broken plugin is listed with its error and the others
still work.
"""
from __future__ import annotations

import importlib.metadata
import traceback
from dataclasses import dataclass
from typing import Optional

import pluggy

from amrbench import hookspecs
from amrbench.api import KINDS, AmrbenchError, Plugin, did_you_mean

GROUP = "amrbench"


@dataclass
class PluginInfo:
    cls: type
    dist: str
    dist_version: str
    entry_point: str


@dataclass
class BrokenPlugin:
    entry_point: str
    value: str
    dist: str
    error: str
    traceback: str


class Registry:
    def __init__(self):
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, dict[str, PluginInfo]] = {kind: {} for kind in KINDS}
        self.broken: list[BrokenPlugin] = []
        self._origin = ("(unregistered)", "", "")
        self.pm.hook.amrbench_register.call_historic(kwargs={"registry": self})

    # called by plugins from their amrbench_register hook
    def add(self, cls: type) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Plugin)) or cls.kind not in KINDS or not cls.name:
            raise TypeError(f"{cls!r} is not an amrbench plugin class with a kind and a name")
        dist, version, ep = self._origin
        self.plugins[cls.kind].setdefault(cls.name, PluginInfo(cls, dist, version, ep))

    def load_entry_points(self) -> "Registry":
        for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: (e.name, e.value)):
            if self.pm.has_plugin(ep.name):
                continue
            dist = ep.dist.name if ep.dist else "?"
            self._origin = (dist, ep.dist.version if ep.dist else "?", ep.name)
            try:
                self.pm.load_setuptools_entrypoints(GROUP, name=ep.name)
            except Exception as exc:  # a broken plugin must not break the others
                self.broken.append(BrokenPlugin(ep.name, ep.value, dist, f"{type(exc).__name__}: {exc}",
                                                traceback.format_exc()))
        self._origin = ("(unregistered)", "", "")
        return self

    def register_module(self, module, name: Optional[str] = None, dist: str = "(local)") -> None:
        """Register a plugin module by hand (tests, notebooks)."""
        self._origin = (dist, "", name or module.__name__)
        self.pm.register(module, name=name or module.__name__)
        self._origin = ("(unregistered)", "", "")

    def info(self, kind: str, name: str) -> PluginInfo:
        if kind not in self.plugins:
            raise AmrbenchError(f"unknown plugin kind {kind!r}{did_you_mean(kind, KINDS)}")
        found = self.plugins[kind].get(name)
        if found is None:
            broken = [b for b in self.broken if b.entry_point == name]
            if broken:
                raise AmrbenchError(f"{kind} {name!r} failed to load ({broken[0].error}); fix or uninstall {broken[0].dist}")
            raise AmrbenchError(f"unknown {kind} {name!r}{did_you_mean(name, self.plugins[kind])}")
        return found

    def get(self, kind: str, name: str) -> type:
        return self.info(kind, name).cls

    def create(self, kind: str, name: str, params: Optional[dict] = None) -> Plugin:
        return self.get(kind, name)(**(params or {}))

    def names(self, kind: str) -> list[str]:
        return sorted(self.plugins[kind])

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
