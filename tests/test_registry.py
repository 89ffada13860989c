import importlib.metadata
import sys

import pytest

from amrbench.api import AmrbenchError
from amrbench.listing import list_plugins
from amrbench.registry import Registry
from tests.conftest import REPO, fake_distribution

EXAMPLE = REPO / "tests" / "example_plugin"


@pytest.fixture
def example_plugin_available(tmp_path, monkeypatch):
    """The example third-party distribution: really pip-installed in CI (.ci/run), else
    put on sys.path with its dist-info so the entry-point machinery sees it."""
    try:
        importlib.metadata.distribution("amrbench-example-selector")
    except importlib.metadata.PackageNotFoundError:
        source = (EXAMPLE / "amrbench_example_selector.py").read_text()
        root = fake_distribution(tmp_path / "site", "amrbench-example-selector", {"amrbench_example_selector": source},
                                 {"example-spread": "amrbench_example_selector"})
        monkeypatch.syspath_prepend(str(root))


def test_builtins_are_found_through_entry_points():
    registry = Registry().load_entry_points()
    assert {"uniform", "herding"} <= set(registry.names("selector"))
    info = registry.info("selector", "uniform")
    assert info.dist == "amrbench" and info.entry_point == "selector-uniform"
    assert "select" in registry.names("protocol") and "local" in registry.names("executor")


def test_third_party_selector_registers_from_its_own_distribution(example_plugin_available):
    registry = Registry().load_entry_points()
    info = registry.info("selector", "spread")
    assert info.dist == "amrbench-example-selector"
    assert "amrbench-example-selector" in list_plugins(registry, "selectors")


def test_broken_plugin_is_listed_and_the_others_still_load(tmp_path, monkeypatch):
    root = fake_distribution(tmp_path / "site", "broken-dist", {"broken_mod": "raise ImportError('needs libfoo')"},
                             {"broken-one": "broken_mod"})
    monkeypatch.syspath_prepend(str(root))
    registry = Registry().load_entry_points()
    assert "uniform" in registry.names("selector")
    assert [b.entry_point for b in registry.broken if b.dist == "broken-dist"] == ["broken-one"]
    listing = list_plugins(registry)
    assert "broken-one" in listing and "needs libfoo" in listing
    with pytest.raises(AmrbenchError, match="failed to load.*needs libfoo"):
        registry.get("selector", "broken-one")


def test_unknown_plugin_lists_the_registered_ones():
    registry = Registry().load_entry_points()
    with pytest.raises(AmrbenchError, match=r"unknown selector 'unifrom' \(did you mean 'uniform'.*allowed: .*herding"):
        registry.get("selector", "unifrom")


def test_plugin_parameters_are_validated():
    registry = Registry().load_entry_points()
    with pytest.raises(AmrbenchError, match=r"selector 'herding': unknown parameter 'embeding' \(did you mean 'embedding'"):
        registry.create("selector", "herding", {"embeding": "x"})


def test_a_failing_reporter_cannot_stop_a_run(tmp_path, monkeypatch):
    root = fake_distribution(tmp_path / "site", "bad-reporter", {"bad_reporter": """
        from amrbench.hookspecs import hookimpl

        @hookimpl
        def amrbench_cell_done(record):
            raise RuntimeError("boom")
    """}, {"bad-reporter": "bad_reporter"})
    monkeypatch.syspath_prepend(str(root))
    registry = Registry().load_entry_points()
    errors = registry.call_reporters("amrbench_cell_done", record={"labels": {}, "status": "ok"})
    assert any("boom" in e for e in errors)
