"""A whole new plugin family (tests/example_family: the `augment` protocol, its own method
kind `augmenter`, a method, a shared resource, a subcommand) works from its folder and
entry points alone: no core file names it."""
import importlib
import importlib.metadata
import json

import pytest

from amrbench import cli
from amrbench.registry import default_registry
from amrbench.resources import load_splits
from tests.conftest import REPO

FAMILY = REPO / "tests" / "example_family"
SUITE = """
name: augment-demo
protocol: augment
datasets: [{name: toy, params: {per_class_per_snr: 12, snr_values: [10, 18], length: 64}}]
methods: [{name: conjugate}]
models: [cnn1d]
seeds: [0]
train: {epochs: 1, batch_size: 32}
table: {rows: method, columns: model, metric: accuracy}
"""


@pytest.fixture
def family(monkeypatch):
    """The family's modules registered as its pyproject's entry points would (the method
    first: its kind is known from its base class, whatever the order)."""
    monkeypatch.syspath_prepend(str(FAMILY))
    registry = default_registry()
    for name in ("amrbench_augment.conjugate", "amrbench_augment.protocol"):
        registry.register_module(importlib.import_module(name), dist="amrbench-augment")
    real = importlib.metadata.entry_points

    def entry_points(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == cli.COMMANDS_GROUP:
            found.append(importlib.metadata.EntryPoint("augment", "amrbench_augment.commands", cli.COMMANDS_GROUP))
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return registry


def test_the_family_adds_its_own_kind_and_plugins(family):
    assert "augmenter" in family.kinds()
    assert family.names("augmenter") == ["conjugate"]
    assert family.get("protocol", "augment").method_kind == "augmenter"
    assert family.resource("train-power").words == "training power"


def test_a_suite_of_the_new_family_runs_and_tabulates(family, tmp_path, capsys):
    suite = tmp_path / "augment.yaml"
    suite.write_text(SUITE)
    assert cli.main(["run", str(suite), "--results", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "records.jsonl").read_text().splitlines()[-1])
    assert record["status"] == "ok", record.get("error")
    assert record["config"]["versions"]["method"].startswith("amrbench-augment==")
    metrics = record["metrics"]
    train, _ = load_splits(family, record["config"]["dataset"])
    assert metrics["n_train"] == 2 * len(train)  # the training split and its conjugates
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["train_power"] > 0
    assert "conjugate" in capsys.readouterr().out  # the table


def test_the_family_command_and_listing(family, capsys):
    assert cli.main(["augment-show", "conjugate"]) == 0
    assert capsys.readouterr().out.strip() == "Adds the complex conjugate of every training signal."
    from amrbench.listing import list_plugins

    assert "augmenters (1)" in list_plugins(family, "augmenters")


def test_a_second_base_for_a_taken_kind_is_refused(family):
    from amrbench.api import Plugin

    class OtherBase(Plugin):
        kind = "augmenter"

    class Impostor(OtherBase):
        name = "impostor"

    with pytest.raises(TypeError, match="kind 'augmenter' is declared by amrbench_augment.protocol.Augmenter"):
        family.add(Impostor)
