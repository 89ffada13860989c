"""Explainers (Grad-CAM, mask, Integrated Gradients, occlusion), their metrics, the
``explain`` protocol end to end, the figures and ``amrbench explain``. Tiny and fast; pass
with and without Captum (its parity checks are skipped when it is missing)."""
import argparse
import json

import pytest
import torch
from torch import nn

from amrbench import transforms
from amrbench.api import AMRNet, Explainer
from amrbench.cli import main
from amrbench.registry import default_registry
from amrbench.store import ArtifactCache, RecordStore
from amrbench_plugins.explain import attribution as X

needs_captum = pytest.mark.skipif(not X.captum_available(), reason="Captum (amrbench[explain]) not installed")


def explainer(name, **params):
    return default_registry().create("explainer", name, params)


# --------------------------------------------------------------------------- tiny models
class TinyConv(AMRNet):
    """Identity 1x1 convolution (the Grad-CAM layer) -> flatten -> linear head."""

    def __init__(self, head_weight):
        super().__init__()
        self.conv = nn.Conv1d(2, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(2)[:, :, None])
        self.head = nn.Linear(head_weight.shape[1], head_weight.shape[0], bias=False)
        with torch.no_grad():
            self.head.weight.copy_(head_weight)
        object.__setattr__(self, "last_conv", self.conv)

    def embed(self, x):
        return self.conv(x).flatten(1)


class TinyConv2d(AMRNet):
    """(N, 1, 2, L) -> identity 1x1 Conv2d (a 2-row map) -> sum -> one logit per class."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
        object.__setattr__(self, "last_conv", self.conv)

    def embed(self, x):
        return self.conv(x).flatten(1).sum(1, keepdim=True)

    def head(self, h):
        return torch.cat([h, -h], 1)


class SegmentModel(AMRNet):
    """Looks only at I on samples [lo, hi): logits (k * mean, 0)."""

    def __init__(self, lo=10, hi=20, k=4.0):
        super().__init__()
        self.lo, self.hi, self.k = lo, hi, k

    def forward(self, x):
        m = x[:, 0, self.lo:self.hi].mean(1, keepdim=True)
        return torch.cat([self.k * m, torch.zeros_like(m)], 1)


class SmallCNN(AMRNet):
    def __init__(self, classes=3):
        super().__init__()
        self.conv = nn.Conv1d(2, 8, 5, padding=2)
        self.head = nn.Linear(8, classes)
        object.__setattr__(self, "last_conv", self.conv)

    def embed(self, x):
        return torch.relu(self.conv(x)).mean(2)


# --------------------------------------------------------------------------- Grad-CAM
def test_gradcam_matches_a_hand_computed_case():
    # I = 1 2 3 4, Q = 4 3 2 1; the identity conv makes the feature maps f^1 = I, f^2 = Q
    x = torch.tensor([[[1.0, 2, 3, 4], [4, 3, 2, 1]]]).repeat(2, 1, 1)
    head = torch.tensor([[1.0, 1, 1, 1, -1, -1, -1, -1],     # class 0: alpha = (1, -1)
                         [0.0, 1, 1, 4, 0, 0, 0, 0]])        # class 1: alpha = (1.5, 0)
    w = explainer("gradcam").explain(TinyConv(head).eval(), x, torch.tensor([0, 1]))
    # class 0: ReLU(I - Q) = (0, 0, 1, 3) -> /3;  class 1: ReLU(1.5 I) = 1.5 (1, 2, 3, 4) -> min-max
    expected = torch.tensor([[0.0, 0.0, 1 / 3, 1.0], [0.0, 1 / 3, 2 / 3, 1.0]])
    assert torch.allclose(w, expected, atol=1e-6)


def test_gradcam_reduces_the_iq_rows_of_2d_maps_and_resizes():
    x = torch.tensor([[[[1.0, -2, 3, 0], [1, 2, -1, 0]]]])   # (1, 1, 2, 4): one map, 2 rows
    w = explainer("gradcam").explain(TinyConv2d().eval(), x, torch.tensor([0]))
    # alpha = 1; ReLU per row: I (1, 0, 3, 0), Q (1, 2, 0, 0); mean over rows (1, 1, 1.5, 0)
    assert torch.allclose(w, torch.tensor([[2 / 3, 2 / 3, 1.0, 0.0]]), atol=1e-6)
    # linear resize with half-pixel centres: (0, 1) -> (0, 0.25, 0.75, 1)
    assert torch.allclose(X.resize(torch.tensor([[0.0, 1.0]]), 4), torch.tensor([[0.0, 0.25, 0.75, 1.0]]))


def test_gradcam_is_not_applicable_without_a_convolution():
    net = default_registry().create("model", "lstm").build(4, 16).eval()
    with pytest.raises(X.NotApplicable):
        explainer("gradcam").explain(net, torch.randn(2, 2, 16), torch.tensor([0, 1]))


def tiny_lenet(length=16):
    """The paper's LeNet with narrow FC layers, randomly initialised, in eval mode."""
    torch.manual_seed(3)
    net = default_registry().create("model", "lenet", {"fc1": 8, "fc2": 8}).build(3, length).eval()
    return net, transforms.apply("iq_2d", torch.randn(4, 2, length)), torch.tensor([0, 1, 2, 0])


