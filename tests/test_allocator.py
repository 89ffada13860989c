"""amrbench.allocator: inside ``large_buffers_from_heap`` (every ``fit``), training steps
with buffers above glibc's largest mmap threshold (32 MiB) reuse freed heap memory
instead of faulting in fresh pages every step; once the outermost scope ends, glibc maps
large requests again."""
import contextlib
import ctypes
import ctypes.util
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from amrbench import allocator
from amrbench.api import SignalSet
from amrbench.train import fit, validate_train_settings

# VT-CNN2's first layer at batch 128: 256 x 2 x 130 maps, 34 MB per activation
CHILD = """
import ctypes, resource, sys, torch
from torch import nn
from amrbench import allocator
if sys.argv[1] == "tuned":
    assert allocator.tune()
torch.manual_seed(0)
torch.set_num_threads(1)
net = nn.Sequential(nn.Conv2d(1, 256, (1, 3)), nn.ReLU(), nn.Conv2d(256, 4, (2, 3)), nn.Flatten(), nn.Linear(512, 2))
x, y = torch.randn(128, 1, 2, 132), torch.randint(0, 2, (128,))
def faults_per_step():
    for repeat in range(8):
        if repeat == 5:  # the heap has reached its steady state
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        net.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
def mapped_by_glibc():  # larger than any heap chunk or top (trimmed above 256 MiB) can be
    before = libc.mallinfo2().hblks
    buffer = torch.empty(80 * 1024 * 1024)
    return libc.mallinfo2().hblks > before
with allocator.large_buffers_from_heap():
    with allocator.large_buffers_from_heap():
        inside = faults_per_step()
        mapped_inside = mapped_by_glibc()
    nested_exit = faults_per_step()
print(inside, nested_exit, int(mapped_inside), int(mapped_by_glibc()))
"""
ACTIVATION_PAGES = 128 * 256 * 2 * 130 * 4 // 4096


def glibc_with_mallinfo2() -> bool:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return hasattr(libc, "mallopt") and hasattr(libc, "mallinfo2") and "LD_PRELOAD" not in os.environ


needs_glibc = pytest.mark.skipif(not glibc_with_mallinfo2(),
                                 reason="needs glibc >= 2.33 (mallopt, mallinfo2) as the allocator, no LD_PRELOAD")


def run_child(mode: str) -> list:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return [float(value) for value in out.stdout.split()[-4:]]


@needs_glibc
def test_large_buffers_come_from_the_heap_inside_fit_only():
    # page faults are counted over a whole process, so an unrelated kernel event (page
    # reclaim, huge-page collapse on a loaded machine) can add some to one run: take the
    # fewest of up to three runs; without the scope every run faults in every activation
    runs = []
    for _ in range(3):
        runs.append(run_child("tuned"))
        if max(runs[-1][:2]) < ACTIVATION_PAGES / 10:
            break
    inside, nested_exit = min(r[0] for r in runs), min(r[1] for r in runs)
    mapped_inside, mapped_after = runs[-1][2:]
    assert inside < ACTIVATION_PAGES / 10 and nested_exit < ACTIVATION_PAGES / 10
    assert not mapped_inside and mapped_after  # glibc's mmap is back once the outermost scope ends


@needs_glibc
def test_an_untuned_process_keeps_glibcs_behaviour():
    inside, nested_exit, mapped_inside, mapped_after = run_child("default")
    assert mapped_inside and mapped_after  # the scope does nothing: glibc maps large requests


def test_every_training_step_of_fit_runs_inside_the_heap_scope(monkeypatch):
    scope = {"open": False, "steps_outside": 0, "steps_inside": 0}

    @contextlib.contextmanager
    def recording_scope():
        scope["open"] = True
        yield
        scope["open"] = False

    def count_step(module, inputs):
        scope["steps_inside" if scope["open"] else "steps_outside"] += 1

    monkeypatch.setattr(allocator, "large_buffers_from_heap", recording_scope)
    net = nn.Sequential(nn.Flatten(), nn.Linear(2 * 8, 3))
    net.register_forward_pre_hook(count_step)
    data = SignalSet(torch.randn(12, 2, 8), torch.arange(12) % 3, torch.zeros(12), ["a", "b", "c"])
    fit(net, "iq", data, validate_train_settings({"epochs": 2, "batch_size": 4}), torch.Generator().manual_seed(0),
        torch.device("cpu"))
    assert scope == {"open": False, "steps_outside": 0, "steps_inside": 6}
