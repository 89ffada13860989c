"""``amrbench list``: every registered plugin by kind, its description and distribution;
conflicts (one name registered by several distributions); broken plugins with their
error; reporters (hook-only plugins). ``amrbench datasets list``: the dataset plugins.

Both read the plugin catalogue (:mod:`amrbench.catalog`), so they answer without
importing torch; given a loaded registry instead, they describe that one.

A broken entry point failed before it could say what it registers, so its kind is
unknown: ``amrbench list <kind>`` shows every broken plugin, not a guess."""
from __future__ import annotations

from tabulate import tabulate

from amrbench.basics import KINDS, AmrbenchError, did_you_mean
from amrbench.catalog import MODEL_SIZE_ARGS, Catalog, load_catalog
from amrbench.registry import normalize_dist


def _selected_kind(kind, known: list):
    """The singular kind ``kind`` names (``selectors`` -> ``selector``), None for all."""
    if not kind:
        return None
    singular = kind[:-1] if kind.endswith("s") else kind
    if singular not in known and singular != "reporter":
        raise AmrbenchError(f"unknown kind {kind!r}{did_you_mean(kind, [k + 's' for k in known] + ['reporters'])}")
    return singular


def _known_kinds(source) -> list:
    """The built-in kinds, then any a plugin family added (a new method kind)."""
    added = source.registrations if not isinstance(source, Catalog) else {p.kind for p in source.plugins}
    return list(KINDS) + sorted(set(added) - set(KINDS))


def _as_catalog(source, kinds) -> Catalog:
    """A catalogue as is; a loaded registry described (only ``kinds``: describing a
    model builds it)."""
    return source if isinstance(source, Catalog) else Catalog.from_registry(source, kinds)


def _shown_name(meta, registrations) -> str:
    """A conflicting name is shown as ``dist:name``, the spelling that picks it."""
    return f"{normalize_dist(meta.dist)}:{meta.name}" if len(registrations) > 1 else meta.name


def _kind_table(catalog: Catalog, kind: str) -> str:
    rows = []
    for name in catalog.names(kind):
        metas = catalog.registrations(kind, name)
        for meta in metas:
            row = [_shown_name(meta, metas), meta.description, f"{meta.dist} {meta.dist_version}".strip()]
            if kind == "model":
                row[1:1] = [meta.input_format, meta.params]
            rows.append(row)
    headers = ["name", "description", "from"]
    if kind == "model":
        classes, length = MODEL_SIZE_ARGS
        headers = ["name", "input", f"params (L={length}, {classes} cls)", "description", "from"]
    return f"{kind}s ({len(rows)})\n" + (tabulate(rows, headers=headers, disable_numparse=True) if rows else "  (none)")


def _conflicts_table(conflicts) -> str:
    rows = [[c.name, c.kind, "; ".join(info.source for info in c.infos), " or ".join(c.choices())] for c in conflicts]
    return (f"conflicts ({len(rows)}): one name from several distributions; a suite must name one as dist:name\n"
            + tabulate(rows, headers=["name", "kind", "from", "name it as"], disable_numparse=True))


def _broken_table(broken) -> str:
    rows = [[b.entry_point, b.dist, b.error] for b in broken]
    return (f"broken ({len(rows)}): failed to load (kind unknown, so every kind lists them), the others work\n"
            + tabulate(rows, headers=["entry point", "from", "error"], disable_numparse=True))


def list_plugins(source, kind=None) -> str:
    """The listing of ``source``, a :class:`Catalog` or a loaded registry; ``kind``
    (plural or singular, or ``reporters``) narrows it to one kind."""
    known = _known_kinds(source)
    selected = _selected_kind(kind, known)
    kinds = [selected] if selected else known
    plugin_kinds = [k for k in kinds if k != "reporter"]
    catalog = _as_catalog(source, plugin_kinds)
    parts = [_kind_table(catalog, k) for k in plugin_kinds]
    if selected in (None, "reporter"):
        reporters = catalog.reporters
        parts.append(f"reporters ({len(reporters)})\n" + ("\n".join("  " + r for r in reporters) or "  (none)"))
    conflicts = [c for k in plugin_kinds for c in catalog.conflicts(k)]
    if conflicts:
        parts.append(_conflicts_table(conflicts))
    if catalog.broken:
        parts.append(_broken_table(catalog.broken))
    return "\n\n".join(parts)


def list_datasets(args, registry=None) -> int:
    """``amrbench datasets list``: one line per dataset plugin (name, version,
    description), from the catalogue unless a loaded ``registry`` is given."""
    catalog = load_catalog() if registry is None else Catalog.from_registry(registry, ["dataset"])
    lines = []
    for name in catalog.names("dataset"):
        metas = catalog.registrations("dataset", name)
        lines += [(_shown_name(meta, metas), meta) for meta in metas]
    width = max((len(shown) for shown, _ in lines), default=4)
    for shown, meta in lines:
        print(f"{shown:<{width}}  v{meta.version}  {meta.description}")
    return 0
