"""The plugin contracts of ``amrbench.api``: the registry refuses a class that leaves a
required method out or declares its parameters wrongly (an installed one is then listed
as broken, the others still load), every built-in passes, and each optional capability's
default gives the harness the behaviour it had when it probed for the capability."""
import inspect
from types import SimpleNamespace

import pytest
import torch

from amrbench import tables
from amrbench.api import (
    BASES,
    AmrbenchError,
    Compressor,
    Condenser,
    Context,
    Dataset,
    Explainer,
    Param,
    Plugin,
    Protocol,
    Selection,
    Selector,
    SignalSet,
)
from amrbench.basics import KINDS
from amrbench.data import commands as dataset_commands
from amrbench.data import store
from amrbench.registry import Registry, check_plugin_class, default_registry
from tests.conftest import fake_distribution


def signals(per_class: int = 4, length: int = 16) -> SignalSet:
    y = torch.arange(2).repeat(per_class)
    return SignalSet(torch.randn(len(y), 2, length, generator=torch.Generator().manual_seed(0)), y,
                     torch.zeros(len(y)), ["a", "b"], name="two-class")


def context(registry, cell: dict, resources: dict) -> Context:
    """A cell context whose ``ctx.resource(kind)`` returns ``resources[kind]``."""
    return Context(seed=0, device=torch.device("cpu"), cell=cell, cache=None, registry=registry,
                   resolver=lambda ctx, kind, **spec: resources[kind])


# --------------------------------------------------------------------------- refused classes
class NoSelect(Selector):
    """Forgets to implement select."""

    name = "no-select"


class Keeps(Selector):
    """Keeps every signal."""

    name = "keeps"

    def select(self, ctx, train, budget):
        return Selection(torch.arange(len(train)))


def test_a_selector_without_select_is_refused_naming_select_its_class_and_module():
    with pytest.raises(TypeError) as caught:
        Registry().add(NoSelect)
    message = str(caught.value)
    assert "NoSelect (tests.test_plugin_contracts)" in message and "implement select" in message
    assert "\n" not in message
    with pytest.raises(TypeError, match="abstract method select"):
        NoSelect()  # abstract: cannot be built either


def test_a_compressor_missing_several_methods_is_told_all_of_them():
    class HalfCodec(Compressor):
        name = "half-codec"

        def fit(self, ctx, train):
            pass

    with pytest.raises(TypeError, match="implement bits, decode, encode, levels "):
        Registry().add(HalfCodec)


def with_attributes(**attributes) -> type:
    """A complete selector class with ``attributes`` replaced."""
    return type("Declares", (Keeps,), {"__module__": __name__, **attributes})


@pytest.mark.parametrize("attributes,problem", [
    ({"defaults": [("k", 1)]}, "defaults must be a dict (parameter -> default value), got list"),
    ({"defaults": {"k": 1}, "types": {"count": Param(int)}},
     "types names parameter 'count', which defaults lacks; add it to defaults or drop it from types"),
    ({"defaults": {"k": 1}, "choices": {"mode": ("a", "b")}},
     "choices names parameter 'mode', which defaults lacks"),
    ({"defaults": {"k": 1}, "types": [("k", int)]}, "types must be a dict keyed by parameter names, got list"),
    ({"defaults": {"k": 1}, "types": {"k": int}}, "types['k'] must be a Param or a tuple (kind, low, high)"),
    ({"name": ""}, "set name to a non-empty string"),
    ({"name": "dist:keeps"}, "must not contain ':'"),
])
def test_bad_declarations_are_refused_with_the_fix(attributes, problem):
    with pytest.raises(TypeError) as caught:
        Registry().add(with_attributes(**attributes))
    assert str(caught.value).startswith(f"plugin class Declares ({__name__}): ")
    assert problem in str(caught.value)


def test_a_class_of_the_wrong_base_or_no_plugin_at_all_is_refused():
    class LooseDataset(Plugin):
        kind, name = "dataset", "loose"

    with pytest.raises(TypeError, match=r"a dataset plugin must subclass amrbench\.api\.Dataset"):
        Registry().add(LooseDataset)
    with pytest.raises(TypeError, match="not a plugin class; subclass one of amrbench.api.Model"):
        Registry().add(SimpleNamespace)
    with pytest.raises(TypeError, match="not a plugin class"):
        Registry().add(Keeps())  # an instance, not the class


def test_declared_parameters_pass():
    declares = with_attributes(defaults={"k": 1, "mode": "a"}, types={"k": Param(int, 1), "mode": (str,)},
                               choices={"mode": ("a", "b")})
    registry = Registry()
    registry.add(declares)
    assert registry.create("selector", "keeps", {"k": 3}).params == {"k": 3, "mode": "a"}


