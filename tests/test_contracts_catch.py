"""Every check of the contract modules (``amrbench.contracts``) fails on a plugin built to
break it, with a message naming the plugin and what is wrong, and a correct hand-built
plugin passes; plus the selection of plugins by distribution and the declared light
parameters."""
import numpy as np
import pytest
import torch
from torch import nn

from amrbench import contracts
from amrbench.api import (
    AmrbenchError,
    Compressor,
    Condenser,
    Dataset,
    Explainer,
    Model,
    Selection,
    Selector,
    SignalSet,
)
from amrbench.contracts import (
    test_compressors,
    test_condensers,
    test_datasets,
    test_explainers,
    test_models,
    test_selectors,
)
from amrbench.contracts.fixtures import ConvNet


def fails(check, cls, message: str, **kwargs) -> None:
    with pytest.raises(AssertionError, match=message):
        check(cls, **kwargs)


# --------------------------------------------------------------------------- models
class ShiftedNet(ConvNet):
    """forward is not head(embed(x))."""

    def forward(self, x):
        return self.head(self.embed(x)) + 1.0


class DeadNet(ConvNet):
    """Logits that depend on nothing: every gradient is zero."""

    def forward(self, x):
        return self.head(self.embed(x)) * 0.0


class ForeignConvNet(ConvNet):
    """last_conv is a module outside the network."""

    def __init__(self, num_classes):
        super().__init__(num_classes)
        object.__setattr__(self, "last_conv", nn.Conv1d(2, 8, 3))


def model(name: str, net: type, **extra) -> type:
    return type(name.title().replace("-", ""), (Model,), {
        "__module__": __name__, "name": name, "build": lambda self, num_classes, length: net(num_classes), **extra})


class WideHead(ConvNet):
    def __init__(self, num_classes):
        super().__init__(num_classes + 1)


_BUILDS = iter(range(1, 10_000))


class Unseeded(Model):
    """Draws its bias from a counter, not from torch's seeded generator."""

    name = "catch-unseeded"

    def build(self, num_classes, length):
        net = ConvNet(num_classes)
        with torch.no_grad():
            net.head.bias.fill_(float(next(_BUILDS)))
        return net


def test_model_checks_catch_broken_models():
    fails(test_models.check_network, model("catch-wide", WideHead), r"catch-wide \(L=128\): logits shape \(3, 5\)")
    fails(test_models.check_network, model("catch-shifted", ShiftedNet), r"head\(embed\(x\)\) differs from forward")
    fails(test_models.check_network, model("catch-format", ConvNet, input_format="spectrogram"),
          "input_format 'spectrogram' is not one of")
    fails(test_models.check_last_conv, model("catch-foreign", ForeignConvNet), "not one of the network's modules")
    fails(test_models.check_gradients, model("catch-dead", DeadNet), "every gradient is zero")
    fails(test_models.check_seeded_weights, Unseeded, "the same seed built different weights")


def test_model_checks_pass_a_correct_model():
    good = model("catch-good-model", ConvNet)
    for check in test_models.CHECKS:
        check(good)


# --------------------------------------------------------------------------- datasets
def two_tones(x=None, y=(0, 1, 0, 1), classes=("a", "b"), snr=(0.0, 0.0, 10.0, 10.0)) -> SignalSet:
    x = torch.ones(len(y), 2, 16) if x is None else x
    return SignalSet(x, torch.tensor(y), torch.tensor(snr), list(classes))


def dataset(name: str, load, **extra) -> type:
    return type(name.title().replace("-", ""), (Dataset,), {"__module__": __name__, "name": name,
                                                             "load": lambda self, seed, snr=None: load(seed), **extra})


def test_dataset_checks_catch_broken_datasets():
    fails(test_datasets.check_signals, dataset("catch-empty-class", lambda seed: two_tones(classes=("a", "b", "c"))),
          r"classes \['c'\] have no signal")
    nan = torch.ones(4, 2, 16)
    nan[0, 0, 0] = float("nan")
    fails(test_datasets.check_signals, dataset("catch-nan", lambda seed: two_tones(x=nan)), "non-finite signals")
    fails(test_datasets.check_declared_classes_and_snr,
          dataset("catch-renamed", lambda seed: two_tones(), classes=["bpsk", "qpsk"]),
          r"declares classes \['bpsk', 'qpsk'\] but loads \['a', 'b'\]")
    fails(test_datasets.check_declared_classes_and_snr,
          dataset("catch-grid", lambda seed: two_tones(), snr_values=lambda self, snr=None: [0, 5]),
          r"snr_values\(\) says \[0, 5\] but the loaded SNRs are \[0.0, 10.0\]")
    fails(test_datasets.check_seeded, dataset("catch-unseeded-data", lambda seed: two_tones(x=torch.randn(4, 2, 16))),
          "the same seed gave different signals")


