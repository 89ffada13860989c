"""The committed records under results/ stay valid: every cell key they hold is still a
key of its suite's grid, and a sample of committed cells reruns to the same numbers, bit
for bit.

Stale records: a plugin's version is part of every cell key, so records made before a
plugin's version was raised (e.g. LSTM or HQA version 1) are kept in the folder but are no
longer cells of the grid; the leaderboard and tables leave them out (they render only the
records whose key the expanded grid holds). The key check therefore covers the records
whose ``config.versions`` equal what the current registry gives for the record's plugins,
and requires every other record to differ only by an older plugin version of the same
distribution, i.e. by a deliberate version bump, never by a changed key.
"""
import json
import math
import re
from pathlib import Path

import pytest

from amrbench.registry import default_registry
from amrbench.runner import environment
from amrbench.store import RecordStore, read_suite_meta
from amrbench.suite import expand, load_suite

REPO = Path(__file__).resolve().parent.parent
RESULTS = sorted(path.parent for path in (REPO / "results").glob("*/records.jsonl"))
VERSION = re.compile(r"^(?P<dist>.+==[^:]+):(?P<plugin>\d+)$")


def committed_suite(folder: Path):
    """The suite and profile that produced ``folder``'s records, as the leaderboard finds
    them (``suite.json``, else ``suites/<folder name>.yaml``); None when not shipped."""
    meta = read_suite_meta(folder)
    path = REPO / (meta.get("suite") or f"suites/{folder.name}.yaml")
    return load_suite(path, profile=meta.get("profile")) if path.exists() else None


def ok_records(folder: Path) -> dict:
    return {k: r for k, r in RecordStore(folder / "records.jsonl").latest().items() if r.get("status") == "ok"}


def current_versions(config: dict) -> dict:
    """The versions the current registry gives to the plugins a record's config names."""
    registry = default_registry()
    method_kind = registry.get("protocol", config["protocol"]).method_kind
    return {"protocol": registry.version_of("protocol", config["protocol"]),
            "dataset": registry.version_of("dataset", config["dataset"]["name"]),
            "method": registry.version_of(method_kind, config["method"]["name"]),
            "source": registry.version_of("model", config["model"]["source"]),
            "target": registry.version_of("model", config["model"]["target"])}


def older_plugin_version(stored: str, current: str) -> bool:
    """``stored`` is an earlier version of the same plugin of the same distribution."""
    old, new = VERSION.match(stored), VERSION.match(current)
    return bool(old and new and old["dist"] == new["dist"] and int(old["plugin"]) < int(new["plugin"]))


@pytest.mark.parametrize("folder", RESULTS, ids=lambda p: p.name)
def test_every_committed_key_is_a_cell_of_its_suite(folder):
    suite = committed_suite(folder)
    if suite is None:
        pytest.skip(f"{folder.name}: its suite is not shipped")
    records = ok_records(folder)
    if not records:
        pytest.skip(f"{folder.name}: no finished records")
    grid = {cell["key"]: cell for cell in expand(suite)}
    current = 0
    for key, record in records.items():
        stored, now = record["config"]["versions"], current_versions(record["config"])
        if stored == now:
            current += 1
            assert key in grid, f"{folder.name}: record {key[:12]} {record['labels']} is no longer a cell of its suite"
            assert record["labels"] == grid[key]["labels"], f"{folder.name}: record {key[:12]} changed labels"
        else:
            changed = {part: (stored.get(part), now[part]) for part in now if stored.get(part) != now[part]}
            assert all(older_plugin_version(*pair) for pair in changed.values()), \
                f"{folder.name}: record {key[:12]} {record['labels']} differs in versions other than a plugin bump: {changed}"
    assert current, f"{folder.name}: every record is stale"


