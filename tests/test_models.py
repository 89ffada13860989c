"""Model plugins: shapes for several lengths and class counts, embeddings, Grad-CAM layers,
published parameter counts, gradients, and that a training step lowers the loss."""
from __future__ import annotations

import importlib
import pathlib
import tomllib

import pytest
import torch
from torch import nn

from amrbench import transforms
from amrbench.api import AMRNet, AmrbenchError, Model
from amrbench.registry import Registry, default_registry

# module name -> registry name
MODELS = {
    "cnn1d": "cnn1d",
    "cnn2d": "cnn2d",
    "vtcnn2": "vtcnn2",
    "alexnet": "alexnet",
    "vgg16": "vgg16",
    "resnet1d": "resnet1d",
    "mcldnn": "mcldnn",
    "lstm": "lstm",
    "signet": "signet",
    "iqformer": "iqformer",
    "lenet": "lenet",
    "resnet_vis": "resnet-vis",
}

# (module, length, classes) -> parameters, from the papers / reference implementations
PUBLISHED = {
    ("cnn1d", 128, 11): 100_907,
    ("cnn1d", 512, 12): 125_612,
    ("cnn1d", 1024, 24): 159_928,
    ("vtcnn2", 128, 11): 2_830_427,
    ("mcldnn", 128, 11): 406_199,
    ("lstm", 128, 11): 201_099,
    ("lstm", 1024, 11): 201_099,
    ("iqformer", 128, 11): 355_049,
}

