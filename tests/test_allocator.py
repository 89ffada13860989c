"""amrbench.allocator: inside ``large_buffers_from_heap`` (every ``fit``), training steps
with activations above glibc's largest mmap threshold (32 MiB) reuse freed memory
instead of faulting in fresh pages every step; outside it glibc maps a request that no
free heap chunk holds, as before."""
import subprocess
import sys

import pytest

from amrbench import allocator

# VT-CNN2's first layer at batch 128: 256 x 2 x 130 maps, 34 MB per activation
CHILD = """
import contextlib, resource, sys, torch
from torch import nn
from amrbench import allocator
if sys.argv[1] == "tuned":
    assert allocator.tune()
torch.manual_seed(0)
torch.set_num_threads(1)
net = nn.Sequential(nn.Conv2d(1, 256, (1, 3)), nn.ReLU(), nn.Conv2d(256, 4, (2, 3)), nn.Flatten(), nn.Linear(512, 2))
x, y = torch.randn(128, 1, 2, 132), torch.randint(0, 2, (128,))
def faults_per_step():
    for repeat in range(5):
        if repeat == 2:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        net.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3
def faults_of_a_new_size():  # larger than any chunk the heap holds
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        torch.empty(32 * 1024 * 1024).fill_(1.0)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3
with allocator.large_buffers_from_heap():
    with allocator.large_buffers_from_heap():
        inside = faults_per_step()
    nested_exit = faults_per_step()
print(inside, nested_exit, faults_of_a_new_size())
"""
ACTIVATION_PAGES = 128 * 256 * 2 * 130 * 4 // 4096


def faults_per_step(mode: str) -> list:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return [float(value) for value in out.stdout.split()[-3:]]


@pytest.mark.skipif(not allocator.tune(), reason="glibc's mallopt is not available")
def test_large_activations_come_from_the_heap_inside_fit_only():
    inside, nested_exit, after = faults_per_step("tuned")
    assert inside < ACTIVATION_PAGES / 10 and nested_exit < ACTIVATION_PAGES / 10
    assert after > 32 * 1024 * 1024 * 4 // 4096 * 0.9  # mapped anew each time: glibc's mmap is back


@pytest.mark.skipif(not allocator.tune(), reason="glibc's mallopt is not available")
def test_an_untuned_process_keeps_glibcs_behaviour():
    assert min(faults_per_step("default")[:2]) > ACTIVATION_PAGES