BROKEN_MODULE = """
    from amrbench.api import Selection, Selector
    from amrbench.hookspecs import hookimpl

    class Fine(Selector):
        '''Registers before its broken sibling.'''
        name = "fine-contract"

        def select(self, ctx, train, budget):
            return Selection(list(range(len(train))))

    class Unfinished(Selector):
        '''Forgets select.'''
        name = "unfinished"

    @hookimpl
    def amrbench_register(registry):
        registry.add(Fine)
        registry.add(Unfinished)
"""


def test_an_installed_class_the_registry_refuses_is_listed_as_broken_and_the_others_load(tmp_path, monkeypatch):
    root = fake_distribution(tmp_path / "site", "contract-dist", {"contract_test_plugins": BROKEN_MODULE},
                             {"unfinished": "contract_test_plugins"})
    monkeypatch.syspath_prepend(str(root))
    registry = Registry().load_entry_points()
    [broken] = [b for b in registry.broken if b.dist == "contract-dist"]
    assert broken.error == ("TypeError: plugin class Unfinished (contract_test_plugins): implement select "
                            "(abstract in amrbench.api.Selector)")
    assert {"uniform", "fine-contract"} <= set(registry.names("selector"))
    assert "unfinished" not in registry.names("selector")
    with pytest.raises(AmrbenchError, match="selector 'unfinished' failed to load .*implement select"):
        registry.get("selector", "unfinished")


# --------------------------------------------------------------------------- every built-in
BUILT_INS = [(kind, name) for kind in KINDS for name in default_registry().names(kind)]


def test_every_kind_has_built_ins():
    assert {kind for kind, _ in BUILT_INS} == set(KINDS)


@pytest.mark.parametrize("kind,name", BUILT_INS, ids=[f"{k}-{n}" for k, n in BUILT_INS])
def test_every_registered_class_passes_validation_and_is_concrete(kind, name):
    cls = default_registry().get(kind, name)
    check_plugin_class(cls)
    assert issubclass(cls, BASES[kind]) and not inspect.isabstract(cls)


# --------------------------------------------------------------------------- capability defaults
class MinimalCodec(Compressor):
    """Signs as integer codes; implements only what is required."""

    name = "minimal-codec"

    def fit(self, ctx, train):
        self.fitted = True

    def levels(self):
        return [3]

    def encode(self, x, level):
        return (x > 0).long()

    def decode(self, code, level):
        return code.float() * 2 - 1

    def bits(self, level, length):
        return 2.0 * length


class BinaryCodec(MinimalCodec):
    """The same codec declaring its binary alphabet and a plain-data state."""

    name = "binary-codec"

    def alphabet(self, level):
        return 2

    def get_state(self):
        return {"fitted": True}

    def set_state(self, state):
        self.restored = state


def test_compressor_defaults_label_alphabet_symbols_and_flags_as_before():
    codec = MinimalCodec()
    assert codec.level_label(3) == "3" and codec.alphabet(3) is None
    code = torch.tensor([[1, 0]])
    assert codec.symbols(code, 3) is code and codec.symbols(torch.tensor([0.5]), 3) is None
    assert codec.stochastic is False and codec.history is None and codec.get_state() is None
    assert MinimalCodec.fit_runs({}) == 1.0
    with pytest.raises(AmrbenchError, match="'minimal-codec' returns a state from get_state but does not implement "
                                            "set_state"):
        codec.set_state({})


def test_the_compress_protocol_counts_symbols_only_when_the_alphabet_is_declared():
    from amrbench_plugins.compress.protocol import reconstruct

    x = signals().x
    _, counts, per_signal, _, _ = reconstruct(MinimalCodec(), x, 3, 4, torch.device("cpu"))
    assert counts is None and per_signal is None  # no alphabet: no usage statistics
    _, counts, per_signal, _, _ = reconstruct(BinaryCodec(), x, 3, 4, torch.device("cpu"))
    assert per_signal == 2 * 16 and counts.sum() == x.numel()  # the integer code itself is the symbols


def test_a_compressor_without_state_is_kept_as_an_object_and_one_with_state_is_restored():
    from amrbench_plugins.compress.protocol import _compute_compressor, fitted_compressor

    registry = Registry()
    registry.add(MinimalCodec)
    registry.add(BinaryCodec)
    train = signals()
    for name in ("minimal-codec", "binary-codec"):
        cell = {"method": {"name": name, "params": {}}, "settings": {}}
        artifact = _compute_compressor(context(registry, cell, {"dataset": (train, train)}))
        assert artifact["history"] is None
        ctx = context(registry, cell, {"compressor": artifact})
        codec, _ = fitted_compressor(ctx, cell)
        if name == "minimal-codec":
            assert artifact["state"] is None and artifact["object"] is codec and codec.fitted
        else:
            assert artifact["object"] is None and codec.restored == {"fitted": True}
            assert codec.device == ctx.device


