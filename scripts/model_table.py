"""Print a Markdown table of every model plugin: name, input format, parameter count and
the CPU time of one forward + backward pass (training mode, cross-entropy) on a batch.

    python scripts/model_table.py                       # L = 128, 11 classes, batch 128
    python scripts/model_table.py --length 1024 --classes 24 --batch 32 --threads 2
    python scripts/model_table.py --only cnn1d,lstm --repeats 5

Models are found like the harness finds them (the ``amrbench`` entry points, third-party
plugins included); built-in model modules that are not installed as entry points are
added from ``amrbench_plugins.models`` so the script also works from a source checkout
(run it with ``PYTHONPATH=.:plugins``). Times are the median of ``--repeats`` timed
passes after one warm-up pass.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "plugins"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from amrbench import transforms  # noqa: E402
from amrbench.registry import Registry  # noqa: E402


def model_registry() -> Registry:
    registry = Registry().load_entry_points()
    try:
        package = importlib.import_module("amrbench_plugins.models")
    except ImportError:
        return registry
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if hasattr(module, "amrbench_register") and not registry.pm.is_registered(module):
            registry.register_module(module)  # a name already known keeps its entry point
    return registry


def time_step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int) -> float:
    net.train()
    times = []
    for i in range(repeats + 1):
        net.zero_grad(set_to_none=True)
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        if i:  # the first pass is a warm-up
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: leave as is)")
    parser.add_argument("--only", default="", help="comma-separated model names")
    parser.add_argument("--no-time", action="store_true", help="parameter counts only")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    registry = model_registry()
    names = registry.names("model")
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        for n in wanted:
            registry.info("model", n)  # raises with "did you mean"
        names = wanted

    time_col = f"fwd+bwd, batch {args.batch} (ms)"
    print(f"Models at L = {args.length}, {args.classes} classes; CPU, {torch.get_num_threads()} thread(s), "
          f"torch {torch.__version__}.\n")
    print(f"| model | input format | parameters | {time_col} | description |")
    print("|---|---|---:|---:|---|")
    for name in names:
        cls = registry.get("model", name)
        torch.manual_seed(0)
        net = cls().build(args.classes, args.length)
        params = sum(p.numel() for p in net.parameters())
        if args.no_time:
            ms = "-"
        else:
            x = transforms.apply(cls.input_format, torch.randn(args.batch, 2, args.length))
            y = torch.randint(0, args.classes, (args.batch,))
            ms = f"{1000 * time_step(net, x, y, args.repeats):,.0f}"
        print(f"| {name} | {cls.input_format} | {params:,} | {ms} | {cls.description()} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
