import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import amrbench.registry

# One torch thread per test process (and per subprocess it starts): tiny models gain
# nothing from more, and on a busy machine extra threads make them many times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent


from amrbench.contracts.conftest import one_thread  # noqa: E402,F401 (autouse: every test starts on one thread)

TINY_SUITE = """
name: tiny
protocol: select
datasets:
  - name: toy
    params: {per_class_per_snr: 24, snr_values: [10, 18], length: 64}
methods: [uniform, herding]
rates: [0.25, 0.5]
models: [cnn1d]
seeds: [0, 1]
train: {epochs: 1, batch_size: 32}
settings: {scoring: {epochs: 1}}
"""


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own dataset/artifact cache and a freshly loaded registry."""
    monkeypatch.setenv("AMRBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(amrbench.registry, "_DEFAULT", None)
    monkeypatch.chdir(tmp_path)  # nothing a test runs may write into the repository
    from amrbench import resources

    resources._MEMO.clear()
    yield tmp_path / "cache"


@pytest.fixture
def write_suite(tmp_path):
    def write(text=TINY_SUITE, name="suite.yaml"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def fake_distribution(root: Path, dist: str, modules: dict, entry_points: dict) -> Path:
    """A distribution on sys.path without pip: a dist-info folder (METADATA and
    entry_points.txt in the group ``amrbench``) beside the module files."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[amrbench]\n{lines}")
    return root


def run_cli(*args, env_extra=None, cwd=None, timeout=300):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "amrbench.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd or REPO, timeout=timeout)