_CLASSES: dict = {}


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """One intra-op thread: the recurrent models' per-time-step OpenMP barriers stall for
    milliseconds per step when the cores are shared (other jobs, pytest-xdist), which
    turns a millisecond LSTM call into seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def model_class(module_name: str) -> type:
    """The plugin class, found the way the harness finds it: through the register hook."""
    if module_name not in _CLASSES:
        module = importlib.import_module(f"amrbench_plugins.models.{module_name}")
        registry = Registry()
        registry.register_module(module)
        names = registry.names("model")
        assert names == [MODELS[module_name]], f"{module_name} registers {names}"
        _CLASSES[module_name] = registry.get("model", names[0])
    return _CLASSES[module_name]


def build(module_name: str, classes: int, length: int, **params) -> AMRNet:
    torch.manual_seed(0)
    return model_class(module_name)(**params).build(classes, length)


def signals(module_name: str, n: int, length: int, requires_grad: bool = False):
    torch.manual_seed(1)
    x = torch.randn(n, 2, length, requires_grad=requires_grad)
    return x, transforms.apply(model_class(module_name).input_format, x)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_every_model_entry_point_is_covered():
    pyproject = tomllib.loads((pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text())
    declared = {v.rsplit(".", 1)[1] for k, v in pyproject["project"]["entry-points"]["amrbench"].items()
                if k.startswith("model-")}
    assert declared == set(MODELS)


@pytest.mark.parametrize("module_name", MODELS)
def test_metadata(module_name):
    cls = model_class(module_name)
    assert issubclass(cls, Model) and cls.kind == "model"
    assert cls.input_format in transforms.FORMATS
    summary = cls.description()
    assert summary and len(summary) <= 120
    module_doc = importlib.import_module(f"amrbench_plugins.models.{module_name}").__doc__
    assert module_doc and len(module_doc.strip().splitlines()) >= 8  # reference, layers, open choices
    cls()  # the defaults are valid
    with pytest.raises(AmrbenchError):
        cls(no_such_knob=1)


CASES = [(128, 11), (128, 24), (200, 5), (512, 12), (1024, 11), (1024, 24)]


@pytest.mark.parametrize("length,classes", CASES, ids=[f"L{length}-C{c}" for length, c in CASES])
@pytest.mark.parametrize("module_name", MODELS)
def test_shapes_embed_and_last_conv(module_name, length, classes):
    net = build(module_name, classes, length).eval()
    n = 3 if length <= 200 else 2
    _, x = signals(module_name, n, length)
    assert isinstance(net.head, nn.Linear) and net.head.out_features == classes

    seen = []
    handle = net.last_conv.register_forward_hook(lambda m, i, o: seen.append(o)) if net.last_conv is not None else None
    with torch.no_grad():
        logits = net(x)
        emb = net.embed(x)
    if handle is not None:
        handle.remove()

    assert logits.shape == (n, classes)
    assert emb.shape == (n, net.head.in_features)
    assert torch.isfinite(logits).all() and torch.isfinite(emb).all()
    torch.testing.assert_close(net.head(emb), logits)  # forward is head(embed(x)) in eval mode
    if module_name == "lstm":
        assert net.last_conv is None
    else:
        assert seen, "last_conv is not on the forward path"
        maps = seen[0]
        assert maps.dim() in (3, 4) and maps.shape[0] == n and maps.shape[-1] >= 1
        if module_name == "resnet_vis":  # the paper hooks the third residual stack's output
            assert any(isinstance(m, nn.Conv2d) for m in net.last_conv.modules())
            assert maps.shape[-1] == length // 4  # before the moved-out third max-pool
        else:
            assert isinstance(net.last_conv, (nn.Conv1d, nn.Conv2d))
    if (module_name, length, classes) in PUBLISHED:
        assert n_params(net) == PUBLISHED[(module_name, length, classes)]


@pytest.mark.parametrize("module_name", MODELS)
def test_training_mode_gradients_reach_input(module_name):
    net = build(module_name, 11, 128).train()
    x, inp = signals(module_name, 4, 128, requires_grad=True)
    loss = nn.functional.cross_entropy(net(inp), torch.arange(4) % 11)
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), "some parameters are not used by forward"


@pytest.mark.parametrize("module_name", ["cnn1d", "cnn2d", "resnet1d", "lstm"])
def test_one_step_lowers_loss(module_name):
    net = build(module_name, 11, 128).eval()  # eval: deterministic loss, no dropout noise
    _, x = signals(module_name, 8, 128)
    y = torch.arange(8) % 11
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    before = nn.functional.cross_entropy(net(x), y)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = nn.functional.cross_entropy(net(x), y)
    assert after < before


def test_published_counts_vgg16_and_signet_backbones():
    # PSR's signal VGG16 is ~8.85 M parameters at (128, 11); SigNet's ResNet-50 ~23.5 M
    assert n_params(build("vgg16", 11, 128)) == pytest.approx(8.85e6, rel=2e-3)
    assert n_params(build("signet", 11, 128, backbone="resnet50")) == pytest.approx(23.5e6, rel=5e-3)
    assert n_params(build("signet", 11, 128, backbone="resnet18")) == pytest.approx(11.18e6, rel=5e-3)
    assert n_params(build("signet", 11, 128)) < 1e6  # the small default


def test_signet_resnet50_runs_and_unknown_backbone_fails():
    net = build("signet", 11, 128, backbone="resnet50").eval()
    _, x = signals("signet", 2, 128)
    with torch.no_grad():
        assert net(x).shape == (2, 11)
    assert net.last_conv.out_channels == 2048
    with pytest.raises(AmrbenchError, match="resnet50"):
        model_class("signet")(backbone="resnet51")


def test_signet_s2m_is_a_quadratic_form():
    s2m = importlib.import_module("amrbench_plugins.models.signet").S2M(2, 3)
    x = torch.randn(1, 2, 16)
    m = s2m(x)
    assert m.shape == (1, 2, 16, 16)
    padded = nn.functional.pad(x, (1, 1))
    t, s = 5, 9
    expected = padded[0, 1, t:t + 3] @ s2m.weight[0, 1] @ padded[0, 1, s:s + 3]
    torch.testing.assert_close(m[0, 1, t, s], expected)


@pytest.mark.parametrize("part", ["real", "abs"])
def test_iqformer_stft_matches_scipy(part):
    signal = pytest.importorskip("scipy.signal")
    stft = importlib.import_module("amrbench_plugins.models.iqformer")._STFT(part=part)
    x = torch.randn(2, 128)
    ours = stft(x)[:, 0].numpy()
    for i in range(2):
        _, _, ref = signal.stft(x[i].numpy(), 1.0, "blackman", 31, 30, 128)
        ref = ref[:32].real if part == "real" else abs(ref[:32])
        assert abs(ours[i] - ref).max() < 1e-5


def test_iqformer_stft_is_differentiable():
    net = build("iqformer", 11, 128).eval()
    x = torch.randn(2, 2, 128)
    x.requires_grad_(True)
    spec = net.stft(x[:, 0])
    spec.sum().backward()
    assert x.grad[:, 0].abs().sum() > 0


def test_mcldnn_keeps_i_and_q_branches_causal():
    net = build("mcldnn", 11, 32).eval()
    x = torch.randn(1, 1, 32)
    with torch.no_grad():
        full = net.conv_i(nn.functional.pad(x, (7, 0)))
        x2 = x.clone()
        x2[..., 20:] = 0  # the future must not change earlier outputs
        cut = net.conv_i(nn.functional.pad(x2, (7, 0)))
    torch.testing.assert_close(full[..., :20], cut[..., :20])


@pytest.mark.parametrize("module_name", [m for m in MODELS if m != "lstm"])
def test_last_conv_is_a_plain_reference_that_survives_copies(module_name):
    import copy

    net = build(module_name, 11, 128)
    assert net.last_conv is not None
    state = net.state_dict()
    assert not any(key.startswith("last_conv.") for key in state)
    assert len({t.data_ptr() for t in state.values()}) == len(state)  # no tensor saved twice
    assert any(m is net.last_conv for m in net.modules())
    clone = copy.deepcopy(net)
    assert any(m is clone.last_conv for m in clone.modules()) and clone.last_conv is not net.last_conv


@pytest.mark.parametrize("module_name", MODELS)
def test_training_batch_of_one(module_name):
    # the harness's last training batch can hold a single signal
    net = build(module_name, 11, 128).train()
    _, x = signals(module_name, 1, 128)
    nn.functional.cross_entropy(net(x), torch.tensor([3])).backward()


@pytest.mark.parametrize("name", ["vtcnn2", "lenet"])
def test_convolution_padding_gives_the_explicit_zero_pad_numbers(name):
    """The (1,3)/(2,3) front end pads inside the convolutions; its front-end activations and
    weight gradients equal those of the published explicit ZeroPadding2D form (up to the
    summation order of the channels-last kernels)."""
    from torch.nn import functional as F

    torch.manual_seed(0)
    net = default_registry().create("model", name, {"dropout": 0.0}).build(11, 128)
    x = torch.randn(8, 1, 2, 128)
    ours = torch.relu(net.conv2(torch.relu(net.conv1(x))))
    explicit = torch.relu(F.conv2d(F.pad(torch.relu(F.conv2d(F.pad(x, (2, 2)), net.conv1.weight, net.conv1.bias)),
                                         (2, 2)), net.conv2.weight, net.conv2.bias))
    torch.testing.assert_close(ours, explicit, rtol=1e-5, atol=1e-6)
    grad_ours = torch.autograd.grad(ours.square().sum(), net.conv1.weight)[0]
    grad_explicit = torch.autograd.grad(explicit.square().sum(), net.conv1.weight)[0]
    torch.testing.assert_close(grad_ours, grad_explicit, rtol=1e-4, atol=1e-5)


def _strict_layout(t: torch.Tensor):
    """The layout ("cl" or "nchw") a 4-D tensor's strides state unambiguously, else None."""
    cl, nchw = t.is_contiguous(memory_format=torch.channels_last), t.is_contiguous()
    return "cl" if cl and not nchw else "nchw" if nchw and not cl else None