class FirstSignals(Condenser):
    """The first spc signals of each class; declares nothing optional."""

    name = "first-signals"

    def condense(self, ctx, train, spc):
        picks = torch.cat([torch.nonzero(train.y == c).flatten()[:spc] for c in range(train.num_classes)])
        return train.subset(picks)


class Iterating(FirstSignals):
    """Reports a loss history but not its own timing."""

    name = "iterating"

    def condense(self, ctx, train, spc):
        self.history = [3.0, 2.0, 1.0, 0.5]
        return super().condense(ctx, train, spc)


def condensed_artifact(condenser: type) -> dict:
    from amrbench_plugins.condense.protocol import _compute_condensed

    registry = Registry()
    registry.add(condenser)
    train = signals()
    cell = {"method": {"name": condenser.name, "params": {}}, "budget": {"spc": 2},
            "model": {"source": "cnn1d", "target": "cnn1d"}}
    return _compute_condensed(context(registry, cell, {"dataset": (train, train)}))


def test_condenser_defaults_leave_the_artifact_as_before():
    from amrbench_plugins.condense.protocol import condenser_needs

    assert condenser_needs(SimpleNamespace(get=lambda kind, name: FirstSignals), {"name": "first-signals"}) == []
    assert FirstSignals.reference_loops(10) == (1, 1) and FirstSignals.trainable_net is False
    artifact = condensed_artifact(FirstSignals)
    assert artifact["net"] == "cnn1d"  # the cell's source model
    assert artifact["history"] == [] and artifact["seconds_per_iteration"] is None
    assert artifact["lr"] is None and artifact["convergence"] is None and artifact["details"] is None
    iterating = condensed_artifact(Iterating)
    assert iterating["seconds_per_iteration"] == pytest.approx(iterating["condense_time_s"] / 4)


def test_the_cost_model_reads_loops_and_work_from_the_condenser_class():
    from amrbench_plugins.condense.work import matching_loops

    cell = {"method": {"name": "first-signals", "params": {}}, "budget": {"spc": 10}, "model": {"source": "cnn1d"}}
    assert FirstSignals.work_estimate(cell, 2, 100) is None  # not iterative: timed as a training run
    dc = default_registry().get("condenser", "dc")
    assert matching_loops(dc, {"loops": "auto"}, 10) == (10, 50)
    assert matching_loops(FirstSignals, {}, 10) == (1, 1)
    dm_cell = {**cell, "method": {"name": "dm", "params": {"iterations": 3}}}
    work = default_registry().get("condenser", "dm").work_estimate(dm_cell, 2, 100)
    assert (work.gradient, work.outer, work.inner, work.domains, work.net) == (False, 1, 0, 1, "cnn1d")
    assert default_registry().get("condenser", "mdm").work_estimate(dm_cell, 2, 100).domains == 2


def test_explainer_protocol_and_dataset_defaults():
    class Flat(Explainer):
        name = "flat"

        def explain(self, model, x, target):
            return torch.full((x.shape[0], x.shape[-1]), 0.5)

    class Silent(Protocol):
        name = "silent"

        def run_cell(self, ctx, cell):
            return {}

    class Fixed(Dataset):
        name = "fixed"

        def load(self, seed, snr=None):
            return signals()

    assert Flat().backend == "own" and Flat().history is None
    assert Silent.table_marks == ()
    fixed = Fixed()
    assert fixed.classes is None and list(fixed.notes) == [] and fixed.cache_path(0) is None
    args = SimpleNamespace(seed=0, snr=None)
    assert dataset_commands._cache_location(fixed, args) == f"{store.datasets_dir()} (loader caches, if any)"


def test_generators_whose_classes_are_fixed_in_code_are_sized_without_loading():
    from amrbench import cost

    for name, count in (("toy", 4), ("torchsig6-synth", 6), ("rml2016a-synth", 11)):
        spec = {"name": name, "params": {"per_class_per_snr": 5, "length": 64}}
        shape = cost._shape_from_params(default_registry(), spec)
        assert shape is not None and shape.n_classes == count, name


def test_the_condense_protocol_marks_unconverged_cells_and_others_mark_none():
    suite = SimpleNamespace(protocol="condense")
    assert [mark["metric"] for mark in tables.table_marks(suite)] == ["converged"]
    assert tables.table_marks(SimpleNamespace(protocol="select")) == []
