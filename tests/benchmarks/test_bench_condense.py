"""Condensation cost: seconds per iteration of DC, DM and MDM at 10/50/100 signals per
class on RML2016.10a-sized data (11 classes, length 128), MDM's overhead over DM, and
the batched DM step against a per-class loop in the reference code's style (one forward
of the network per class and side), as ratios measured in the same run.

The per-iteration cost does not depend on the training-set size (each iteration draws
``batch_real`` = 256 real signals per class), so random tensors (N, 2, 128) stand in for
the data. The network is the MDM paper's condensation model, AlexNet (override with
AMRBENCH_BENCH_MODEL). A full DC iteration (outer x inner loops of the reference: 10 x 50
at SPC 10, 50 x 10 at SPC 50/100) takes minutes on a CPU, so DC is measured as one
matching step (loops [1, 1]) and one inner training epoch (from loops [2, 1]) and
extrapolated to the reference loops.

Environment: AMRBENCH_BENCH_THREADS (torch threads; default torch's), AMRBENCH_BENCH_CLOCK
("wall", default, or "process": CPU seconds of this process, steadier on a shared machine
when run with 1 thread), AMRBENCH_BENCH_REPEATS (timed iterations after a warm-up, 2).

Run: python -m pytest tests/benchmarks/test_bench_condense.py -m benchmark --benchmark-enable -s
"""
from __future__ import annotations

import os
import time

import pytest
import torch

from amrbench import resources
from amrbench.api import Context, SignalSet
from amrbench.registry import default_registry
from amrbench.store import ArtifactCache
from amrbench_plugins.condense.synthetic import class_means

CLASSES, LENGTH, PER_CLASS = 11, 128, 2000
MODEL = os.environ.get("AMRBENCH_BENCH_MODEL", "alexnet")
SPCS = (10, 50, 100)
REPEATS = int(os.environ.get("AMRBENCH_BENCH_REPEATS", "2"))
CLOCK = time.process_time if os.environ.get("AMRBENCH_BENCH_CLOCK") == "process" else time.perf_counter
RESULTS: dict = {}


