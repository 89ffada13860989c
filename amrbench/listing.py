"""``amrbench list``: every registered plugin by kind, its description and distribution;
broken plugins with their error; reporters (hook-only plugins)."""
from __future__ import annotations

from tabulate import tabulate

from amrbench.api import KINDS, AmrbenchError, did_you_mean


def _model_params(cls) -> str:
    try:
        net = cls().build(11, 128)
        return f"{sum(p.numel() for p in net.parameters()):,}"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


def list_plugins(registry, kind=None) -> str:
    kinds = list(KINDS)
    if kind:
        singular = kind[:-1] if kind.endswith("s") else kind
        if singular not in KINDS and singular != "reporter":
            raise AmrbenchError(f"unknown kind {kind!r}{did_you_mean(kind, [k + 's' for k in KINDS] + ['reporters'])}")
        kinds = [singular]
    parts = []
    for k in kinds:
        if k == "reporter":
            continue
        rows = []
        for name in registry.names(k):
            info = registry.plugins[k][name]
            row = [name, info.cls.description(), f"{info.dist} {info.dist_version}".strip()]
            if k == "model":
                row.insert(1, info.cls.input_format)
                row.insert(2, _model_params(info.cls))
            rows.append(row)
        headers = ["name", "description", "from"]
        if k == "model":
            headers = ["name", "input", "params (L=128, 11 cls)", "description", "from"]
        parts.append(f"{k}s ({len(rows)})\n" + (tabulate(rows, headers=headers, disable_numparse=True) if rows else "  (none)"))
    if kind in (None, "reporter", "reporters"):
        reporters = sorted(name for name, plugin in registry.pm.list_name_plugin()
                           if plugin is not None and hasattr(plugin, "amrbench_cell_done"))
        parts.append(f"reporters ({len(reporters)})\n" + ("\n".join("  " + r for r in reporters) or "  (none)"))
    if registry.broken and kind is None:
        rows = [[b.entry_point, b.dist, b.error] for b in registry.broken]
        parts.append(f"broken ({len(rows)}): failed to load, the others work\n" +
                     tabulate(rows, headers=["entry point", "from", "error"], disable_numparse=True))
    return "\n\n".join(parts)
