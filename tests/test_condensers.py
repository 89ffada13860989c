"""Condensers (DC, DM, MDM, coreset), their shared helpers, the condense protocol end to
end, and the condense / plot-condensed commands. Small: toy data, a few iterations."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from amrbench import resources
from amrbench.api import Budget, Context, SignalSet
from amrbench.registry import default_registry
from amrbench.resources import load_splits
from amrbench.store import ArtifactCache
from amrbench_plugins.condense import synthetic as cz

TOY = {"per_class_per_snr": 24, "length": 64}


def toy_context(source="cnn1d", spc=3, seed=0, snr=None):
    registry = default_registry()
    spec = {"name": "toy", "params": registry.create("dataset", "toy", TOY).params, "snr": snr, "test_fraction": 0.2,
            "seed": 0}
    train, test = load_splits(registry, spec)
    cell = {"dataset": spec, "model": {"source": source, "target": source}, "seed": seed, "budget": {"spc": spc},
            "settings": {"scoring": {"epochs": 1}}, "train": {}}
    ctx = Context(seed=seed, device=torch.device("cpu"), cell=cell, cache=ArtifactCache(), registry=registry, resolver=resources.get)
    return ctx, train, test


def condenser(name, **params):
    return default_registry().create("condenser", name, params)


def prepared(name, ctx, train, spc, **params):
    """A synthetic condenser set up as ``condense`` does, without iterating."""
    c = condenser(name, iterations=0, lr=0.1, batch_real=8, **params)
    c.condense(ctx, train, spc)
    return c


# --------------------------------------------------------------------------- losses
@pytest.mark.parametrize("name", ["dm", "mdm"])
def test_loss_is_zero_when_synthetic_equals_real_batch(name):
    ctx, train, _ = toy_context(source="alexnet")  # no dropout: a deterministic embedding
    c = prepared(name, ctx, train, 3)
    c.embedder.sample()
    index, labels = c.sampler.sample()
    real = train.x[index]
    assert float(c.matching_loss(real, labels, real.clone(), labels)) == 0.0
    other = real + 0.1 * torch.randn_like(real)
    assert float(c.matching_loss(real, labels, other, labels)) > 0.0


def test_batched_loss_equals_per_class_sum():
    ctx, train, _ = toy_context(source="alexnet")
    c = prepared("dm", ctx, train, 3)
    c.embedder.sample()
    index, labels = c.sampler.sample()
    real, syn = train.x[index], c.syn_x.detach()
    batched = cz.mean_embedding_loss(c.embedder, real, labels, syn, c.syn_y, c.num_classes)
    looped = sum(((c.embedder(real[labels == k]).mean(0) - c.embedder(syn[c.syn_y == k]).mean(0)) ** 2).sum()
                 for k in range(c.num_classes))
    assert torch.allclose(batched, looped, rtol=1e-5, atol=1e-7)


def test_mdm_with_alpha_zero_is_dm():
    ctx, train, _ = toy_context()
    common = {"iterations": 3, "lr": 0.5, "batch_real": 8}
    dm = condenser("dm", **common).condense(ctx, train, 3)
    mdm0 = condenser("mdm", alpha=0, **common).condense(ctx, train, 3)
    mdm1 = condenser("mdm", alpha=1.0, **common).condense(ctx, train, 3)
    assert torch.equal(dm.x, mdm0.x)
    assert not torch.equal(dm.x, mdm1.x)


@pytest.mark.parametrize("fd_scale", ["none", "init"])
def test_mdm_loss_is_td_plus_alpha_fd(fd_scale):
    """fd_scale none: the paper's Eq. 11; init: L_FD weighed by w = L_TD / L_FD at S_0."""
    ctx, train, _ = toy_context(source="alexnet")
    c = prepared("mdm", ctx, train, 3, alpha=0.25, fd_scale=fd_scale)
    c.embedder.sample()
    index, labels = c.sampler.sample()
    real, syn = train.x[index], c.syn_x.detach()
    total = c.matching_loss(real, labels, syn, c.syn_y)
    td = cz.mean_embedding_loss(c.embedder, real, labels, syn, c.syn_y, c.num_classes)
    fd = cz.mean_embedding_loss(c.embedder, cz.dft_magnitude(real), labels, cz.dft_magnitude(syn), c.syn_y,
                                c.num_classes)
    weight = 1.0 if fd_scale == "none" else c.details["fd_weight"]
    assert (weight == 1.0) == (fd_scale == "none")
    assert torch.allclose(total, td + 0.25 * weight * fd, rtol=1e-5)


