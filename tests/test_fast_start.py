"""A newcomer's first commands start fast: ``amrbench --help`` and the listings import no
torch (they read the plugin catalogue), the catalogue is rebuilt whenever the plugins
change and never stored from code older than the files, and every option says what it
does."""
import argparse
import os
import subprocess
import sys
import textwrap

import pytest

import amrbench.registry
from amrbench import catalog
from amrbench.catalog import Catalog, PluginMeta, load_catalog
from amrbench.cli import build_parser
from tests.conftest import REPO, fake_distribution

# Stores a small catalogue for this environment's key (a conflict, a broken plugin and a
# model among it), runs main(argv) and reports whether torch was imported.
RUN_MAIN = textwrap.dedent("""
    import sys
    from amrbench import catalog
    from amrbench.registry import BrokenPlugin

    def meta(kind, name, description, dist, ep, *model):
        return catalog.PluginMeta(kind, name, description, "1", dist, "0.1", ep, *model)

    plugins = [meta("selector", "uniform", "Cached uniform", "amrbench", "selector-uniform"),
               meta("selector", "uniform", "Another uniform", "my-selectors", "uniform"),
               meta("model", "tiny", "Cached tiny net", "amrbench", "model-tiny", "iq", "1,234"),
               meta("dataset", "toy", "Cached toy set", "amrbench", "dataset-toy")]
    broken = [BrokenPlugin("broken-one", "broken_mod", "bad-dist", "ImportError: needs libfoo", "")]
    catalog.save_catalog(catalog.Catalog(plugins, broken, ["reporter-progress"]), catalog.environment_key())
    from amrbench.cli import main
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    print("torch imported:", "torch" in sys.modules, "exit:", code)
""")


def run_main(*argv, cache):
    env = {**os.environ, "AMRBENCH_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-c", RUN_MAIN, *argv], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)


@pytest.mark.parametrize("argv", [["--help"], ["list", "--help"], ["datasets", "--help"], ["condense", "--help"]])
def test_help_imports_no_torch(argv, isolated_cache):
    result = run_main(*argv, cache=isolated_cache)
    assert "torch imported: False exit: 0" in result.stdout, result.stderr


def test_list_reads_the_catalogue_without_torch_and_shows_conflicts_and_broken_plugins(isolated_cache):
    result = run_main("list", cache=isolated_cache)
    out = result.stdout
    assert "torch imported: False exit: 0" in out, result.stderr
    assert "Cached uniform" in out and "Cached tiny net" in out and "1,234" in out  # from the catalogue
    assert "conflicts (1)" in out and "amrbench:uniform" in out and "my-selectors:uniform" in out
    assert "broken (1)" in out and "needs libfoo" in out
    assert "reporter-progress" in out


def test_datasets_list_reads_the_catalogue_without_torch(isolated_cache):
    result = run_main("datasets", "list", cache=isolated_cache)
    assert "torch imported: False exit: 0" in result.stdout, result.stderr
    assert "toy  v1  Cached toy set" in result.stdout


# --------------------------------------------------------------------------- the catalogue
SELECTOR = """
from amrbench.api import Selector
import pluggy

hookimpl = pluggy.HookimplMarker("amrbench")


class Picky(Selector):
    \"\"\"{description}\"\"\"

    name = "picky"

    def select(self, ctx, train, budget):
        raise NotImplementedError("never run: these tests only list it")


@hookimpl
def amrbench_register(registry):
    registry.add(Picky)
"""


class FakePlugins:
    """Fake distributions as the only plugins installed; ``builds`` counts catalogue builds."""

    def __init__(self, tmp_path, monkeypatch):
        self.tmp_path, self.monkeypatch = tmp_path, monkeypatch
        self.dists, self.builds = set(), []
        everything = catalog.importlib.metadata.entry_points
        monkeypatch.setattr(catalog.importlib.metadata, "entry_points", lambda **kw: [
            ep for ep in everything(**kw) if ep.dist is not None and ep.dist.metadata["Name"] in self.dists])
        real = Catalog.from_registry.__func__
        monkeypatch.setattr(Catalog, "from_registry",
                            classmethod(lambda cls, *a, **k: self.builds.append(1) or real(cls, *a, **k)))

    def install(self, dist: str, module: str, name: str, description: str):
        """A selector ``name`` in a module not imported yet, on a new sys.path folder."""
        source = SELECTOR.format(description=description).replace('"picky"', repr(name))
        root = fake_distribution(self.tmp_path / dist, dist, {module: source}, {f"selector-{name}": module})
        self.monkeypatch.syspath_prepend(str(root))
        self.monkeypatch.delitem(sys.modules, module, raising=False)
        self.dists.add(dist)
        return root / f"{module}.py"


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    return FakePlugins(tmp_path, monkeypatch)


