"""amrbench.train: settings validation, determinism, per-sample weights, mixed precision
on the CPU, batched evaluation and the metrics stored in a cell's record."""
import numpy as np
import pytest
import torch
from torch import nn

from amrbench.api import AMRNet, AmrbenchError, SignalSet
from amrbench.registry import default_registry
from amrbench.train import (classification_metrics, evaluate, fit, make_optimizer, make_scheduler, predict,
                            validate_train_settings)

CPU = torch.device("cpu")


class TinyNet(AMRNet):
    def __init__(self, classes=3, length=16):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(2 * length, 16), nn.ReLU())
        self.head = nn.Linear(16, classes)

    def embed(self, x):
        return self.body(x)


def separable(n=240, classes=3, length=16, seed=0):
    """Class c is a tone of frequency c + 1 in noise: easy to learn."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    t = torch.arange(length)
    phase = 2 * torch.pi * (y[:, None] + 1) * t / length
    x = torch.stack([torch.cos(phase), torch.sin(phase)], 1) + 0.3 * torch.randn(n, 2, length, generator=g)
    snr = torch.tensor([0.0, 10.0])[torch.arange(n) % 2]
    return SignalSet(x.float(), y, snr, [f"c{i}" for i in range(classes)])


def trained(data, seed=0, **settings):
    torch.manual_seed(seed)
    net = TinyNet()
    fit(net, "iq", data, validate_train_settings({"epochs": 5, "batch_size": 32, **settings}),
        torch.Generator().manual_seed(seed), CPU)
    return net


def weights(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_settings_are_validated_with_the_fix():
    assert validate_train_settings({})["optimizer"] == "adam"
    assert validate_train_settings({"lr": 1})["lr"] == 1.0
    with pytest.raises(AmrbenchError, match="did you mean 'epochs'"):
        validate_train_settings({"epoch": 3})
    with pytest.raises(AmrbenchError, match="must be int"):
        validate_train_settings({"epochs": "3"})
    with pytest.raises(AmrbenchError, match="optimizer 'adamm'"):
        validate_train_settings({"optimizer": "adamm"})
    with pytest.raises(AmrbenchError):
        validate_train_settings({"lr": 0})


def test_fit_is_deterministic_and_learns():
    data = separable()
    a, b, c = trained(data), trained(data), trained(data, seed=1)
    assert torch.equal(weights(a), weights(b))
    assert not torch.equal(weights(a), weights(c))
    metrics = evaluate(a, "iq", separable(seed=5), validate_train_settings({}), CPU)
    assert metrics["accuracy"] > 0.9


def test_zero_weight_signals_have_no_influence():
    """A weighted coreset: signals of weight 0 do not move the model, whatever their
    labels, and scaling all weights changes nothing (the loss is a weighted mean)."""
    data = separable()
    w = (torch.arange(len(data)) % 4 != 0).float()
    scrambled = SignalSet(data.x, torch.where(w == 0, (data.y + 1) % 3, data.y), data.snr, data.classes)
    plain = trained(SignalSet(data.x, data.y, data.snr, data.classes, weights=w))
    other_labels = trained(SignalSet(scrambled.x, scrambled.y, scrambled.snr, scrambled.classes, weights=w))
    scaled = trained(SignalSet(data.x, data.y, data.snr, data.classes, weights=7.0 * w))
    assert torch.equal(weights(plain), weights(other_labels))
    torch.testing.assert_close(weights(plain), weights(scaled), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(weights(plain), weights(trained(data)))


def test_every_signal_is_seen_once_per_epoch():
    data = separable(n=100)
    seen = {}
    settings = validate_train_settings({"epochs": 3, "batch_size": 32})
    fit(TinyNet(), "iq", data, settings, torch.Generator().manual_seed(0), CPU,
        on_batch=lambda epoch, index, logits, losses: seen.setdefault(epoch, []).extend(index.tolist()))
    assert sorted(seen) == [0, 1, 2]
    assert all(sorted(indices) == list(range(100)) for indices in seen.values())
    assert seen[0] != seen[1]  # reshuffled each epoch


def test_optimizers_and_schedules():
    net = TinyNet()
    sgd = make_optimizer(net.parameters(), validate_train_settings({"optimizer": "sgd", "lr": 0.001}))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.9
    adam = make_optimizer(net.parameters(), validate_train_settings({}))
    cosine = make_scheduler(adam, validate_train_settings({"scheduler": "cosine"}), 10)
    for _ in range(10):
        adam.step()
        cosine.step()
    assert adam.param_groups[0]["lr"] < 1e-9
    assert make_scheduler(adam, validate_train_settings({}), 10) is None


def test_amp_on_the_cpu_trains_in_bfloat16_and_keeps_float32_weights():
    model = default_registry().create("model", "cnn1d")
    data = separable(n=64, classes=11, length=128)
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        net = model.build(11, 128)
        fit(net, model.input_format, data, validate_train_settings({"epochs": 1, "batch_size": 32, "amp": True}),
            torch.Generator().manual_seed(0), CPU)
        nets.append(net)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in nets[0].parameters())
    assert torch.equal(weights(nets[0]), weights(nets[1]))
    torch.manual_seed(0)
    fp32 = model.build(11, 128)
    fit(fp32, model.input_format, data, validate_train_settings({"epochs": 1, "batch_size": 32}),
        torch.Generator().manual_seed(0), CPU)
    assert not torch.equal(weights(nets[0]), weights(fp32))  # autocast really ran


def test_batched_prediction_equals_one_batch():
    net = trained(separable())
    x = separable(n=101, seed=3).x
    torch.testing.assert_close(predict(net, "iq", x, 7, CPU), predict(net, "iq", x, 1000, CPU))
    assert predict(net, "iq", x, 7, CPU, embed=True).shape == (101, 16)


def test_metrics_known_answer():
    data = SignalSet(torch.zeros(6, 2, 4), torch.tensor([0, 0, 1, 1, 2, 2]),
                     torch.tensor([0.0, 10.0, 0.0, 10.0, 0.0, float("nan")]), ["a", "b", "c"])
    predicted = torch.tensor([0, 1, 1, 1, 0, 2])
    metrics = classification_metrics(nn.functional.one_hot(predicted, 3).float(), data)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["per_class"] == {"a": 0.5, "b": 1.0, "c": 0.5}
    assert metrics["per_snr"] == {"0": pytest.approx(2 / 3), "10": 0.5}  # the NaN-SNR signal only counts overall
    np.testing.assert_array_equal(metrics["confusion"], [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert metrics["n_test"] == 6
