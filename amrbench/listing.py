"""``amrbench list``: every registered plugin by kind, its description and distribution;
conflicts (one name registered by several distributions); broken plugins with their
error; reporters (hook-only plugins).

A broken entry point failed before it could say what it registers, so its kind is
unknown: ``amrbench list <kind>`` shows every broken plugin, not a guess."""
from __future__ import annotations

from tabulate import tabulate

from amrbench.api import KINDS, AmrbenchError, did_you_mean
from amrbench.registry import normalize_dist


def _model_params(cls) -> str:
    try:
        net = cls().build(11, 128)
        return f"{sum(p.numel() for p in net.parameters()):,}"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


def _selected_kind(kind):
    """The singular kind ``kind`` names (``selectors`` -> ``selector``), None for all."""
    if not kind:
        return None
    singular = kind[:-1] if kind.endswith("s") else kind
    if singular not in KINDS and singular != "reporter":
        raise AmrbenchError(f"unknown kind {kind!r}{did_you_mean(kind, [k + 's' for k in KINDS] + ['reporters'])}")
    return singular


def _kind_table(registry, kind: str) -> str:
    """One row per registration; a conflicting name is shown as ``dist:name``, the
    spelling that picks it."""
    rows = []
    for name in registry.names(kind):
        infos = registry.registrations[kind][name]
        for info in infos:
            shown = f"{normalize_dist(info.dist)}:{name}" if len(infos) > 1 else name
            row = [shown, info.cls.description(), f"{info.dist} {info.dist_version}".strip()]
            if kind == "model":
                row[1:1] = [info.cls.input_format, _model_params(info.cls)]
            rows.append(row)
    headers = ["name", "description", "from"]
    if kind == "model":
        headers = ["name", "input", "params (L=128, 11 cls)", "description", "from"]
    return f"{kind}s ({len(rows)})\n" + (tabulate(rows, headers=headers, disable_numparse=True) if rows else "  (none)")


def _conflicts_table(conflicts) -> str:
    rows = [[c.name, c.kind, "; ".join(info.source for info in c.infos), " or ".join(c.choices())] for c in conflicts]
    return (f"conflicts ({len(rows)}): one name from several distributions; a suite must name one as dist:name\n"
            + tabulate(rows, headers=["name", "kind", "from", "name it as"], disable_numparse=True))


def _broken_table(broken) -> str:
    rows = [[b.entry_point, b.dist, b.error] for b in broken]
    return (f"broken ({len(rows)}): failed to load (kind unknown, so every kind lists them), the others work\n"
            + tabulate(rows, headers=["entry point", "from", "error"], disable_numparse=True))


def list_plugins(registry, kind=None) -> str:
    selected = _selected_kind(kind)
    kinds = [selected] if selected else list(KINDS)
    parts = [_kind_table(registry, k) for k in kinds if k != "reporter"]
    if selected in (None, "reporter"):
        reporters = sorted(name for name, plugin in registry.pm.list_name_plugin()
                           if plugin is not None and hasattr(plugin, "amrbench_cell_done"))
        parts.append(f"reporters ({len(reporters)})\n" + ("\n".join("  " + r for r in reporters) or "  (none)"))
    conflicts = [c for k in kinds if k != "reporter" for c in registry.conflicts(k)]
    if conflicts:
        parts.append(_conflicts_table(conflicts))
    if registry.broken:
        parts.append(_broken_table(registry.broken))
    return "\n\n".join(parts)
