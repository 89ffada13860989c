"""Shared resources cells read through ``ctx.resource(kind)``: computed once per
(dataset, model, seed, settings) and reused by every method and budget of a grid.

- ``dataset``: the (train, test) SignalSets of the cell's dataset spec (memoised in the
  process; generators cache their output on disk themselves). With the protocol setting
  ``validation_fraction`` the train part is the training split less its validation
  holdout (:func:`validation_splits`), so no scoring run, selector or training sees it.
- every other kind is a family's: registered with ``registry.add_resource(kind, config,
  compute)`` from its ``amrbench_register`` hook (the select family's ``dynamics``, the
  condense family's ``condensed``, ...), computed once per config and stored in the
  artifact cache.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Optional

from amrbench.api import AmrbenchError, Context, SignalSet, derive_seed
from amrbench.cache import stable_hash
from amrbench.data.splits import filter_snr, standardize_channels, stratified_split
from amrbench.suite import dataset_config, normalise


_MEMO: "OrderedDict[str, Any]" = OrderedDict()
_MEMO_SIZE = 8


def _memo(key: str, make: Callable[[], Any]) -> Any:
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    value = make()
    _MEMO[key] = value
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return value


def load_splits(registry, spec: dict) -> tuple[SignalSet, SignalSet]:
    """Resolve a dataset spec to its seeded, SNR-filtered, stratified (train, test),
    standardised per channel with the training split's statistics when asked. A spec
    that carries a file's fingerprint (a cell's config) is refused when the file has
    changed since: its records would be filed under the old contents' key."""
    def make():
        plugin = registry.create("dataset", spec["name"], spec.get("params"))
        _check_fingerprint(plugin, spec)
        snr = tuple(spec["snr"]) if spec.get("snr") else None
        data = filter_snr(plugin.load(seed=spec.get("seed", 0), snr=snr), snr)
        if len(data) == 0:
            raise AmrbenchError(f"dataset {spec['name']!r}: no signals left after the SNR filter {spec.get('snr')}; "
                                "widen snr or drop it")
        splits = stratified_split(data, spec.get("test_fraction", 0.2), derive_seed(spec.get("seed", 0), "split"),
                                  snr_bins=spec.get("snr_bins"), exact=spec.get("split") == "exact")
        return standardize_channels(*splits) if spec.get("standardize") else splits

    # keyed by what decides the data, not the label: a suite's entry and a cell's config
    # share one memo entry
    return _memo("dataset:" + stable_hash(dataset_config(spec), 24), make)


def _check_fingerprint(plugin, spec: dict) -> None:
    expected = spec.get("fingerprint")
    if expected is not None and normalise(plugin.fingerprint()) != normalise(expected):
        raise AmrbenchError(f"dataset {spec['name']!r}: {spec['params'].get('path')} changed after the suite was "
                            "loaded (its content fingerprint differs); rerun the suite to key its cells by the new "
                            "contents")


def artifact_config(ctx: Context, kind: str) -> dict:
    """What a shared artifact depends on (its cache key); with a validation holdout also
    its fraction, since the artifact is then computed on the training split less it."""
    config = ctx.registry.resource(kind).config(ctx)
    fraction = validation_fraction(ctx.cell)
    return {**config, "validation_fraction": fraction} if fraction else config


def get(ctx: Context, kind: str, **spec) -> Any:
    if kind == "dataset":
        if spec.get("spec"):
            return load_splits(ctx.registry, spec["spec"])
        train, test, _ = validation_splits(ctx.registry, ctx.cell)
        return train, test
    config = artifact_config(ctx, kind)
    compute = ctx.registry.resource(kind).compute
    key = f"{kind}:{stable_hash(config, 24)}"
    return _memo(key, lambda: ctx.cache.get_or_compute(kind, config, lambda: compute(ctx)))


# --------------------------------------------------------------------------- validation
def validation_fraction(cell: dict) -> float:
    """The share of the training split a cell holds out for validation (the protocol
    setting ``validation_fraction``; 0, the default, holds out nothing)."""
    return float((cell.get("settings") or {}).get("validation_fraction") or 0)


def validation_splits(registry, cell: dict) -> tuple[SignalSet, SignalSet, Optional[SignalSet]]:
    """(train, test, validation) of a cell. With ``validation_fraction`` f, f of every
    (class, SNR) group of the training split (stratified as the train/test split, with
    the dataset's ``snr_bins`` and ``split``) is held out, seeded by the dataset's seed
    alone, so every method, rate and seed of a dataset shares one validation set, as
    they share the test split; train is the rest. Without it, validation is None. The
    channel standardisation (``standardize: true``) keeps the whole training split's
    statistics: the holdout changes which signals train, not how they are scaled."""
    spec = cell["dataset"]
    train, test = load_splits(registry, spec)
    fraction = validation_fraction(cell)
    if not fraction:
        return train, test, None

    def make():
        rest, held = stratified_split(train, fraction, derive_seed(spec.get("seed", 0), "validation"),
                                      snr_bins=spec.get("snr_bins"), exact=spec.get("split") == "exact")
        if len(held) == 0:
            raise AmrbenchError(f"dataset {spec['name']!r}: settings.validation_fraction {fraction:g} holds out no "
                                f"signal of its {len(train)} training signals; raise it")
        return rest, held

    rest, held = _memo("validation:" + stable_hash({"dataset": dataset_config(spec), "fraction": fraction}, 24),
                       make)
    return rest, test, held