def test_dft_branch_matches_numpy():
    x = torch.randn(5, 2, 64)
    expected = np.abs(np.fft.fft(x.numpy().astype(np.float64), axis=-1))
    assert torch.allclose(cz.dft_magnitude(x).double(), torch.from_numpy(expected), rtol=1e-4, atol=1e-4)
    ortho = np.abs(np.fft.fft(x.numpy().astype(np.float64), axis=-1, norm="ortho"))
    assert np.allclose(cz.dft_magnitude(x, "ortho").numpy(), ortho, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["dm", "mdm"])
def test_gradients_reach_synthetic_signals_not_the_network(name):
    ctx, train, _ = toy_context(source="alexnet")
    c = prepared(name, ctx, train, 3)
    net = c.embedder.sample()
    index, labels = c.sampler.sample()
    loss = c.matching_loss(train.x[index], labels, c.syn_x, c.syn_y)
    loss.backward()
    assert c.syn_x.grad is not None and float(c.syn_x.grad.abs().sum()) > 0
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())
    before = c.syn_x.detach().clone()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    c.update(c.matching_loss(train.x[index], labels, c.syn_x, c.syn_y))
    assert not torch.equal(before, c.syn_x.detach())
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())


def test_dc_layer_distance():
    from amrbench_plugins.condense.dc import layer_distance, match_loss, reference_loops

    g = torch.randn(8, 4, 1, 5)
    assert float(layer_distance(g, g.clone())) == pytest.approx(0.0, abs=1e-5)
    assert float(layer_distance(g, -g)) == pytest.approx(16.0, rel=1e-4)  # 8 rows x (1 - (-1))
    assert float(layer_distance(torch.randn(8), torch.randn(8))) == 0.0  # biases ignored
    assert float(match_loss([g, torch.randn(8)], [g, torch.randn(8)])) == pytest.approx(0.0, abs=1e-5)
    assert reference_loops(10) == (10, 50) and reference_loops(50) == (50, 10) and reference_loops(100) == (50, 10)


def test_iq_augmentation_is_siamese_and_differentiable():
    aug = cz.IQAugment(["phase", "shift", "scale"], 64, torch.Generator().manual_seed(0))
    params = aug.draw(4)
    x = torch.randn(6, 2, 64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    out = cz.IQAugment.apply(x, labels, params)
    # the same class in another batch (the synthetic one) gets the same transform
    again = cz.IQAugment.apply(x[:1].detach(), labels[:1], params)
    assert torch.allclose(out[:1], again)
    out.sum().backward()
    assert x.grad is not None
    # a pure phase rotation keeps each signal's power
    rot = cz.IQAugment(["phase"], 64, torch.Generator().manual_seed(1))
    y = cz.IQAugment.apply(x.detach(), labels, rot.draw(4))
    assert torch.allclose((y ** 2).sum((1, 2)), (x.detach() ** 2).sum((1, 2)), rtol=1e-5)


def test_learning_rate_tables():
    high = {"name": "rml2016a-synth", "snr": [10, 18]}
    full = {"name": "rml2016a-synth", "snr": None}
    sig = {"name": "sig2019-synth", "snr": [12, 30]}
    r = cz.resolve_per_dataset
    assert r("paper", high, 10, "lr", cz.PAPER_LR) == 1e-5
    assert r("paper", high, 100, "lr", cz.PAPER_LR) == 1e-4
    assert r("paper", full, 50, "lr", cz.PAPER_LR) == 1e-7
    assert r("paper", sig, 100, "lr", cz.PAPER_LR) == 1e-4
    assert r({"10": 1e-3, "50": 1e-2}, full, 20, "lr") == 1e-3
    assert r({"rml2016a-synth[10, 18]": 2.0, "default": 3.0}, high, 10, "alpha") == 2.0
    assert r({"rml2016a-synth[10,18]": 2.0, "default": 3.0}, full, 10, "alpha") == 3.0
    with pytest.raises(Exception, match="paper"):
        r("paper", {"name": "toy", "snr": None}, 10, "lr", cz.PAPER_LR)
    with pytest.raises(Exception):
        condenser("mdm", alpha="much")


# --------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("name,params", [
    ("dm", {"iterations": 2, "lr": 0.1, "batch_real": 8, "augment": ["phase", "shift"]}),
    ("mdm", {"iterations": 2, "lr": 0.1, "batch_real": 8}),
    ("dc", {"iterations": 1, "lr": 0.01, "batch_real": 8, "loops": [2, 1]}),
    ("coreset", {"selector": "uniform"}),
])
def test_condensed_set_shapes_labels_counts(name, params):
    ctx, train, _ = toy_context()
    spc = 4
    out = condenser(name, **params).condense(ctx, train, spc)
    assert isinstance(out, SignalSet)
    assert out.x.shape == (train.num_classes * spc, 2, train.length)
    assert out.classes == train.classes
    assert out.class_counts().tolist() == [spc] * train.num_classes
    assert torch.isfinite(out.x).all()
    if name == "coreset":
        assert torch.isfinite(out.snr).all()
    else:
        assert torch.equal(out.y, torch.arange(train.num_classes).repeat_interleave(spc))
        assert torch.isnan(out.snr).all()


