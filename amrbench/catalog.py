"""What ``amrbench list`` and ``amrbench datasets list`` show, without importing torch.

Reading a plugin's kind, name and description means importing it, and every plugin
imports torch (seconds). The catalogue holds that metadata (plus each model's input
format and parameter count) as JSON in the cache folder, built once with the full import
and reused while its *key* matches: the entry points of the ``amrbench`` group with their
distributions' names and versions, the distributions installed on ``sys.path``, and the
size and mtime of every source file of the packages the entry points live in (and of
amrbench itself), so installing, upgrading, or editing an editable plugin refreshes it.

Only listing reads the catalogue: running anything loads the real plugins through
:func:`amrbench.registry.default_registry`. A catalogue holding broken plugins is not
stored, so a fixed plugin (a library installed outside pip, say) is seen at once.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

from amrbench.registry import GROUP, BrokenPlugin, Conflict, normalize_dist

FORMAT = "amrbench-plugin-catalog/2"
MODEL_SIZE_ARGS = (11, 128)  # num_classes, signal length of the parameter count `list` shows
_INSTALL_MARKERS = (".dist-info", ".egg-info", ".egg-link", ".pth")


@dataclass(frozen=True)
class PluginMeta:
    """One registration: what ``amrbench list`` shows of it."""

    kind: str
    name: str
    description: str
    version: str
    dist: str
    dist_version: str
    entry_point: str
    input_format: str = ""  # models only
    params: str = ""        # models only: parameter count at MODEL_SIZE_ARGS, or "error: ..."

    @property
    def source(self) -> str:
        """Where it came from, as :attr:`amrbench.registry.PluginInfo.source` says it."""
        return f"{self.dist} {self.dist_version}".strip() + f" (entry point {self.entry_point})"


@dataclass
class Catalog:
    plugins: list = field(default_factory=list)    # PluginMeta
    broken: list = field(default_factory=list)     # BrokenPlugin (traceback left empty)
    reporters: list = field(default_factory=list)  # names of hook-only plugins
    artifact_times: dict = field(default_factory=dict)  # shared-resource kind -> record metric of its time

    def names(self, kind: str) -> list:
        """Each registered name of ``kind`` once, sorted, conflicting ones included."""
        return sorted({p.name for p in self.plugins if p.kind == kind})

    def registrations(self, kind: str, name: str) -> list:
        return sorted((p for p in self.plugins if p.kind == kind and p.name == name),
                      key=lambda p: (normalize_dist(p.dist), p.entry_point))

    def conflicts(self, kind: str) -> list:
        """Every name of ``kind`` registered more than once, as the registry reports them."""
        return [Conflict(kind, name, infos) for name in self.names(kind)
                if len(infos := self.registrations(kind, name)) > 1]

    def to_json(self) -> dict:
        return {"plugins": [asdict(p) for p in self.plugins], "reporters": list(self.reporters),
                "broken": [{**asdict(b), "traceback": ""} for b in self.broken],
                "artifact_times": dict(self.artifact_times)}

    @classmethod
    def from_json(cls, data: dict) -> "Catalog":
        return cls([PluginMeta(**p) for p in data["plugins"]], [BrokenPlugin(**b) for b in data["broken"]],
                   list(data["reporters"]), dict(data["artifact_times"]))

    @classmethod
    def from_registry(cls, registry, kinds: Optional[Iterable[str]] = None) -> "Catalog":
        """The metadata of a loaded registry (of ``kinds`` only when given: a model's
        parameter count means building it)."""
        wanted = set(kinds) if kinds is not None else set(registry.registrations)
        plugins = [_describe(kind, info) for kind in sorted(wanted) for infos in registry.registrations[kind].values()
                   for info in infos]
        reporters = sorted(name for name, plugin in registry.pm.list_name_plugin()
                           if plugin is not None and hasattr(plugin, "amrbench_cell_done"))
        times = {kind: r.time_metric for kind, r in sorted(registry.resources.items()) if r.time_metric}
        return cls(plugins, list(registry.broken), reporters, times)


def _describe(kind: str, info) -> PluginMeta:
    meta = PluginMeta(kind, info.cls.name, info.cls.description(), str(info.cls.version), info.dist,
                      info.dist_version, info.entry_point)
    if kind != "model":
        return meta
    return PluginMeta(**{**asdict(meta), "input_format": str(info.cls.input_format),
                         "params": _model_params(info.cls)})


def _model_params(cls) -> str:
    try:
        net = cls().build(*MODEL_SIZE_ARGS)
        return f"{sum(p.numel() for p in net.parameters()):,}"
    except Exception as exc:  # a model that cannot be built is still listed
        return f"error: {type(exc).__name__}"


# --------------------------------------------------------------------------- the key
def _installed_distributions() -> list:
    """The install records (``name-version.dist-info`` and the like) on ``sys.path``:
    any install, upgrade or removal changes this list."""
    found = []
    for entry in dict.fromkeys(sys.path):
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        found.append(sorted(n for n in names if n.endswith(_INSTALL_MARKERS)))
    return found


def _python_files(root: str) -> Iterator[str]:
    """``root`` itself when it is a file, else every ``.py`` file below it."""
    if os.path.isfile(root):
        yield root
        return
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        yield from (os.path.join(folder, name) for name in names if name.endswith(".py"))


def _source_files(package: str) -> list:
    """(path, size, mtime) of every ``.py`` file of a top-level module or package, found
    without importing it; [package, "missing"] when it cannot be found (a broken entry
    point, until it appears)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return [package, "missing"]
    files = []
    for root in list(spec.submodule_search_locations or []) or [spec.origin or ""]:
        for path in _python_files(root):
            try:
                st = os.stat(path)
            except OSError:  # removed while we looked
                continue
            files.append((path, st.st_size, st.st_mtime_ns))
    return sorted(files)


