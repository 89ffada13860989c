"""Training-loop throughput (samples/s) of amrbench.train.fit against a conventional
PyTorch loop (DataLoader over a TensorDataset), and the achieved FLOP rate of
convolution models against this machine's matmul FLOP rate, measured in the same run.

Every loop runs in a fresh single-threaded process, so the allocator setting of one
measurement cannot leak into the next. Three figures per model and batch size:
``loop``: fit vs the DataLoader loop, both with glibc's default allocator settings;
``harness``: fit as a cell runs it (``amrbench.allocator.tune()`` applied) vs the
conventional loop as a user's script would run it (defaults) — the gain a user sees;
``flops``: the achieved training FLOP rate (FlopCounterMode count x samples/s) over the
matmul FLOP rate of a 1024^3 product in the same kind of process.

Run: python -m pytest tests/benchmarks/test_bench_train.py -m benchmark --benchmark-enable -s
"""
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

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
    train = data()
    start = time.perf_counter()
    fit(net, model.input_format, train, settings, torch.Generator().manual_seed(0), torch.device("cpu"))
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


LOOPS = {"amrbench": amrbench_epoch, "dataloader": dataloader_epoch}


def _in_child(loop, name, batch, tune):
    from amrbench import allocator

    torch.set_num_threads(1)
    if tune:
        allocator.tune()
    if loop == "matmul":
        return matmul_flops()
    LOOPS[loop](name, batch)  # warm-up epoch
    return max(LOOPS[loop](name, batch) for _ in range(2))


def measure(loop, name=None, batch=None, tune=False):
    """Best of two epochs (after a warm-up) in a fresh spawned process."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_in_child, loop, name, batch, tune).result()


@pytest.mark.parametrize("name", ["cnn1d", "vtcnn2", "lstm"])
@pytest.mark.parametrize("batch", [128, 256])
def test_training_throughput(benchmark, name, batch):
    figures = {}

    def run_all():
        figures.update(dataloader=measure("dataloader", name, batch), ours=measure("amrbench", name, batch),
                       ours_tuned=measure("amrbench", name, batch, tune=True),
                       dataloader_tuned=measure("dataloader", name, batch, tune=True),
                       matmul=measure("matmul", tune=True))

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    achieved = figures["ours_tuned"] * train_flops_per_sample(name, batch)
    ratios = {"loop": figures["ours"] / figures["dataloader"],
              "loop_tuned": figures["ours_tuned"] / figures["dataloader_tuned"],
              "harness": figures["ours_tuned"] / figures["dataloader"], "flops": achieved / figures["matmul"]}
    RESULTS[(name, batch)] = (figures, ratios)
    benchmark.extra_info.update({f"{k}_samples_per_s": v for k, v in figures.items()} | ratios)
    print(f"\n{name} batch {batch}: amrbench {figures['ours']:,.0f} / tuned {figures['ours_tuned']:,.0f} samples/s; "
          f"DataLoader {figures['dataloader']:,.0f} / tuned {figures['dataloader_tuned']:,.0f}; "
          f"loop {ratios['loop']:.2f}x, loop (both tuned) {ratios['loop_tuned']:.2f}x, harness vs script "
          f"{ratios['harness']:.2f}x; {achieved / 1e9:.1f} GFLOP/s = {ratios['flops']:.2f} of matmul "
          f"{figures['matmul'] / 1e9:.1f} GFLOP/s")