def test_coreset_matches_selector():
    ctx, train, _ = toy_context()
    out = condenser("coreset", selector="uniform").condense(ctx, train, 5)
    indices = default_registry().create("selector", "uniform").select(ctx, train, Budget(spc=5)).indices
    assert torch.equal(out.x, train.subset(torch.sort(indices).values).x)


# --------------------------------------------------------------------------- end to end
SUITE = """
name: condense-tiny
protocol: condense
datasets:
  - name: toy
    params: {per_class_per_snr: 24, length: 64}
methods:
  - {name: coreset, params: {selector: uniform}, label: Random}
  - {name: dc, params: {iterations: 1, lr: 0.01, loops: [2, 1], batch_real: 8}, label: DC}
  - {name: dm, params: {iterations: 2, lr: 0.1, batch_real: 8}, label: DM}
  - {name: mdm, params: {iterations: 2, lr: 0.1, batch_real: 8, alpha: 0.5}, label: MDM}
spc: [2, 4]
models: [cnn1d]
seeds: [0]
train: {epochs: 1, batch_size: 32, optimizer: sgd, lr: 0.01, momentum: 0.9}
settings: {eval_models: 2, whole_dataset: true}
"""


def test_condense_protocol_end_to_end(write_suite, tmp_path, isolated_cache, capsys):
    from amrbench.cli import main
    from amrbench.store import RecordStore

    path = write_suite(SUITE)
    assert main(["run", str(path), "--results", str(tmp_path / "out")]) == 0
    records = RecordStore(tmp_path / "out" / "records.jsonl").read()
    assert len(records) == 8 and all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    # convergence figures in every synthetic condensation's record; DC's single iteration cannot converge
    synthetic = [r for r in records if r["labels"]["method"] != "Random"]
    for r in synthetic:
        m = r["metrics"]
        assert m["movement"] >= 0 and 1 <= len(m["loss_curve"]) <= 50 and m["loss_window"] == 1
        assert m["first_loss"] == m["loss_curve"][0][1] and m["final_loss"] == m["loss_curve"][-1][1]
    assert all(r["metrics"]["converged"] is False for r in synthetic if r["labels"]["method"] == "DC")
    assert all("converged" not in r["metrics"] for r in records if r["labels"]["method"] == "Random")
    unconverged = sum(r["metrics"].get("converged") is False for r in records)
    err = capsys.readouterr().err
    assert f"amrbench: warning: condense-tiny: {unconverged} of 8 cells marked †" in err
    for r in records:
        m = r["metrics"]
        assert len(m["accuracies"]) == 2 and m["accuracy"] == pytest.approx(np.mean(m["accuracies"]))
        assert m["n_condensed"] == 4 * m["spc"]
        assert m["spc_ratio"] == pytest.approx(100 * m["n_condensed"] / m["n_train"])
        assert set(m["per_snr"]) == {"0", "10", "18"}
        assert 0 <= m["whole_accuracy"] <= 1 and len(m["whole_accuracies"]) == 2
        assert m["condense_time_s"] >= 0 and m["eval_time_s"] > 0
    # one condensed set per (method, spc) and one whole-dataset run, computed once each
    cache = ArtifactCache(isolated_cache / "artifacts")
    assert cache.computations("condensed") == 8
    assert cache.computations("whole-dataset") == 1
    # rerunning skips every cell
    assert main(["run", str(path), "--results", str(tmp_path / "out")]) == 0
    assert len(RecordStore(tmp_path / "out" / "records.jsonl").read()) == 8


def _cli(argv):
    from amrbench_plugins.condense.commands import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args, default_registry())