def test_a_loader_is_recognised_by_its_path_without_default():
    assert test_datasets.needs_file(dataset("catch-loader", lambda seed: two_tones(), defaults={"path": None}))
    assert not test_datasets.needs_file(dataset("catch-made", lambda seed: two_tones(), defaults={"path": "x.npz"}))


# --------------------------------------------------------------------------- selectors
def selector(name: str, pick, **extra) -> type:
    return type(name.title().replace("-", ""), (Selector,), {
        "__module__": __name__, "name": name, "select": lambda self, ctx, train, budget: pick(ctx, train, budget),
        **extra})


def first_per_class(ctx, train, budget):
    quota = budget.per_class(train.class_counts())
    picked = [np.flatnonzero(train.y.numpy() == c)[:q] for c, q in enumerate(quota)]
    return Selection(torch.from_numpy(np.concatenate(picked)))


def first_overall(ctx, train, budget):
    return Selection(torch.arange(int(budget.per_class(train.class_counts()).sum())))


def doubled(ctx, train, budget):
    return Selection(first_per_class(ctx, train, budget).indices.repeat(2))


def beyond(ctx, train, budget):
    return Selection(first_per_class(ctx, train, budget).indices + len(train))


def as_floats(ctx, train, budget):
    return Selection(first_per_class(ctx, train, budget).indices.float())


def one_weight(ctx, train, budget):
    return Selection(first_per_class(ctx, train, budget).indices, torch.ones(1))


def unseeded_pick(ctx, train, budget):
    rng = np.random.default_rng()  # not ctx.rng: another draw every time
    picked = [rng.permutation(np.flatnonzero(train.y.numpy() == c))[:q]
              for c, q in enumerate(budget.per_class(train.class_counts()))]
    return Selection(torch.from_numpy(np.sort(np.concatenate(picked))))


def test_selector_checks_catch_broken_selectors():
    fails(test_selectors.check_budget, selector("catch-unbalanced", first_overall), "signals per class, the budget is")
    fails(test_selectors.check_budget, selector("catch-doubled", doubled), "duplicate indices")
    fails(test_selectors.check_budget, selector("catch-beyond", beyond), "indices outside")
    fails(test_selectors.check_budget, selector("catch-floats", as_floats), "must be a 1-D integer tensor")
    fails(test_selectors.check_budget, selector("catch-weights", one_weight), "one finite value per index")
    fails(test_selectors.check_seeded, selector("catch-random", unseeded_pick), "the same seed selected differently")
    fails(test_selectors.check_needs, selector("catch-needy", first_per_class, needs=("no-such-resource",)),
          r"needs unregistered resources \['no-such-resource'\]")


def test_selector_checks_pass_a_correct_selector():
    good = selector("catch-good-selector", first_per_class)
    for check in test_selectors.CHECKS:
        check(good)


# --------------------------------------------------------------------------- condensers
def condenser(name: str, condense, **extra) -> type:
    return type(name.title().replace("-", ""), (Condenser,), {
        "__module__": __name__, "name": name, "condense": lambda self, ctx, train, spc: condense(self, train, spc),
        **extra})


def first_signals(self, train, spc):
    picks = torch.cat([torch.nonzero(train.y == c).flatten()[:spc] for c in range(train.num_classes)])
    return train.subset(picks)


def test_condenser_checks_catch_broken_condensers():
    fails(test_condensers.check_condensed_set, condenser("catch-extra", lambda self, train, spc: first_signals(
        self, train, spc + 1)), r"\[3, 3, 3, 3\] signals per class, expected 2 each")
    def halved(self, train, spc):
        kept = first_signals(self, train, spc)
        return SignalSet(kept.x[..., ::2], kept.y, kept.snr, train.classes)

    fails(test_condensers.check_condensed_set, condenser("catch-halved", halved), "signals of length 32")

    def talkative(self, train, spc):
        self.history = ["converged"]
        return first_signals(self, train, spc)

    fails(test_condensers.check_reports, condenser("catch-talkative", talkative), "history must be None or a list")
    fails(test_condensers.check_declarations, condenser("catch-netless", first_signals,
                                                        net_name=lambda self, ctx: "no-such-model"),
          "net_name 'no-such-model' is no registered model")


