"""Training-loop throughput (samples/s) of amrbench.train.fit against a conventional
PyTorch loop (DataLoader over a TensorDataset), and the achieved FLOP rate of
convolution models against this machine's matmul FLOP rate, measured in the same run.

Every loop runs in a fresh single-threaded process, so the allocator setting of one
measurement cannot leak into the next. The conventional script builds the network with
torch's own ``nn.Dropout`` and NCHW weights and activations (as a user would write it),
the harness with the shipped layers (channels-last CNN1D, CNN2D and VT-CNN2; VT-CNN2's
``amrbench_plugins.models.layers.FastDropout``). Figures per model and batch size:
``loop``: fit vs the DataLoader loop on the same network, both with glibc's default
allocator settings (the loop alone);
``harness``: fit as a cell runs it (allocator tuned, shipped network) vs the
conventional script (defaults, conventional layers) — the gain a user sees;
``amp``: the same with ``amp: true`` (bfloat16 autocast on the CPU) vs the float32 script;
``flops``: the achieved float32 training FLOP rate (FlopCounterMode count x samples/s)
over the float32 matmul FLOP rate of a 1024^3 product in the same kind of process, and
``amp_flops`` the bfloat16 one over the bfloat16 matmul rate.

``test_machine_throughput``: the whole machine at batch 128, the script as a user runs it
(one process on every core) against as many concurrent single-threaded cells as cores (what
``--jobs`` does).

``test_channels_last_speedup``: each model with its shipped (version 2) layout against
version 1's in the same loop.

Run: python -m pytest tests/benchmarks/test_bench_train.py -m benchmark --benchmark-enable -s
"""
import multiprocessing
import os
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
from amrbench_plugins.models.layers import FastDropout

N, LENGTH, CLASSES = 4096, 128, 11
RESULTS = {}


def data(n=N):
    g = torch.Generator().manual_seed(0)
    return SignalSet(torch.randn(n, 2, LENGTH, generator=g), torch.randint(0, CLASSES, (n,), generator=g),
                     torch.zeros(n), [str(i) for i in range(CLASSES)])


def build(name, conventional=False):
    """The shipped network, or (``conventional``) the same layers as a user would write
    them: torch's ``nn.Dropout``, the default (NCHW) weight layout, and Conv1d layers where
    version 2 has height-1 Conv2d ones (ResNet1D, the visualisation ResNet)."""
    model = default_registry().create("model", name)
    torch.manual_seed(0)
    net = model.build(CLASSES, LENGTH)
    if conventional and getattr(net, "height1", False):
        torch.manual_seed(0)
        net = type(net)(CLASSES, LENGTH, layout="1d")
    if conventional:
        for module in net.modules():
            for child_name, child in module.named_children():
                if isinstance(child, FastDropout):
                    setattr(module, child_name, nn.Dropout(child.p))
        net = net.to(memory_format=torch.contiguous_format)
    return model, net


def amrbench_epoch(name, batch, amp=False):
    model, net = build(name)
    settings = validate_train_settings({"epochs": 1, "batch_size": batch, "amp": amp})
    train = data()
    start = time.perf_counter()
    fit(net, model.input_format, train, settings, torch.Generator().manual_seed(0), torch.device("cpu"))
    return N / (time.perf_counter() - start)


def dataloader_epoch(name, batch, conventional=False):
    model, net = build(name, conventional)
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


def matmul_flops(dtype=torch.float32):
    a, b = torch.randn(1024, 1024, dtype=dtype), torch.randn(1024, 1024, dtype=dtype)
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


def _in_child(loop, name, batch, tune, options, threads=1, barrier=None):
    from amrbench import allocator

    torch.set_num_threads(threads)
    if tune:
        allocator.tune()
    if loop == "matmul":
        return matmul_flops(**options)
    LOOPS[loop](name, batch, **options)  # warm-up epoch
    if barrier is not None:  # concurrent copies: the span of their two timed epochs
        barrier.wait(timeout=600)
        start = time.monotonic()
        for _ in range(2):
            LOOPS[loop](name, batch, **options)
        return start, time.monotonic()
    return max(LOOPS[loop](name, batch, **options) for _ in range(2))


