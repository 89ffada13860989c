"""The shape the design promises: a core (``amrbench/``) without import cycles that imports
no plugin family, families that add their commands and resources through the same hooks
and entry points a third party uses, and executor parameters passed generically."""
import ast
import importlib.metadata
import sys
from pathlib import Path

import pytest

from amrbench import cli
from amrbench.basics import AmrbenchError
from amrbench.registry import Registry, default_registry
from tests.conftest import REPO

CORE = REPO / "amrbench"


def core_modules() -> dict:
    """Dotted name -> source path of every module of the core package."""
    modules = {}
    for path in CORE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_names(path: Path) -> set:
    """Every module an ``import`` statement of the file names, at any depth (function-level
    imports included: they form cycles too, just later)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict:
    modules = core_modules()
    return {name: {n for n in imported_names(path) if n in modules and n not in (name, "amrbench")}
            for name, path in modules.items()}


def cycle_in(graph: dict):
    """One import cycle of the graph as a list of modules, else None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_core_has_no_import_cycle():
    assert cycle_in(import_graph()) is None


def test_the_core_imports_no_plugin_family():
    offenders = {str(path.relative_to(REPO)): sorted(n for n in imported_names(path) if n.startswith("amrbench_plugins"))
                 for path in core_modules().values()}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_every_family_is_one_package_registered_through_entry_points():
    values = {ep.value for ep in importlib.metadata.entry_points(group="amrbench")}
    for family in ("select", "condense", "compress", "explain"):
        folder = REPO / "plugins" / "amrbench_plugins" / family
        assert (folder / "protocol.py").is_file()
        assert f"amrbench_plugins.{family}.protocol" in values
        plugin_files = {p.stem for p in folder.glob("*.py")} & {v.rsplit(".", 1)[1] for v in values
                                                               if v.startswith(f"amrbench_plugins.{family}.")}
        assert len(plugin_files) >= 2, family  # the protocol and at least one method


# --------------------------------------------------------------------------- commands
def test_family_commands_come_from_the_commands_entry_point_group():
    groups = {ep.value for ep in importlib.metadata.entry_points(group=cli.COMMANDS_GROUP)}
    assert groups == {"amrbench_plugins.condense.commands", "amrbench_plugins.compress.plots",
                      "amrbench_plugins.explain.plots"}
    commands = cli.build_parser()._subparsers._group_actions[0].choices
    assert {"condense", "plot", "compress-plot", "explain"} <= set(commands)


def fake_entry_points(module_name: str):
    real = importlib.metadata.entry_points

    def entry_points(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == cli.COMMANDS_GROUP:
            found.append(importlib.metadata.EntryPoint("mine", module_name, cli.COMMANDS_GROUP))
        return found
    return entry_points


def test_a_third_party_adds_a_command_through_the_hook(monkeypatch, tmp_path, capsys):
    (tmp_path / "my_commands.py").write_text(
        "from amrbench.hookspecs import hookimpl\n\n"
        "def hello(args, registry):\n"
        "    print('hello', args.who, len(registry.names('selector')) > 0)\n\n"
        "@hookimpl\n"
        "def amrbench_add_commands(subparsers):\n"
        "    p = subparsers.add_parser('hello', help='greet')\n"
        "    p.add_argument('who')\n"
        "    p.set_defaults(handler=hello)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points("my_commands"))
    assert cli.main(["hello", "world"]) == 0
    assert capsys.readouterr().out == "hello world True\n"


def test_a_broken_command_module_is_a_warning_and_the_rest_works(monkeypatch, capsys):
    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points("no_such_module_xyz"))
    commands = cli.build_parser()._subparsers._group_actions[0].choices
    assert "condense" in commands
    err = capsys.readouterr().err
    assert "warning: the commands of no_such_module_xyz" in err and "ModuleNotFoundError" in err
    sys.modules.pop("no_such_module_xyz", None)


# --------------------------------------------------------------------------- resources
def test_families_register_their_resources_with_words_and_time_metrics():
    resources = default_registry().resources
    assert {"dynamics", "gradnorms", "condensed", "whole-dataset", "compressor", "clean-classifier",
            "explain-classifier"} <= set(resources)
    assert resources["condensed"].subject == "method budget" and resources["condensed"].time_metric == "condense_time_s"
    assert resources["dynamics"].words == "scoring run" and resources["dynamics"].time_metric is None


def test_a_resource_kind_cannot_be_taken_twice():
    registry = Registry()
    registry.add_resource("thing", dict, list)
    registry.add_resource("thing", dict, list)  # the same declaration again: harmless
    with pytest.raises(TypeError, match="'thing' is already registered"):
        registry.add_resource("thing", dict, tuple)
    with pytest.raises(AmrbenchError, match="unknown resource 'thng'.*did you mean 'thing'"):
        registry.resource("thng")


def test_a_context_without_resolver_says_how_to_get_one():
    import torch

    from amrbench.api import Context

    ctx = Context(0, torch.device("cpu"), {}, None, None)
    with pytest.raises(AmrbenchError, match="no resolver.*make_context"):
        ctx.resource("dynamics")


# --------------------------------------------------------------------------- executor parameters
@pytest.mark.parametrize("argv, expected", [
    (["--executor-param", "workers=3"], {"workers": 3}),
    (["--workers", "3"], {"workers": 3}),
    (["--scheduler", "tcp://h:8786", "--executor-param", "retries=0"], {"scheduler": "tcp://h:8786", "retries": 0}),
    (["--workers", "2", "--executor-param", "workers=5"], {"workers": 5}),  # the explicit one wins
])
def test_executor_parameters_are_generic_with_aliases(argv, expected):
    args = cli.build_parser().parse_args(["run", "suite.yaml", *argv])
    assert cli._executor_params(args) == expected


def test_a_malformed_executor_parameter_is_one_line():
    args = cli.build_parser().parse_args(["run", "suite.yaml", "--executor-param", "workers"])
    with pytest.raises(AmrbenchError, match="--executor-param expects KEY=VALUE, got 'workers'"):
        cli._executor_params(args)


# --------------------------------------------------------------------------- the core names no plugin
# Plugin names the core may spell, and why: defaults and words that are not a plugin choice.
NAMED_ON_PURPOSE = {
    "local": "the default executor of `amrbench run` (--executor local)",
    "select": "the protocol of a suite that names none (documented in the suite schema)",
    "margin": "a claim's `margin:` key, not the margin selector",
    "file": "a table column header",
    "rml2018": "the name the core's RML2018 HDF5 reader gives its SignalSet",
    "sig2019": "a file layout the core's Sig2019 reader names in its errors",
    "compressor": "a plugin kind (and the compress family's resource named after it)",
}


def string_constants(path: Path) -> list:
    """(line, text) of the string constants of a file that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and ast.get_docstring(node) is not None}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_the_core_names_no_plugin():
    from amrbench.basics import KINDS

    registry = default_registry()
    names = {name for kind in KINDS for name in registry.names(kind)} | set(registry.resources)
    named = {f"{path.relative_to(REPO)}:{line} {text!r}" for path in core_modules().values()
             for line, text in string_constants(path) if text in names and text not in NAMED_ON_PURPOSE}
    assert named == set()
