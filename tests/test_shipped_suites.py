"""Every suite under suites/ loads and expands, with and without each of its profiles."""
from pathlib import Path

import pytest
import yaml

from amrbench.suite import expand, load_suite

SUITES = sorted((Path(__file__).parent.parent / "suites").glob("*.yaml"))


def _profiles(path):
    return [None] + sorted((yaml.safe_load(path.read_text()) or {}).get("profiles") or {})


@pytest.mark.parametrize("path,profile", [(p, pr) for p in SUITES for pr in _profiles(p)],
                         ids=lambda v: v.stem if isinstance(v, Path) else str(v))
def test_shipped_suite_is_valid(path, profile):
    suite = load_suite(path, profile=profile)
    cells = expand(suite)
    assert cells and len({c["key"] for c in cells}) == len(cells)


@pytest.mark.parametrize("path,profile", [(p, pr) for p in SUITES for pr in _profiles(p)],
                         ids=lambda v: v.stem if isinstance(v, Path) else str(v))
def test_no_shipped_suite_trains_on_the_raw_l1_scale(path, profile):
    """RML2016's L1 windows (mean |x| about 0.005) leave PyTorch-initialised networks at
    chance: every entry that keeps that scale must standardise."""
    from amrbench.registry import default_registry

    for dataset in load_suite(path, profile=profile).datasets:
        plugin = default_registry().create("dataset", dataset["name"], dataset["params"])
        if getattr(plugin, "norm", lambda: None)() == "l1":
            assert dataset["standardize"], f"{path.name} {profile or 'default'}: {dataset['label']} is raw L1"


@pytest.mark.parametrize("path", [p for p in SUITES if "published" in (yaml.safe_load(p.read_text()) or {})],
                         ids=lambda p: p.stem)
def test_a_shipped_published_table_names_the_suites_labels(path):
    """The paper's table copied into a suite matches its own grid: a typo in a label
    would leave that block out of `amrbench agreement --against published`."""
    from amrbench.published import published_values
    from amrbench.tables import axis_labels, table_axes

    suite = load_suite(path)
    order = axis_labels(suite)
    rows_axis, cols_axis, _ = table_axes(suite.table)
    _, notes = published_values(suite.published, (rows_axis, cols_axis, []), set(), order)  # notes need no run
    assert notes == []
