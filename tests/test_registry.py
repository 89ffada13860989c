import importlib
import importlib.metadata
import sys
import textwrap
import types

import pytest

from amrbench.api import AmrbenchError
from amrbench.cli import main
from amrbench.listing import list_plugins
from amrbench.registry import Registry
from amrbench.suite import load_suite
from tests.conftest import REPO, TINY_SUITE, fake_distribution

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


# --- name conflicts: one kind and name from several distributions ---

SHADOW_UNIFORM = """
    from amrbench.api import Selection, Selector
    from amrbench.hookspecs import hookimpl

    class ShadowUniform(Selector):
        '''A third party's selector that happens to be called uniform.'''
        name = "uniform"
        defaults = {}

        def select(self, ctx, train, budget):
            return Selection(list(range(len(train))))

    @hookimpl
    def amrbench_register(registry):
        registry.add(ShadowUniform)
"""


def shadow_module(module_name="shadow_uniform"):
    """A fresh module object from SHADOW_UNIFORM (a new class object on every call)."""
    module = types.ModuleType(module_name)
    exec(textwrap.dedent(SHADOW_UNIFORM), module.__dict__)
    return module


# what a registry without any third party gives; these strings enter cell keys
CLEAN_VERSIONS = {name: f"amrbench=={importlib.metadata.version('amrbench')}:1" for name in ("uniform", "herding")}


def builtin_uniform():
    return importlib.import_module("amrbench_plugins.select.uniform").Uniform


def assert_uniform_conflict(registry, other="my-selectors"):
    """Bare name refused naming both sources; dist:name picks each (any spelling of the
    distribution); the built-in's version string is the one a clean registry gives."""
    with pytest.raises(AmrbenchError, match=rf"selector 'uniform' is registered by several distributions: "
                                            rf".*amrbench 0\.1\.0.*{other}.*'amrbench:uniform' or '{other}:uniform'"):
        registry.get("selector", "uniform")
    assert registry.get("selector", "amrbench:uniform") is builtin_uniform()
    assert registry.get("selector", f"{other}:uniform").__name__ == "ShadowUniform"
    assert registry.get("selector", f"{other.upper().replace('-', '_')}:uniform").__name__ == "ShadowUniform"
    assert registry.names("selector").count("uniform") == 1
    assert registry.version_of("selector", "amrbench:uniform") == CLEAN_VERSIONS["uniform"]
    assert registry.version_of("selector", "herding") == CLEAN_VERSIONS["herding"]
    assert [(c.kind, c.name) for c in registry.conflicts()] == [("selector", "uniform")]


@pytest.mark.parametrize("hand_first", [True, False])
def test_hand_registered_namesake_conflicts_with_the_builtin(hand_first):
    registry = Registry()
    if hand_first:
        registry.register_module(shadow_module(), dist="my-selectors")
    registry.load_entry_points()
    if not hand_first:
        registry.register_module(shadow_module(), dist="my-selectors")
    assert_uniform_conflict(registry)
    with pytest.raises(AmrbenchError, match="is registered by several distributions"):
        registry.plugins["selector"]["uniform"]
    assert registry.plugins["selector"]["herding"].dist == "amrbench"


@pytest.mark.parametrize("entry_point", ["aaa-uniform", "selector-uniform", "zzz-uniform"])
def test_installed_namesake_conflicts_whichever_way_its_entry_point_sorts(tmp_path, monkeypatch, entry_point):
    """Sorting before or after the built-in's entry point, or reusing its very name,
    the third party neither shadows the built-in nor is dropped."""
    root = fake_distribution(tmp_path / "site", "my-selectors", {"shadow_uniform": SHADOW_UNIFORM},
                             {entry_point: "shadow_uniform"})
    monkeypatch.syspath_prepend(str(root))
    registry = Registry().load_entry_points()
    assert_uniform_conflict(registry)
    listing = list_plugins(registry, "selectors")
    assert "conflicts (1)" in listing and "amrbench:uniform" in listing and "my-selectors:uniform" in listing
    assert "conflicts (1)" in list_plugins(registry)
    assert "conflicts" not in list_plugins(registry, "models")


def test_suite_naming_a_conflicting_plugin_bare_exits_2_and_dist_name_works(tmp_path, monkeypatch, write_suite, capsys):
    root = fake_distribution(tmp_path / "site", "my-selectors", {"shadow_uniform": SHADOW_UNIFORM},
                             {"my-uniform": "shadow_uniform"})
    monkeypatch.syspath_prepend(str(root))
    assert main(["run", str(write_suite()), "--results", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "amrbench 0.1.0" in err and "my-selectors 0.1" in err and "'my-selectors:uniform'" in err
    suite = load_suite(write_suite(TINY_SUITE.replace("[uniform, herding]", "[amrbench:uniform, my-selectors:uniform]"),
                                   name="picked.yaml"))
    assert [m["name"] for m in suite.methods] == ["amrbench:uniform", "my-selectors:uniform"]


def test_dist_name_works_for_plugins_without_a_conflict():
    registry = Registry().load_entry_points()
    assert {name: registry.version_of("selector", name) for name in CLEAN_VERSIONS} == CLEAN_VERSIONS
    assert registry.info("selector", "amrbench:herding") is registry.info("selector", "herding")
    assert registry.version_of("selector", "Amrbench:herding") == registry.version_of("selector", "herding")
    with pytest.raises(AmrbenchError, match=r"selector 'other:herding': distribution 'other' does not provide "
                                            r"'herding'; it is registered as amrbench:herding"):
        registry.get("selector", "other:herding")
    with pytest.raises(AmrbenchError, match=r"unknown selector 'unifrom' \(did you mean 'uniform'"):
        registry.get("selector", "amrbench:unifrom")


def test_one_class_registered_twice_by_one_distribution_is_no_conflict():
    registry = Registry().load_entry_points()
    module = shadow_module()
    registry.register_module(module, dist="my-selectors")
    registry.register_module(module, dist="my-selectors")  # by hand, twice
    registry.pm.unregister(module)
    registry.register_module(module, dist="my-selectors")  # pluggy re-registration
    registry.register_module(shadow_module(), name="reloaded", dist="My_Selectors")  # a reloaded module
    registry.load_entry_points()  # every entry point a second time
    assert [i.dist for i in registry.registrations["selector"]["uniform"]] == ["amrbench", "my-selectors"]
    assert len(registry.registrations["selector"]["herding"]) == 1
    assert registry.get("selector", "my-selectors:uniform").__name__ == "ShadowUniform"


def test_list_of_one_kind_shows_the_broken_plugins(tmp_path, monkeypatch, capsys):
    root = fake_distribution(tmp_path / "site", "broken-dist", {"broken_mod": "raise ImportError('needs libfoo')"},
                             {"broken-one": "broken_mod"})
    monkeypatch.syspath_prepend(str(root))
    assert main(["list", "selectors"]) == 0
    out = capsys.readouterr().out
    assert "broken (1)" in out and "broken-one" in out and "needs libfoo" in out
    registry = Registry().load_entry_points().load_entry_points()
    assert [b.entry_point for b in registry.broken] == ["broken-one"]  # reported once
