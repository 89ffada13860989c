"""Training-loop throughput (samples/s) of amrbench.train.fit against a conventional
PyTorch loop (DataLoader over a TensorDataset), and the achieved FLOP rate of
convolution models against this machine's matmul FLOP rate, measured in the same run.

Run: python -m pytest tests/benchmarks/test_bench_train.py -m benchmark --benchmark-enable -s
"""
import time

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from amrbench import transforms
from amrbench.api import SignalSet
from amrbench.registry import default_registry
from amrbench.train import fit, validate_train_settings

N, LENGTH, CLASSES = 4096, 128, 11
RESULTS = {}


def data():
    g = torch.Generator().manual_seed(0)
    return SignalSet(torch.randn(N, 2, LENGTH, generator=g), torch.randint(0, CLASSES, (N,), generator=g),
                     torch.zeros(N), [str(i) for i in range(CLASSES)])


def build(name):
    model = default_registry().create("model", name)
    torch.manual_seed(0)
    return model, model.build(CLASSES, LENGTH)


def amrbench_epoch(name, batch):
    model, net = build(name)
    settings = validate_train_settings({"epochs": 1, "batch_size": batch})
    start = time.perf_counter()
    fit(net, model.input_format, data(), settings, torch.Generator().manual_seed(0), torch.device("cpu"))
    return N / (time.perf_counter() - start)


def dataloader_epoch(name, batch):
    model, net = build(name)
    train = data()
    loader = DataLoader(TensorDataset(train.x, train.y), batch_size=batch, shuffle=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    start = time.perf_counter()
    for xb, yb in loader:
        loss = loss_fn(net(transforms.apply(model.input_format, xb)), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return N / (time.perf_counter() - start)


def matmul_flops():
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    start = time.perf_counter()
    for _ in range(20):
        a @ b
    return 20 * 2 * 1024 ** 3 / (time.perf_counter() - start)


def train_flops_per_sample(name, batch):
    model, net = build(name)
    x = transforms.apply(model.input_format, torch.randn(batch, 2, LENGTH))
    with FlopCounterMode(display=False) as counter:
        net(x).sum().backward()
    return counter.get_total_flops() / batch


@pytest.mark.parametrize("name", ["cnn1d", "vtcnn2", "lstm"])
@pytest.mark.parametrize("batch", [128, 256])
def test_training_throughput(benchmark, name, batch):
    baseline = dataloader_epoch(name, batch)
    ours = benchmark.pedantic(amrbench_epoch, args=(name, batch), rounds=3, iterations=1)
    peak = matmul_flops()
    achieved = ours * train_flops_per_sample(name, batch)
    RESULTS[(name, batch)] = (ours, baseline, achieved / peak)
    benchmark.extra_info.update(samples_per_s=ours, dataloader_samples_per_s=baseline, speedup=ours / baseline,
                                fraction_of_matmul_flops=achieved / peak)
    print(f"\n{name} batch {batch}: {ours:,.0f} samples/s vs DataLoader {baseline:,.0f} "
          f"({ours / baseline:.2f}x); {achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.2f} of matmul {peak / 1e9:.1f}")