@pytest.mark.parametrize("module_name", MODELS)
def test_two_d_convolutions_get_inputs_in_their_weights_layout(module_name):
    """A channels-last kernel fed NCHW maps (or the reverse) makes oneDNN convert every
    activation and gradient (a channels-last CNN1D whose 1-channel stem output stayed NCHW
    trained 1.25x slower)."""
    net = build(module_name, 11, 128).train()
    _, x = signals(module_name, 4, 128)
    mixed = []

    def check(module, inputs, _output):
        weight, got = _strict_layout(module.weight), _strict_layout(inputs[0])
        if weight and got and weight != got:
            mixed.append(f"{type(module).__name__}{tuple(module.weight.shape)}: weight {weight}, input {got}")

    hooks = [m.register_forward_hook(check) for m in net.modules() if isinstance(m, nn.Conv2d)]
    net(x)
    for hook in hooks:
        hook.remove()
    assert not mixed, mixed


@pytest.mark.parametrize("length", [128, 1024])
def test_cnn1d_is_the_conv1d_network_in_a_2d_layout(length):
    """CNN1D version 2 (height-1 Conv2d, channels-last) draws the same initial weights as
    version 1's Conv1d stacks and computes the same function (up to summation order)."""
    from torch.nn import functional as F

    net = build("cnn1d", 11, length).eval()
    torch.manual_seed(0)  # version 1's layers, in its construction order
    stem = [nn.Conv2d(1, 32, 1, bias=False)] + [nn.Conv2d(32, 32, (2, 3), bias=False) for _ in range(4)]
    stacks = [[nn.Conv1d(32, 32, 1 if i == 0 else 3, bias=False) for i in range(5)] for _ in range(5)]
    fc, head = nn.Linear(32 * (length // 64), 128), nn.Linear(128, 11)
    reference = [c.weight for c in stem] + [c.weight for s in stacks for c in s] + [fc.weight, fc.bias, head.weight,
                                                                                      head.bias]
    ours = list(net.parameters())
    assert len(ours) == len(reference)
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a.detach().reshape(b.shape), b.detach(), rtol=0, atol=0)

    def unit(h, conv1, conv2, conv, pad1, pad2):
        return torch.relu(h + conv(torch.relu(conv(h, conv1.weight, padding=pad1)), conv2.weight, padding=pad2))

    _, x = signals("cnn1d", 4, length)
    h = F.conv2d(x.unsqueeze(1), stem[0].weight)
    for c1, c2 in (stem[1:3], stem[3:5]):
        h = unit(h, c1, c2, F.conv2d, (1, 1), (0, 1))
    h = F.max_pool2d(h, (2, 2)).squeeze(2)
    for stack in stacks:
        h = F.conv1d(h, stack[0].weight)
        for c1, c2 in (stack[1:3], stack[3:5]):
            h = unit(h, c1, c2, F.conv1d, 1, 1)
        h = F.max_pool1d(h, 2)
    with torch.no_grad():
        torch.testing.assert_close(net(x), head(fc(h.flatten(1))), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("module_name,net_class", [("resnet1d", "ResNet1DNet"), ("resnet_vis", "ResNetVisNet")])
@pytest.mark.parametrize("length", [128, 1024])
def test_height1_2d_resnets_are_their_version_1_conv1d_networks(module_name, net_class, length):
    """Version 2 (height-1 Conv2d / BatchNorm2d, channels-last) draws the initial weights of
    version 1's 1-D layers (``layout="1d"``) and computes the same function."""
    net = build(module_name, 11, length).eval()
    torch.manual_seed(0)
    reference = getattr(importlib.import_module(f"amrbench_plugins.models.{module_name}"), net_class)(
        11, length, layout="1d").eval()
    assert any(isinstance(m, nn.Conv1d) for m in reference.modules())
    assert not any(isinstance(m, (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d)) for m in net.modules())
    ours, theirs = list(net.parameters()), list(reference.parameters())
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.detach().reshape(b.shape), b.detach(), rtol=0, atol=0)
    _, x = signals(module_name, 4, length)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("module_name", ["cnn1d", "cnn2d", "alexnet", "signet"])
def test_activations_follow_the_weights_layout(module_name):
    """Channels-last as shipped; ``net.to(memory_format=torch.contiguous_format)`` turns
    every activation NCHW (the benchmarks' conventional script) with the same outputs."""
    net = build(module_name, 11, 128).eval()
    _, x = signals(module_name, 4, 128)
    layouts = []

    def record(module, inputs, _output):
        if module.in_channels > 1:
            layouts.append(_strict_layout(inputs[0]))

    hooks = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        channels_last = net(x)
        assert layouts and set(layouts) == {"cl"}
        layouts.clear()
        net.to(memory_format=torch.contiguous_format)
        torch.testing.assert_close(net(x), channels_last, rtol=1e-4, atol=1e-5)
        assert layouts and set(layouts) == {"nchw"}
    for hook in hooks:
        hook.remove()


def test_lstm_drops_half_in_training_and_nothing_in_eval():
    """Dropout 0.5 after each LSTM layer (the visualisation paper's Table I): training
    forwards differ, eval forwards are deterministic and equal the dropout-free network's."""
    net = build("lstm", 11, 32)
    assert net.lstm.dropout == 0.5 and net.dropout.p == 0.5
    plain = build("lstm", 11, 32, dropout=0.0)  # same seed: same weights, no dropout
    _, x = signals("lstm", 4, 32)
    with torch.no_grad():
        net.train()
        first, second = net(x), net(x)
        assert not torch.allclose(first, second)
        net.eval()
        evaluated = net(x)
        torch.testing.assert_close(net(x), evaluated, rtol=0, atol=0)
        torch.testing.assert_close(evaluated, plain.eval()(x), rtol=0, atol=0)
        torch.testing.assert_close(plain.train()(x), evaluated, rtol=0, atol=0)  # dropout 0: off
    with pytest.raises(AmrbenchError, match="dropout"):
        model_class("lstm")(dropout=1.0)