# --------------------------------------------------------------------------- bit-for-bit reruns
# Cheapest committed cells of three families among the records that state their CPU and
# thread count (older records do not, and may come from another kind of CPU:
# docs/determinism.md). Seconds on a loaded 2-core machine, shared artifacts included;
# about 4 minutes in all, most of it the condense cell's whole-dataset AlexNets.
# No compress cell: the only compress records that state their CPU (hqarf_table1-quick)
# fit HQA for 450-800 s.
SAMPLE = [
    ("foqus_table1-quick",  # select, with its scoring run: 12-21 s
     {"dataset": "RML2016.10a", "model": "cnn2d", "method": "k-Center Greedy", "budget": "1%", "seed": 0}),
    ("explain_table-quick",  # explain, with its LSTM classifier: 29-37 s
     {"dataset": "toy", "model": "LSTM", "method": "Grad-CAM", "seed": 0}),
    ("mdm-table1-quick",  # condense, with its DM condensed set and whole-dataset AlexNets: 200-210 s
     {"dataset": "Sig2019-12-high", "model": "alexnet", "method": "DM", "budget": "SPC 10", "seed": 0}),
]


def is_clock_reading(name: str) -> bool:
    """Metrics that time the run (``train_time_s``, ``seconds_per_iteration``,
    ``encode_ms_per_signal``): they differ on every run and are not compared."""
    return name.endswith(("_time_s", "_ms_per_signal")) or "seconds" in name


def differences(stored, rerun, path="metrics"):
    """Paths where the two JSON trees differ; floats must be identical (NaN equals NaN)."""
    if isinstance(stored, dict) and isinstance(rerun, dict):
        for name in sorted(set(stored) | set(rerun)):
            if not is_clock_reading(name):
                yield from differences(stored.get(name, "<absent>"), rerun.get(name, "<absent>"), f"{path}.{name}")
    elif isinstance(stored, list) and isinstance(rerun, list) and len(stored) == len(rerun):
        for i, (a, b) in enumerate(zip(stored, rerun)):
            yield from differences(a, b, f"{path}[{i}]")
    elif not (type(stored) is type(rerun) and (repr(stored) == repr(rerun) or _both_nan(stored, rerun))):
        yield f"{path}: stored {stored!r}, rerun {rerun!r}"


def _both_nan(a, b) -> bool:
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


def as_stored(value):
    """A value as the record store writes and reads it back (JSON)."""
    return json.loads(json.dumps(value, allow_nan=True, default=str))


def committed_record(folder: Path, labels: dict) -> tuple:
    suite = committed_suite(folder)
    grid = {cell["key"]: cell for cell in expand(suite)}
    matches = [r for key, r in ok_records(folder).items()
               if key in grid and all(r["labels"].get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, f"{folder.name}: {len(matches)} current records match {labels}"
    return matches[0], grid[matches[0]["key"]]


@pytest.mark.slow
@pytest.mark.parametrize("folder,labels", SAMPLE, ids=[f"{f}:{l['method']}" for f, l in SAMPLE])
def test_committed_cell_reruns_bit_for_bit(folder, labels, isolated_cache):
    record, cell = committed_record(REPO / "results" / folder, labels)
    env, here = record.get("env") or {}, environment()
    if record.get("device", "cpu") != "cpu" or env.get("cpu_capability") is None or env.get("threads") is None:
        pytest.skip(f"{folder}: the record does not say which CPU kernels and threads made it")
    if env["cpu_capability"] != here["cpu_capability"]:
        pytest.skip(f"{folder}: the record was made with {env['cpu_capability']} kernels, this machine runs "
                    f"{here['cpu_capability']}: float32 numbers differ between them")
    options = {"device": "cpu", "threads": env["threads"], "jobs": 1, "cache": str(isolated_cache / "artifacts")}
    # the runner's own path (`amrbench run --jobs 1`): the shared artifacts the cell needs, then the cell
    (rerun,) = default_registry().create("executor", "local", {}).run([cell], options)
    assert rerun["status"] == "ok", rerun["error"]
    assert rerun["key"] == record["key"]
    diffs = list(differences(record["metrics"], as_stored(rerun["metrics"])))
    assert not diffs, f"{folder} {labels}: {len(diffs)} differences, first: " + "; ".join(diffs[:5])