def _entry_points() -> list:
    """(distribution, version, name, value) of each entry point of the group; each
    distribution's metadata is parsed once (``ep.dist.name`` parses it on every call)."""
    dists, rows = {}, []
    for ep in importlib.metadata.entry_points(group=GROUP):  # holds every ep.dist: their ids stay unique
        if id(ep.dist) not in dists:
            meta = ep.dist.metadata if ep.dist else {}
            dists[id(ep.dist)] = (meta.get("Name") or "?", meta.get("Version") or "?")
        rows.append((*dists[id(ep.dist)], ep.name, ep.value))
    return sorted(rows)


def _plugin_packages(entry_points: list) -> set:
    """The top-level packages (or modules) the entry points live in."""
    return {value.split(":")[0].split(".")[0].strip() for *_, value in entry_points}


def environment_key() -> str:
    """What the catalogue depends on, hashed: see the module docstring."""
    from amrbench import __version__

    eps = _entry_points()
    packages = sorted(_plugin_packages(eps) | {"amrbench"})
    state = {"format": FORMAT, "python": sys.version, "amrbench": __version__, "entry_points": eps,
             "installed": _installed_distributions(), "sources": [_source_files(p) for p in packages]}
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- the cache
def catalog_path() -> Path:
    """One file per Python environment, so two virtual environments sharing a cache
    folder do not overwrite each other's catalogue."""
    from amrbench.cache import cache_root

    prefix = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    return cache_root() / f"plugin-catalog-{prefix}.json"


def _read(path: Path, key: str) -> Optional[Catalog]:
    """The stored catalogue when it was built for ``key``; None when absent, built for
    another key, or unreadable (then it is rebuilt)."""
    try:
        data = json.loads(path.read_text())
        if data.get("format") == FORMAT and data.get("key") == key:
            return Catalog.from_json(data["catalog"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def save_catalog(catalog: Catalog, key: str) -> None:
    """Store ``catalog`` for ``key`` atomically (a temporary file, then a rename); a
    read-only cache folder only costs the next listing its speed."""
    path = catalog_path()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"format": FORMAT, "key": key, "catalog": catalog.to_json()}))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def cached_catalog() -> Optional[Catalog]:
    """The stored catalogue when it is current, else None (never imports a plugin)."""
    return _read(catalog_path(), environment_key())


def load_catalog(refresh: bool = False) -> Catalog:
    """The installed plugins' metadata: from the cache when its key still matches, else
    by loading every plugin (the full, slow import) into a fresh registry.

    The result is stored only when this process imported the plugins itself: one that
    had loaded them before (a notebook, a test session) may hold older code than the
    files the key describes. Nor is a catalogue with broken plugins stored."""
    key = environment_key()
    cached = None if refresh else _read(catalog_path(), key)
    if cached is not None:
        return cached
    from amrbench.registry import Registry

    loaded_before = (_plugin_packages(_entry_points()) - {"amrbench"}) & set(sys.modules)  # the core is always loaded
    catalog = Catalog.from_registry(Registry().load_entry_points())
    if not catalog.broken and not loaded_before:
        save_catalog(catalog, key)
    return catalog