def test_condenser_checks_pass_a_correct_condenser():
    good = condenser("catch-good-condenser", first_signals)
    for check in test_condensers.CHECKS:
        check(good)


# --------------------------------------------------------------------------- compressors
class Signs(Compressor):
    """Codes each sample by its sign (a correct codec)."""

    name = "catch-signs"

    def fit(self, ctx, train):
        self.scale = float(train.x.abs().mean())

    def levels(self):
        return [1]

    def encode(self, x, level):
        return (x > 0).long()

    def decode(self, code, level):
        return (code.float() * 2 - 1) * self.scale

    def bits(self, level, length):
        return 2.0 * length

    def alphabet(self, level):
        return 2

    def get_state(self):
        return {"scale": self.scale}

    def set_state(self, state):
        self.scale = state["scale"]


def codec(name: str, **methods) -> type:
    return type(name.title().replace("-", ""), (Signs,), {"__module__": __name__, "name": name, **methods})


def test_compressor_checks_catch_broken_codecs():
    fails(test_compressors.check_levels, codec("catch-short", decode=lambda self, code, level: code[..., ::2].float()),
          r"catch-short level 1: decode\(encode\(x\)\) has shape \(8, 2, 32\)")
    fails(test_compressors.check_levels, codec("catch-free", bits=lambda self, level, length: 0.0),
          "must be a positive number, got 0.0")
    fails(test_compressors.check_levels, codec("catch-no-levels", levels=lambda self: []), "non-empty list")
    fails(test_compressors.check_levels, codec("catch-alphabet", alphabet=lambda self, level: 1),
          "symbols in 0..1, the alphabet has 1")
    fails(test_compressors.check_state, codec("catch-forgetful", set_state=lambda self, state: setattr(
        self, "scale", 0.0)), "the codec restored by set_state reconstructs differently")


def test_compressor_checks_pass_a_correct_codec():
    for check in test_compressors.CHECKS:
        check(Signs)


# --------------------------------------------------------------------------- explainers
def explainer(name: str, explain) -> type:
    return type(name.title().replace("-", ""), (Explainer,), {
        "__module__": __name__, "name": name, "explain": lambda self, model, x, target: explain(x)})


def test_explainer_checks_catch_broken_explainers():
    fails(test_explainers.check_weights, explainer("catch-raw", lambda x: x[:, 0] - 5.0), r"not in \[0, 1\]")
    fails(test_explainers.check_weights, explainer("catch-channels", lambda x: torch.zeros_like(x)),
          r"weights of shape \(6, 2, 64\), expected \(6, 64\)")
    fails(test_explainers.check_weights, explainer("catch-nan-weights", lambda x: torch.full(
        (x.shape[0], x.shape[-1]), float("nan"))), "non-finite weights")


def test_explainer_checks_pass_a_correct_explainer_on_every_network():
    good = explainer("catch-flat", lambda x: torch.full((x.shape[0], x.shape[-1]), 0.5))
    for net in ("conv", "conv2d", "recurrent"):
        test_explainers.check_weights(good, net=net)


def test_only_an_exception_named_not_applicable_skips():
    class NotApplicable(Exception):
        pass

    assert test_explainers.not_applicable(NotApplicable("no convolution"))
    assert not test_explainers.not_applicable(ValueError("broken"))


# --------------------------------------------------------------------------- selection and declarations
def test_the_distribution_variable_keeps_its_plugins_only(monkeypatch):
    everything = contracts.plugin_names("selector")
    assert {"uniform", "spread"} <= set(everything)
    monkeypatch.setenv(contracts.DIST_VARIABLE, "Amrbench_Example.Selector")  # spelled any way pip accepts
    assert contracts.plugin_names("selector") == ["spread"]
    assert contracts.plugin_names("model") == []
    monkeypatch.setenv(contracts.DIST_VARIABLE, "amrbench-exampel-selector")
    with pytest.raises(AmrbenchError, match="'amrbench-exampel-selector' registers no plugin; distributions with "
                                            "plugins: .*amrbench-example-selector"):
        contracts.plugin_names("selector")


def test_light_parameters_come_from_the_plugins_distribution():
    assert contracts.light_params("condenser", "mdm")["iterations"] == 2
    assert contracts.light_params("selector", "spread") == {}  # its distribution declares none
    slow = [case for case in contracts.plugin_cases("dataset") if case.marks]
    assert [case.values for case in slow] == [("torchsig",)]
