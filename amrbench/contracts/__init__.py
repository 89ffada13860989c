"""Contract tests: the behaviour every plugin of a kind must have, one pytest module per
kind (``test_models``, ``test_datasets``, ``test_selectors``, ``test_condensers``,
``test_compressors``, ``test_explainers``), each parametrised over the registered
plugins of its kind. Protocols and executors are covered by end-to-end runs instead.

The registry already refuses a class that breaks the *declared* contract (a missing
method, bad parameter declarations). These tests check what a class cannot declare: that
``build`` gives a network whose logits, embedding and head agree, that ``select`` keeps
the budget, that a codec's reconstruction has the signal's shape, and so on, on tiny
synthetic data in well under a second per plugin. Selectors, condensers and compressors
run in a real cell context (``fixtures.contract_context``): the shared resources they
need, such as a selector's scoring run, are computed by their family's code, on the
contracts' own tiny data set and network (``fixtures``), whatever else is installed.

Run them on every installed plugin, or on one distribution's (yours)::

    pytest --pyargs amrbench.contracts
    AMRBENCH_CONTRACT_DIST=my-selectors pytest --pyargs amrbench.contracts

``AMRBENCH_CONTRACT_DIST`` is a distribution name as pip spells it (``my_selectors`` and
``My-Selectors`` are the same); kinds it registers no plugin of are skipped, a name that
registers nothing at all is an error. amrbench's own test run includes these modules.

A plugin whose defaults are too slow for a contract (thousands of iterations, a paper-size
dataset) declares lighter parameters from the distribution that provides it: an entry
point in the ``amrbench.contracts`` group naming a module with ``LIGHT_PARAMS``, a
mapping kind -> plugin name -> parameters (merged over the plugin's ``defaults`` in every
contract), and optionally ``SLOW``, kind -> plugin names whose contract cases still take
seconds (marked ``slow``: ``-m "not slow"`` leaves them out, as amrbench's own run does)::

    # pyproject.toml
    [project.entry-points."amrbench.contracts"]
    my-selectors = "my_selectors.contract_params"

    # my_selectors/contract_params.py
    LIGHT_PARAMS = {"condenser": {"my-condenser": {"iterations": 2}}}

A distribution's declarations apply to its own plugins only. The built-ins declare theirs
the same way, in ``amrbench_plugins.contract_params`` (the core names no plugin).

Each check is also a plain function taking the plugin class (``check_*`` in each module),
so your own tests can call one on a class they build.
"""
from __future__ import annotations

import importlib.metadata
import os
from functools import lru_cache
from typing import Optional

from amrbench.basics import AmrbenchError
from amrbench.registry import default_registry, normalize_dist

#: The environment variable that restricts the contracts to one distribution's plugins.
DIST_VARIABLE = "AMRBENCH_CONTRACT_DIST"
#: The entry-point group of the modules that declare ``LIGHT_PARAMS`` and ``SLOW``.
PARAMS_GROUP = "amrbench.contracts"


def selected_dist() -> Optional[str]:
    """The distribution ``AMRBENCH_CONTRACT_DIST`` names (normalised), or None for all."""
    value = os.environ.get(DIST_VARIABLE, "").strip()
    return normalize_dist(value) if value else None


def plugin_names(kind: str, registry=None) -> list[str]:
    """The names the contracts of ``kind`` run on: every registered plugin of the kind
    (only those of ``AMRBENCH_CONTRACT_DIST`` when it is set), sorted; a name that
    several distributions register appears once per registration, as ``dist:name``."""
    registry = registry or default_registry()
    dist = selected_dist()
    if dist is not None:
        _check_dist_registers(registry, dist)
    names = []
    for name, infos in sorted(registry.registrations.get(kind, {}).items()):
        for info in infos:
            if dist is None or normalize_dist(info.dist) == dist:
                names.append(name if len(infos) == 1 else f"{normalize_dist(info.dist)}:{name}")
    return names


def _check_dist_registers(registry, dist: str) -> None:
    """A distribution name that registers no plugin at all is a typo, not a pass."""
    found = {normalize_dist(info.dist) for kind in registry.kinds()
             for infos in registry.registrations[kind].values() for info in infos}
    if dist not in found:
        raise AmrbenchError(f"{DIST_VARIABLE}={os.environ.get(DIST_VARIABLE)!r} registers no plugin; "
                            f"distributions with plugins: {', '.join(sorted(found))}")


def plugin_class(kind: str, name: str, registry=None) -> type:
    """The class ``name`` (as ``plugin_names`` gives it) stands for."""
    return (registry or default_registry()).get(kind, name)


# --------------------------------------------------------------------------- declarations
@lru_cache(maxsize=None)
def _declarations() -> dict:
    """(normalised dist, kind, name) -> {"params": dict, "slow": bool} from every module of
    the ``amrbench.contracts`` entry-point group, each for its own distribution."""
    declared = {}
    for ep in sorted(importlib.metadata.entry_points(group=PARAMS_GROUP), key=lambda e: (e.name, e.value)):
        dist = normalize_dist(ep.dist.name) if ep.dist else "?"
        module = ep.load()
        light, slow = getattr(module, "LIGHT_PARAMS", {}), getattr(module, "SLOW", {})
        _check_tables(ep, light, slow)
        for kind, table in light.items():
            for name, params in table.items():
                declared.setdefault((dist, kind, name), {"params": {}, "slow": False})["params"] = dict(params)
        for kind, names in slow.items():
            for name in names:
                declared.setdefault((dist, kind, name), {"params": {}, "slow": False})["slow"] = True
    return declared


def _check_tables(ep, light, slow) -> None:
    where = f"entry point {ep.name} = {ep.value} (group {PARAMS_GROUP})"
    if not (isinstance(light, dict) and all(isinstance(t, dict) and all(isinstance(p, dict) for p in t.values())
                                            for t in light.values())):
        raise AmrbenchError(f"{where}: LIGHT_PARAMS must map kind -> plugin name -> parameters (a dict)")
    if not (isinstance(slow, dict) and all(isinstance(n, (list, tuple, set)) for n in slow.values())):
        raise AmrbenchError(f"{where}: SLOW must map kind -> a list of plugin names")


def _declaration(kind: str, name: str, registry=None) -> dict:
    info = (registry or default_registry()).info(kind, name)
    return _declarations().get((normalize_dist(info.dist), kind, info.cls.name), {"params": {}, "slow": False})


def light_params(kind: str, name: str, registry=None) -> dict:
    """The parameters the plugin's distribution declares for its contract ({} if none)."""
    return dict(_declaration(kind, name, registry)["params"])


def plugin_cases(kind: str) -> list:
    """``plugin_names(kind)`` as pytest parameters, ``slow``-marked where declared."""
    import pytest

    return [pytest.param(name, id=name, marks=[pytest.mark.slow] if _declaration(kind, name)["slow"] else [])
            for name in plugin_names(kind)]