def measure(loop, name=None, batch=None, tune=False, threads=1, **options):
    """Best of two epochs (after a warm-up) in a fresh spawned process."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_in_child, loop, name, batch, tune, options, threads).result()


def measure_concurrent(copies, loop, name, batch, tune=False, **options):
    """Samples/s of ``copies`` single-threaded processes training at once (the local
    executor's ``--jobs copies``): all their timed epochs over the wall-clock span from
    the first start to the last end (CLOCK_MONOTONIC is one clock for every process)."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(copies, mp_context=context) as pool:
        barrier = manager.Barrier(copies, timeout=600)
        futures = [pool.submit(_in_child, loop, name, batch, tune, options, 1, barrier) for _ in range(copies)]
        spans = [future.result() for future in futures]
    return copies * 2 * N / (max(end for _, end in spans) - min(start for start, _ in spans))


def named_figures(figures: dict) -> dict:
    """Benchmark extra_info names with their units: matmul rates are FLOP/s."""
    return {f"{k}_flop_per_s" if k.startswith("matmul") else f"{k}_samples_per_s": v for k, v in figures.items()}


@pytest.mark.parametrize("name", ["cnn1d", "cnn2d", "vtcnn2", "lstm"])
@pytest.mark.parametrize("batch", [128, 256])
def test_training_throughput(benchmark, name, batch):
    figures = {}

    def run_all():
        figures.update(script=measure("dataloader", name, batch, conventional=True),
                       dataloader=measure("dataloader", name, batch), ours=measure("amrbench", name, batch),
                       ours_tuned=measure("amrbench", name, batch, tune=True),
                       ours_amp=measure("amrbench", name, batch, tune=True, amp=True),
                       matmul=measure("matmul", tune=True),
                       matmul_bf16=measure("matmul", tune=True, dtype=torch.bfloat16))

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    flops_per_sample = train_flops_per_sample(name, batch)
    achieved = figures["ours_tuned"] * flops_per_sample
    achieved_amp = figures["ours_amp"] * flops_per_sample
    ratios = {"loop": figures["ours"] / figures["dataloader"], "harness": figures["ours_tuned"] / figures["script"],
              "amp": figures["ours_amp"] / figures["script"], "flops": achieved / figures["matmul"],
              "amp_flops": achieved_amp / figures["matmul_bf16"]}
    RESULTS[(name, batch)] = (figures, ratios)
    benchmark.extra_info.update(named_figures(figures) | ratios)
    print(f"\n{name} batch {batch}: script (DataLoader, conventional layers) {figures['script']:,.0f} samples/s, "
          f"DataLoader {figures['dataloader']:,.0f}, fit {figures['ours']:,.0f}, tuned {figures['ours_tuned']:,.0f}, "
          f"amp {figures['ours_amp']:,.0f}; loop {ratios['loop']:.2f}x, harness vs script {ratios['harness']:.2f}x, "
          f"amp vs script {ratios['amp']:.2f}x; {achieved / 1e9:.1f} GFLOP/s = {ratios['flops']:.2f} of matmul "
          f"{figures['matmul'] / 1e9:.1f} GFLOP/s; amp {achieved_amp / 1e9:.1f} GFLOP/s = {ratios['amp_flops']:.2f} "
          f"of bf16 matmul {figures['matmul_bf16'] / 1e9:.1f} GFLOP/s")


@pytest.mark.parametrize("name", ["cnn1d", "cnn2d", "vtcnn2", "lstm"])
def test_machine_throughput(benchmark, name):
    """The whole CPU, batch 128: the conventional script in one process on every core
    (``threads=cores``) against the harness as it runs a suite (one cell per core:
    ``--jobs cores``, each cell on one thread, allocator tuned)."""
    cores = len(os.sched_getaffinity(0))
    figures = {}
    benchmark.pedantic(lambda: figures.update(script=measure("dataloader", name, 128, threads=cores, conventional=True),
                                              harness=measure_concurrent(cores, "amrbench", name, 128, tune=True)),
                       rounds=1, iterations=1)
    ratio = figures["harness"] / figures["script"]
    benchmark.extra_info.update(named_figures(figures) | {"machine": ratio, "cores": cores})
    print(f"\n{name} batch 128 on {cores} cores: script ({cores} threads) {figures['script']:,.0f} samples/s, "
          f"harness ({cores} cells x 1 thread) {figures['harness']:,.0f}; {ratio:.2f}x")


LAYOUT_MODELS = ["cnn1d", "cnn2d", "alexnet", "signet", "resnet1d", "resnet-vis"]


@pytest.mark.parametrize("name", LAYOUT_MODELS)
def test_channels_last_speedup(benchmark, name):
    """The version-2 layout (channels-last; height-1 Conv2d for the 1-D networks) against
    version 1's (NCHW / Conv1d), both in the DataLoader loop at batch 128: the ratio is the
    layout's alone."""
    figures = {}
    benchmark.pedantic(lambda: figures.update(version1=measure("dataloader", name, 128, conventional=True),
                                              version2=measure("dataloader", name, 128)), rounds=1, iterations=1)
    ratio = figures["version2"] / figures["version1"]
    benchmark.extra_info.update(named_figures(figures) | {"speedup": ratio})
    print(f"\n{name}: version 1 layout {figures['version1']:,.0f} samples/s, version 2 {figures['version2']:,.0f}; "
          f"{ratio:.2f}x")


# --------------------------------------------------------------------------- CUDA
# In-process (one CUDA context), N_CUDA signals per epoch; every timer stops after a
# device synchronisation. "flops" is the achieved training FLOP rate over a float32
# (TF32 off) 4096^3 product's rate, "amp_flops" over a float16 one: the share of the
# GPU's arithmetic these small models use (FlopCounterMode does not count the LSTM's
# recurrent kernels, so its figure covers the classifier only).
N_CUDA = 16384


def timed(device, run):
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    torch.cuda.synchronize(device)
    return time.perf_counter() - start


def cuda_fit_rate(name, batch, device, amp=False):
    model, net = build(name)
    settings = validate_train_settings({"epochs": 1, "batch_size": batch, "amp": amp})
    train = data(N_CUDA)
    run = lambda: fit(net, model.input_format, train, settings, torch.Generator().manual_seed(0), device)  # noqa: E731
    run()  # warm-up: kernels chosen, memory pooled
    return N_CUDA / min(timed(device, run) for _ in range(2))


def cuda_dataloader_rate(name, batch, device):
    """The conventional loop on the same network: a DataLoader over CPU tensors, each batch
    copied over (on CUDA the shipped dropout is ``F.dropout`` anyway)."""
    model, net = build(name)
    net.to(device).train()
    train = data(N_CUDA)
    loader = DataLoader(TensorDataset(train.x, train.y), batch_size=batch, shuffle=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def run():
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = loss_fn(net(transforms.apply(model.input_format, xb)), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    run()
    return N_CUDA / min(timed(device, run) for _ in range(2))


def cuda_matmul_flops(device, dtype):
    a = torch.randn(4096, 4096, device=device, dtype=dtype)
    b = torch.randn(4096, 4096, device=device, dtype=dtype)
    a @ b
    return 10 * 2 * 4096 ** 3 / timed(device, lambda: [a @ b for _ in range(10)])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["cnn1d", "cnn2d", "vtcnn2", "lstm"])
@pytest.mark.parametrize("batch", [128, 256])
def test_training_throughput_cuda(benchmark, monkeypatch, name, batch):
    device = torch.device("cuda")
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    figures = {}

    def run_all():
        figures.update(dataloader=cuda_dataloader_rate(name, batch, device), ours=cuda_fit_rate(name, batch, device),
                       ours_amp=cuda_fit_rate(name, batch, device, amp=True),
                       matmul=cuda_matmul_flops(device, torch.float32),
                       matmul_fp16=cuda_matmul_flops(device, torch.float16))

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    flops_per_sample = train_flops_per_sample(name, batch)
    ratios = {"loop": figures["ours"] / figures["dataloader"], "amp": figures["ours_amp"] / figures["dataloader"],
              "flops": figures["ours"] * flops_per_sample / figures["matmul"],
              "amp_flops": figures["ours_amp"] * flops_per_sample / figures["matmul_fp16"]}
    benchmark.extra_info.update(named_figures(figures) | ratios)
    print(f"\nCUDA {name} batch {batch}: DataLoader {figures['dataloader']:,.0f} samples/s, fit {figures['ours']:,.0f}, "
          f"amp {figures['ours_amp']:,.0f}; loop {ratios['loop']:.2f}x, amp {ratios['amp']:.2f}x; "
          f"{ratios['flops']:.4f} of fp32 matmul {figures['matmul'] / 1e12:.1f} TFLOP/s, amp {ratios['amp_flops']:.4f} "
          f"of fp16 matmul {figures['matmul_fp16'] / 1e12:.1f} TFLOP/s")