def test_condense_export_and_plot(tmp_path, capsys):
    import h5py

    out = tmp_path / "mdm.h5"
    assert _cli(["condense", "toy", "--method", "mdm", "--spc", "3", "--model", "cnn1d", "--param", "iterations=1",
                 "--param", "lr=0.1", "--param", "batch_real=8", "--data-param", "per_class_per_snr=24",
                 "--data-param", "length=64", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "lr 0.1\n" in err and "means over the first/last 1 of 1 iterations), movement ||S - S0|| / ||S0|| = " in err
    assert "UNCONVERGED" in err  # one iteration: the loss cannot fall
    with h5py.File(out) as f:
        assert f["x"].shape == (12, 2, 64) and f["y"].shape == (12,) and f["snr"].shape == (12,)
        assert [c.decode() if isinstance(c, bytes) else c for c in f.attrs["classes"]] == ["BPSK", "QPSK", "8PSK", "QAM16"]
        assert json.loads(f.attrs["method_params"])["alpha"] == 1.0
    # the generic file dataset reads it back
    data = default_registry().create("dataset", "file", {"path": str(out)}).load(0)
    assert len(data) == 12 and data.classes == ["BPSK", "QPSK", "8PSK", "QAM16"]
    png = tmp_path / "fig.png"
    assert _cli(["plot", "condensed", str(out), "--out", str(png)]) == 0  # real rows from the stored spec
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


def test_condense_standardize_exports_standardised_signals(tmp_path):
    import h5py

    out = tmp_path / "std.h5"
    assert _cli(["condense", "rml2016a-synth", "--method", "dm", "--spc", "2", "--model", "cnn1d", "--param", "iterations=1",
                 "--param", "lr=1e-9", "--param", "batch_real=4", "--data-param", "per_class_per_snr=4",
                 "--data-param", "length=32", "--data-param", "snr_range=[10, 18, 8]", "--standardize",
                 "--out", str(out)]) == 0
    with h5py.File(out) as f:
        x = f["x"][()]
        assert json.loads(f.attrs["dataset"])["standardize"] is True
    # real-initialised and barely moved: standardised signals, not the raw L1 scale (~0.02)
    assert 0.3 < x.std() < 3
    # real rows of the figure on the same scale, also from another dataset name
    from amrbench_plugins.condense.commands import _real_spec

    with h5py.File(out) as f:
        attrs = dict(f.attrs)
    args = argparse.Namespace(real="rml2016a-synth", data_param=["length=32"], snr=None)
    assert _real_spec(args, attrs, default_registry())["standardize"] is True


def test_condense_from_suite_rejects_dataset_options(write_suite, tmp_path):
    from amrbench.api import AmrbenchError

    with pytest.raises(AmrbenchError, match="--standardize apply to a dataset name"):
        _cli(["condense", str(write_suite(SUITE)), "--standardize", "--out", str(tmp_path / "x.h5")])


def test_condense_from_suite_reuses_the_run(write_suite, tmp_path, isolated_cache):
    path = write_suite(SUITE.replace("spc: [2, 4]", "spc: [2]").replace("whole_dataset: true", "whole_dataset: false"))
    from amrbench.cli import main

    assert main(["run", str(path), "--results", str(tmp_path / "out")]) == 0
    cache = ArtifactCache(isolated_cache / "artifacts")
    before = cache.computations("condensed")
    assert _cli(["condense", str(path), "--method", "MDM", "--out", str(tmp_path / "m.h5")]) == 0
    assert cache.computations("condensed") == before
    with pytest.raises(Exception, match="condensed sets match"):
        _cli(["condense", str(path), "--out", str(tmp_path / "all.h5")])


def test_a_diverging_condensation_fails_with_the_iteration_and_the_fix():
    from amrbench.api import AmrbenchError

    ctx, train, _ = toy_context()
    with pytest.raises(AmrbenchError, match=r"condenser 'mdm': the matching loss diverged .* at iteration \d+; lower lr"):
        condenser("mdm", iterations=30, lr=1e12, batch_real=8).condense(ctx, train, 3)


def _condensed_keys(suite_file: str, method: str, spc: int) -> dict:
    """The condensed-set cache configuration of every cell of ``method`` at ``spc`` in the
    shipped suite's evidence profile, seed 0, by source model."""
    from pathlib import Path

    from amrbench.runner import make_context
    from amrbench.suite import expand, load_suite

    suite = load_suite(Path(__file__).resolve().parent.parent / "suites" / suite_file, profile="evidence", seeds=[0])
    return {c["config"]["model"]["source"]: resources.artifact_config(make_context(c["config"], {}), "condensed")
            for c in expand(suite) if c["config"]["method"]["name"] == method and c["config"]["budget"]["spc"] == spc}


def test_a_condenser_naming_the_source_network_shares_its_condensed_set():
    # MDM Table II's AlexNet row names `net: alexnet` on every evaluation architecture;
    # Table I's MDM condenses on its AlexNet source: one condensation, one cached artifact
    table1 = _condensed_keys("table1.yaml", "mdm", 50)["alexnet"]
    table2 = _condensed_keys("table2.yaml", "mdm", 50)
    assert len(table2) == 4 and all(config == table1 for config in table2.values())
    # the network stays in the key: a VGG16 condensation is another artifact
    ctx, _, _ = toy_context(source="alexnet")
    ctx.cell.update(method={"name": "mdm", "params": condenser("mdm", net="vgg16").params},
                    versions={"method": "v"})
    assert resources.artifact_config(ctx, "condensed")["net"] == "vgg16"