def test_gradcam_on_lenet_weighs_the_rectified_maps_after_the_last_convolution():
    from amrbench_plugins.explain.gradcam import feature_layer, features_and_gradients

    net, z, target = tiny_lenet()
    assert feature_layer(net) is net.relu2 and feature_layer(net, "conv") is net.conv2
    post, _ = features_and_gradients(net, z, target)
    pre, _ = features_and_gradients(net, z, target, "conv")
    assert (pre < 0).any() and (post >= 0).all()
    torch.testing.assert_close(post, torch.relu(pre))
    # a model that declares no cam_layer keeps last_conv for both choices
    small = SmallCNN()
    assert feature_layer(small) is small.conv and feature_layer(small, "conv") is small.conv


def test_gradcam_layer_conv_reproduces_the_pre_activation_maps_of_version_1():
    net, z, target = tiny_lenet()
    seen = {}
    handle = net.conv2.register_forward_hook(lambda module, inputs, output: seen.setdefault("maps", output))
    logits = net(z)
    handle.remove()
    (grads,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), seen["maps"])
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((alpha * seen["maps"]).sum(1)).mean(1)            # (N, L + 4): one row
    version_1 = X.normalise(X.resize(cam.detach(), z.shape[-1]))
    torch.testing.assert_close(explainer("gradcam", layer="conv").explain(net, z, target), version_1)
    assert not torch.allclose(explainer("gradcam").explain(net, z, target), version_1, atol=1e-3)


def test_gradcam_rejects_an_unknown_layer():
    from amrbench.api import AmrbenchError

    with pytest.raises(AmrbenchError, match="layer"):
        explainer("gradcam", layer="relu")


# --------------------------------------------------------------------------- all explainers
CHEAP = [("gradcam", {}), ("mask", {"steps": 3}), ("integrated-gradients", {"n_steps": 4, "backend": "own"}),
         ("occlusion", {"backend": "own"})]


@pytest.mark.parametrize("model_name", ["cnn1d", "lstm"])
def test_every_explainer_gives_weights_in_unit_range_with_the_input_length(model_name):
    torch.manual_seed(0)
    model = default_registry().create("model", model_name)
    net = model.build(4, 32).eval()
    z = transforms.apply(model.input_format, torch.randn(3, 2, 32))
    target = torch.tensor([0, 1, 3])
    for name, params in CHEAP:
        if name == "gradcam" and net.last_conv is None:
            continue
        w = explainer(name, **params).explain(net, z, target)
        assert w.shape == (3, 32), name
        assert torch.isfinite(w).all() and w.min() >= 0 and w.max() <= 1, name
    assert not net.training  # explainers leave eval mode alone (the LSTM backpropagates in eval mode)


def test_mask_objective_decreases_and_batching_equals_one_by_one():
    torch.manual_seed(1)
    net = SmallCNN().eval()
    x = torch.randn(3, 2, 24)
    target = net(x).argmax(1)
    mask = explainer("mask", steps=40, lr=0.1)
    w = mask.explain(net, x, target)
    history = mask.history
    assert len(history) == 40 and history[-1] < history[0] - 1e-3
    assert w.shape == (3, 24) and w.min() >= 0 and w.max() <= 1 and w.max() > 0
    single = torch.cat([explainer("mask", steps=40, lr=0.1).explain(net, x[i:i + 1], target[i:i + 1]) for i in range(3)])
    assert torch.allclose(w, single, atol=1e-5)
    # the objective itself (Eq. 5) at w = 0 is the target probability
    zero = torch.zeros(3, 24)
    from amrbench_plugins.explain.mask import mask_objective

    p = torch.softmax(net(x), 1).gather(1, target[:, None])[:, 0]
    assert torch.allclose(mask_objective(net, x, zero, target, 1e-4, 1e-3, 3, 0.01), p, atol=1e-6)


