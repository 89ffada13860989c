"""Benchmark: how long a newcomer's first commands take, as a ratio to ``python -c "import
torch"`` timed in the same run (what every command cost while the CLI imported torch).
Run on demand:

    python -m pytest tests/benchmarks/test_bench_startup.py -m benchmark --benchmark-enable -p no:cacheprovider -s

Each command runs in a fresh interpreter, as a user starts it; ``list`` and ``datasets
list`` after one untimed run that builds the plugin catalogue (the full import, once).
"""
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

ROUNDS = 5
COMMANDS = {"help": ["--help"], "list": ["list"], "list-models": ["list", "models"],
            "datasets-list": ["datasets", "list"]}


def _seconds(argv) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, cwd=REPO, timeout=600)
    return time.perf_counter() - start


@pytest.fixture(scope="module")
def torch_import_s() -> float:
    """Median wall time of a fresh interpreter importing torch."""
    return statistics.median(_seconds([sys.executable, "-c", "import torch"]) for _ in range(ROUNDS))


@pytest.mark.benchmark
@pytest.mark.parametrize("name", COMMANDS)
def test_command_starts_in_a_fraction_of_a_torch_import(benchmark, name, torch_import_s):
    argv = [sys.executable, "-m", "amrbench.cli", *COMMANDS[name]]
    _seconds(argv)  # builds the catalogue (a listing) or warms the file cache
    times = []
    benchmark.pedantic(lambda: times.append(_seconds(argv)), rounds=ROUNDS, iterations=1)
    seconds = statistics.median(times)
    ratio = seconds / torch_import_s
    benchmark.extra_info.update({"median_s": seconds, "import_torch_s": torch_import_s, "ratio": ratio})
    print(f"\namrbench {' '.join(COMMANDS[name])}: {seconds:.2f} s; python -c 'import torch': "
          f"{torch_import_s:.2f} s; ratio {ratio:.2f}")
    assert ratio < 0.5, f"amrbench {' '.join(COMMANDS[name])} takes {ratio:.2f}x a torch import"