def test_catalogue_is_built_once_then_reused(fake_plugins):
    fake_plugins.install("picky-selectors", "picky_sel", "picky", "First words.")
    first = load_catalog()
    assert [(p.kind, p.name, p.description, p.dist) for p in first.plugins] == [
        ("selector", "picky", "First words.", "picky-selectors")]
    assert load_catalog() == first and len(fake_plugins.builds) == 1


def test_an_edited_plugin_refreshes_the_catalogue_and_stale_code_is_never_stored(fake_plugins):
    source = fake_plugins.install("picky-selectors", "picky_sel", "picky", "First words.")
    load_catalog()
    # a different size too: the key changes even where file times are coarse
    source.write_text(textwrap.dedent(SELECTOR.format(description="Edited words, a longer line.")))
    # this process still holds the old module: it lists that, but must not store it under the new key
    assert load_catalog().plugins[0].description == "First words." and len(fake_plugins.builds) == 2
    del sys.modules["picky_sel"]  # as a fresh process would: import the edited file
    assert load_catalog().plugins[0].description == "Edited words, a longer line." and len(fake_plugins.builds) == 3
    assert load_catalog().plugins[0].description == "Edited words, a longer line." and len(fake_plugins.builds) == 3


def test_a_newly_installed_plugin_refreshes_the_catalogue(fake_plugins):
    fake_plugins.install("picky-selectors", "picky_sel", "picky", "First words.")
    load_catalog()
    fake_plugins.install("other-selectors", "other_sel", "other", "Second.")
    assert [p.name for p in load_catalog().plugins] == ["other", "picky"] and len(fake_plugins.builds) == 2


def test_an_upgraded_distribution_refreshes_the_catalogue(fake_plugins):
    source = fake_plugins.install("picky-selectors", "picky_sel", "picky", "First words.")
    assert load_catalog().plugins[0].dist_version == "0.1"
    metadata = source.parent / "picky_selectors-0.1.dist-info" / "METADATA"
    metadata.write_text(metadata.read_text().replace("Version: 0.1", "Version: 0.2"))
    assert load_catalog().plugins[0].dist_version == "0.2" and len(fake_plugins.builds) == 2


def test_a_catalogue_with_broken_plugins_is_not_stored(fake_plugins):
    source = fake_plugins.install("picky-selectors", "picky_sel", "picky", "First words.")
    source.write_text("raise ImportError('needs libfoo')\n")
    assert "needs libfoo" in load_catalog().broken[0].error
    load_catalog()
    assert len(fake_plugins.builds) == 2


def test_a_registry_and_its_catalogue_list_alike():
    registry = amrbench.registry.default_registry()
    from amrbench.listing import list_plugins

    stored = Catalog.from_json(Catalog.from_registry(registry, ["selector", "dataset"]).to_json())
    assert list_plugins(stored, "selectors") == list_plugins(registry, "selectors")
    assert "uniform" in list_plugins(stored, "selectors")


def test_model_metadata_holds_input_format_and_size():
    meta = Catalog.from_registry(amrbench.registry.default_registry(), ["model"]).registrations("model", "cnn1d")[0]
    assert (meta.input_format, meta.params) == ("iq", "100,907")
    assert isinstance(meta, PluginMeta)


# --------------------------------------------------------------------------- help texts
def _subparser(parser: argparse.ArgumentParser, *path) -> argparse.ArgumentParser:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("path,option", [(["leaderboard"], "--results-root"), (["explain"], "--device"),
                                         (["datasets", "plot"], "--seed"), (["datasets", "info"], "--seed")])
def test_options_have_help(path, option):
    action = next(a for a in _subparser(build_parser(), *path)._actions if option in a.option_strings)
    assert action.help and len(action.help) > 10


def test_every_option_of_every_command_has_help():
    missing = []

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, path + [name])
            elif not action.help and action.dest != "help":
                missing.append(" ".join(path + ["/".join(action.option_strings) or action.dest]))

    walk(build_parser(), ["amrbench"])
    assert not missing, f"options without help: {missing}"


def test_condense_help_describes_the_command_in_full_sentences(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["condense", "--help"])
    description = capsys.readouterr().out.split("positional arguments")[0].split("\n\n", 1)[1]
    text = " ".join(description.split())
    assert text.endswith(".") and "HDF5" in text and "export a condensed set as" not in text


def test_list_help_names_reporters(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["list", "--help"])
    assert "reporters" in capsys.readouterr().out