# --------------------------------------------------------------------------- metrics
def test_deletion_auc_of_an_oracle_beats_random_on_a_model_reading_one_segment():
    torch.manual_seed(2)
    n, length = 16, 64
    x = torch.randn(n, 2, length)
    x[:, 0, 10:20] = 1.0
    net = SegmentModel(10, 20)
    target = torch.zeros(n, dtype=torch.long)
    oracle = torch.zeros(n, length)
    oracle[:, 10:20] = 1.0
    random = torch.rand(n, length, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(0)
    d_oracle, d_random = X.deletion_auc(net, x, oracle, target, generator=g), X.deletion_auc(net, x, random, target, generator=g)
    assert d_oracle.mean() < d_random.mean() - 0.1
    i_oracle, i_random = X.insertion_auc(net, x, oracle, target, generator=g), X.insertion_auc(net, x, random, target, generator=g)
    assert i_oracle.mean() > i_random.mean() + 0.1
    top = X.topk_drop(net, x, oracle, target, fraction=10 / 64, generator=g)
    rand = X.random_drop(net, x, target, fraction=10 / 64, generator=g)
    assert top.mean() > 0.4 and top.mean() > rand.mean() + 0.3
    # the curve starts at the model's probability and the AUC is its trapezoid mean
    curve = X.perturbation_curve(net, x, oracle, target, steps=4, generator=g)
    assert torch.allclose(curve[:, 0], X.probabilities(net, x, target))
    assert torch.allclose(X.auc(torch.tensor([[1.0, 0.0]])), torch.tensor([0.5]))


class IgnoresModel(Explainer):
    name = "ignores-model"

    def explain(self, model, x, target):
        return X.normalise(X.reduce_channels(x, "abs"))


def test_sanity_check_fails_for_an_explainer_that_ignores_the_model():
    torch.manual_seed(4)
    trained, randomised = SmallCNN(), SmallCNN()
    x = torch.randn(6, 2, 32)
    target = torch.zeros(6, dtype=torch.long)
    result = X.sanity_check(IgnoresModel().explain, trained, randomised, x, target)
    assert result["mean"] == pytest.approx(1.0) and result["passed"] is False
    assert torch.allclose(X.spearman(torch.tensor([[1.0, 2, 3]]), torch.tensor([[3.0, 2, 1]])), torch.tensor([-1.0]))
    assert X.spearman(torch.tensor([[1.0, 1, 1]]), torch.tensor([[1.0, 2, 3]])).item() == 0.0
    bands = dict(X.snr_bands(torch.tensor([-4.0, 0, 8, 10, 18]), [0, 10]))
    assert {k: v.tolist() for k, v in bands.items()} == {"<0": [0], "0..<10": [1, 2], ">=10": [3, 4]}


# --------------------------------------------------------------------------- Captum parity
@needs_captum
def test_own_integrated_gradients_and_occlusion_match_captum():
    torch.manual_seed(5)
    net = SmallCNN().eval()
    x = torch.randn(4, 2, 32)
    target = torch.tensor([0, 1, 2, 0])
    for name, params in (("integrated-gradients", {"n_steps": 8}), ("occlusion", {"window": 8, "stride": 4})):
        own = explainer(name, backend="own", **params)
        cap = explainer(name, backend="captum", **params)
        assert torch.allclose(own.explain(net, x, target), cap.explain(net, x, target), atol=1e-4), name


@needs_captum
def test_gradcam_matches_captum_layer_gradcam():
    from captum.attr import LayerGradCam

    torch.manual_seed(6)
    net = SmallCNN().eval()
    x = torch.randn(4, 2, 32)
    target = torch.tensor([0, 1, 2, 0])
    cam = LayerGradCam(net, net.conv).attribute(x, target=target, relu_attributions=True)[:, 0]
    assert torch.allclose(explainer("gradcam").explain(net, x, target), X.normalise(cam), atol=1e-5)


@needs_captum
def test_gradcam_on_lenet_matches_captum_layer_gradcam_on_its_relu():
    from captum.attr import LayerGradCam

    net, z, target = tiny_lenet()
    for layer, module in (("activation", net.relu2), ("conv", net.conv2)):
        cam = LayerGradCam(net, module).attribute(z, target=target, relu_attributions=True)[:, 0, 0]
        expected = X.normalise(X.resize(cam.detach(), z.shape[-1]))
        assert torch.allclose(explainer("gradcam", layer=layer).explain(net, z, target), expected, atol=1e-5), layer


# --------------------------------------------------------------------------- protocol end to end
SUITE = """
name: tiny-explain
protocol: explain
datasets:
  - name: toy
    params: {per_class_per_snr: 24, length: 64}
methods:
  - gradcam
  - {name: mask, params: {steps: 4}}
models: [cnn1d, lstm]
seeds: [0]
train: {epochs: 1, batch_size: 64}
settings: {n_signals: 8, curve_steps: 4, random_repeats: 1}
table: {rows: method, columns: model, metric: deletion_auc, higher_is_better: false, scale: 1}
"""


def test_explain_protocol_end_to_end_on_toy(write_suite, tmp_path, isolated_cache):
    out = tmp_path / "out"
    assert main(["run", str(write_suite(SUITE)), "--results", str(out)]) == 0
    records = RecordStore(out / "records.jsonl").read()
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    by = {(r["labels"]["model"], r["labels"]["method"]): r["metrics"] for r in records}
    assert by[("lstm", "gradcam")]["applicable"] is False and by[("lstm", "gradcam")]["deletion_auc"] is None
    for key in [("cnn1d", "gradcam"), ("cnn1d", "mask"), ("lstm", "mask")]:
        m = by[key]
        assert m["applicable"] is True and m["n_signals"] == 8
        for metric in ("deletion_auc", "insertion_auc", "topk_drop", "random_drop", "sanity_similarity",
                       "seconds_per_signal"):
            assert isinstance(m[metric], float), (key, metric)
        assert 0 <= m["deletion_auc"] <= 1 and 0 <= m["insertion_auc"] <= 1
        assert set(m["per_snr_band"]) <= {"<0", "0..<10", ">=10"} and sum(b["n"] for b in m["per_snr_band"].values()) == 8
        assert len(m["deletion_curve"]) == 5
        json.dumps(m)
    assert "objective_first" in by[("cnn1d", "mask")]
    # one classifier per model, shared by both explainers
    assert ArtifactCache(isolated_cache / "artifacts").computations("explain-classifier") == 2
    table = (out / "table.md").read_text()
    assert "| gradcam" in table and "–" in table


# --------------------------------------------------------------------------- figures and CLI
def _fake_cell(model, method, fmt, classes=("A", "B"), length=32, seed=0):
    g = torch.Generator().manual_seed(len(model) + len(method))
    n = len(classes)
    return {"kind": "cell", "x": torch.randn(n, 2, length, generator=g).numpy(),
            "w": torch.rand(n, length, generator=g).numpy(), "y": list(range(n)), "pred": [0] * n,
            "snr": [10.0] * n, "classes": list(classes), "dataset": "toy", "model": model, "method": method,
            "view": "native", "format": fmt, "seed": seed, "accuracy": 0.5}


def test_figures_are_written(tmp_path):
    from amrbench_plugins.explain import plots as P

    folder = tmp_path / "figs"
    for model, method, fmt in [("lenet", "gradcam", "iq"), ("lstm", "mask", "amp_phase")]:
        data = _fake_cell(model, method, fmt)
        P.save_data(folder, f"toy__{model}__{method}__{fmt}__s0", **data)
        assert P.save_cell_figure(data, folder / f"{model}.png").stat().st_size > 0
    grids = P.rebuild_grids(folder)
    assert {g.name for g in grids} == {"grid_toy_gradcam_s0.png", "grid_toy_mask_s0.png", "grid_toy_s0.png"}
    split = _fake_cell("resnet-vis", "gradcam", "iq")
    split.update(kind="split", w_parts=torch.rand(2, 2, 16).numpy(), pred_parts=[[0, 1], [1, 1]], accuracy_parts=0.4)
    assert P.save_split_figure(split, folder / "split.png").stat().st_size > 0
    assert list(P.consecutive_segments([0.5, 0.6, 0.1, 0.9, 0.8], 0.4)) == [0, 3]


def test_explain_command_on_a_model_name(tmp_path):
    from amrbench_plugins.explain.plots import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["explain", "cnn1d", "--signal", "2", "--out", str(tmp_path / "figs"), "--epochs", "1",
                              "--param", "per_class_per_snr=8", "--param", "length=32"])
    assert args.handler(args, default_registry()) == 0
    assert (tmp_path / "figs" / "signal2.png").exists() and (tmp_path / "figs" / "toy_cnn1d_gradcam_signal2.png").exists()