@pytest.fixture(autouse=True, scope="module")
def threads():
    before = torch.get_num_threads()
    if os.environ.get("AMRBENCH_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["AMRBENCH_BENCH_THREADS"]))
    yield
    torch.set_num_threads(before)


def data() -> SignalSet:
    g = torch.Generator().manual_seed(0)
    n = CLASSES * PER_CLASS
    return SignalSet(torch.randn(n, 2, LENGTH, generator=g) * 0.01, torch.arange(CLASSES).repeat_interleave(PER_CLASS),
                     torch.full((n,), 10.0), [f"c{i}" for i in range(CLASSES)], "rml2016a-sized")


def prepared(name: str, spc: int, **params):
    registry = default_registry()
    cell = {"dataset": {"name": "bench", "snr": None}, "model": {"source": MODEL, "target": MODEL}, "seed": 0,
            "budget": {"spc": spc}}
    ctx = Context(seed=0, device=torch.device("cpu"), cell=cell, cache=ArtifactCache(), registry=registry, resolver=resources.get)
    c = registry.create("condenser", name, {"iterations": 0, "lr": 1e-4, **params})
    c.condense(ctx, data(), spc)
    return c


def per_iteration(step, repeats: int = REPEATS) -> float:
    step(0)  # warm-up
    start = CLOCK()
    for i in range(repeats):
        step(i + 1)
    return (CLOCK() - start) / repeats


def loop_step(c):
    """One DM iteration as the reference code writes it: a Python loop over classes with a
    forward of the real batch and of the synthetic signals of each class."""
    def step(_):
        c.embedder.sample()
        loss = c.syn_x.new_zeros(())
        for k in range(c.num_classes):
            real = c.real_x[c.sampler.sample_class(k)]
            syn = c.syn_x[k * c.spc:(k + 1) * c.spc]
            with torch.no_grad():
                mu_real = c.embedder(real).mean(0)
            loss = loss + ((mu_real - c.embedder(syn).mean(0)) ** 2).sum()
        c.update(loss)
        return loss.item()
    return step


@pytest.mark.parametrize("spc", SPCS)
def test_dm_mdm_seconds_per_iteration(benchmark, spc):
    dm = prepared("dm", spc)
    mdm = prepared("mdm", spc)
    t_dm = per_iteration(dm.step)
    t_mdm = per_iteration(mdm.step)
    t_loop = per_iteration(loop_step(prepared("dm", spc)))
    benchmark.pedantic(dm.step, args=(0,), rounds=1, iterations=1)
    RESULTS[("dm", spc)], RESULTS[("mdm", spc)], RESULTS[("dm-loop", spc)] = t_dm, t_mdm, t_loop
    benchmark.extra_info.update(dm_s_per_iter=t_dm, mdm_s_per_iter=t_mdm, loop_s_per_iter=t_loop,
                                mdm_over_dm=t_mdm / t_dm, loop_over_batched=t_loop / t_dm)
    print(f"\n{MODEL} SPC {spc}: DM {t_dm:.3f} s/it, MDM {t_mdm:.3f} s/it ({t_mdm / t_dm:.2f}x DM); "
          f"per-class loop DM {t_loop:.3f} s/it (batched is {t_loop / t_dm:.2f}x faster)")


def test_batched_and_loop_give_the_same_loss():
    c = prepared("dm", 10)
    torch.manual_seed(1)
    c.embedder.sample()
    index, labels = c.sampler.sample()
    real = c.real_x[index]
    with torch.no_grad():
        batched = ((class_means(c.embedder(real), labels, CLASSES)
                    - class_means(c.embedder(c.syn_x), c.syn_y, CLASSES)) ** 2).sum()
        looped = sum(((c.embedder(real[labels == k]).mean(0) - c.embedder(c.syn_x[c.syn_y == k]).mean(0)) ** 2).sum()
                     for k in range(CLASSES))
    assert torch.allclose(batched, looped, rtol=1e-4)


@pytest.mark.parametrize("spc", SPCS)
def test_dc_seconds_per_iteration(benchmark, spc):
    from amrbench_plugins.condense.dc import reference_loops

    one = prepared("dc", spc, loops=[1, 1])
    t_match = per_iteration(one.step, 1)
    net = one.embedder.sample()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    one.inner = 1
    t_inner = per_iteration(lambda _: one._train_net(net, optimizer), 2)
    outer, inner = reference_loops(spc)
    t_iter = outer * t_match + (outer - 1) * inner * t_inner
    benchmark.pedantic(one.step, args=(0,), rounds=1, iterations=1)
    RESULTS[("dc", spc)] = t_iter
    RESULTS[("dc-match", spc)] = t_match
    benchmark.extra_info.update(match_step_s=t_match, inner_epoch_s=t_inner, extrapolated_s_per_iter=t_iter,
                                loops=[outer, inner])
    print(f"\n{MODEL} SPC {spc}: DC matching step {t_match:.2f} s, inner epoch {t_inner:.3f} s -> "
          f"{t_iter:.1f} s per reference iteration ({outer} x {inner} loops)")


def test_summary():
    if not RESULTS:
        pytest.skip("run with the other benchmarks")
    clock = "CPU" if CLOCK is time.process_time else "wall"
    lines = [f"{clock} seconds; threads {torch.get_num_threads()}, model {MODEL}, batch_real 256, 11 classes x 128 samples"]
    for spc in SPCS:
        dm, mdm, loop = RESULTS.get(("dm", spc)), RESULTS.get(("mdm", spc)), RESULTS.get(("dm-loop", spc))
        dc = RESULTS.get(("dc", spc))
        parts = [f"SPC {spc}:"]
        if dm:
            parts.append(f"DM {dm:.3f} s/it (20k its: {20000 * dm / 3600:.1f} h)")
            parts.append(f"MDM {mdm:.3f} s/it ({mdm / dm:.2f}x DM = {mdm / (2 * dm):.2f}x the two domains' "
                         f"network work; 20k its: {20000 * mdm / 3600:.1f} h)")
            parts.append(f"loop/batched {loop / dm:.2f}x")
        if dc:
            parts.append(f"DC {dc:.1f} s/it (1k its: {1000 * dc / 3600:.1f} h)")
        lines.append(" ".join(parts))
    print("\n" + "\n".join(lines))
