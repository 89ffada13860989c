"""Seconds per iteration of DM, MDM and DC, and of one AlexNet training epoch, at the
``evidence`` profile's setting (suites/table1.yaml): standardised rml2016a-synth
[10, 18] dB, AlexNet, one torch thread; the figures behind the profile's cost arithmetic
(docs/condense.md).

    python scripts/condense_cost.py                          # SPC 10 and 50, batch_real 64
    python scripts/condense_cost.py --spc 1 10 50 --batch-real 256 --per-class-per-snr 1000
    python scripts/condense_cost.py --model vgg16 --spc 50 --only dm mdm   # mdm-table2's VGG16 row

Each condenser runs ``--repeats`` iterations at a fixed lr through its own ``condense``
(after one warm-up iteration); DC is timed as one matching step (loops [1, 1]) and one
inner training epoch on the synthetic set, and extrapolated to the reference loops
(SPC 1 -> 1 x 1, 10 -> 10 x 50, 50 -> 50 x 10). The cost of an iteration does not depend
on the training-set size (each draws ``batch_real`` real signals per class); a training
epoch does. Times are CPU seconds of this process (steadier than wall time on a shared
machine with one thread) and wall seconds.
"""
from __future__ import annotations

import argparse
import time

import torch

from amrbench import resources
from amrbench.api import Context
from amrbench.registry import default_registry
from amrbench.resources import load_splits
from amrbench.store import ArtifactCache
from amrbench.train import fit, validate_train_settings


def clocks():
    return time.process_time(), time.perf_counter()


def since(start) -> tuple:
    cpu, wall = clocks()
    return cpu - start[0], wall - start[1]


MODEL = "alexnet"


def context(registry, spec, spc, seed=0):
    cell = {"dataset": spec, "model": {"source": MODEL, "target": MODEL}, "seed": seed, "budget": {"spc": spc},
            "settings": {}, "train": {}}
    return Context(seed=seed, device=torch.device("cpu"), cell=cell, cache=ArtifactCache(), registry=registry,
                   resolver=resources.get)


def per_iteration(registry, spec, train, name, spc, repeats, **params) -> tuple:
    """(CPU, wall) seconds per iteration of ``name`` through its own condense()."""
    warm = registry.create("condenser", name, {"iterations": 1, "lr": 1e-3, **params})
    warm.condense(context(registry, spec, spc), train, spc)
    c = registry.create("condenser", name, {"iterations": repeats, "lr": 1e-3, **params})
    start = clocks()
    c.condense(context(registry, spec, spc), train, spc)
    cpu, wall = since(start)
    return cpu / repeats, wall / repeats


def dc_inner_epoch(registry, spec, train, spc, batch_real) -> tuple:
    c = registry.create("condenser", "dc", {"iterations": 0, "lr": 1e-3, "loops": [2, 1], "batch_real": batch_real})
    c.condense(context(registry, spec, spc), train, spc)
    net = c.embedder.sample()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    c._train_net(net, optimizer)  # warm-up
    start = clocks()
    c._train_net(net, optimizer)
    return since(start)


def epoch_seconds(registry, data, settings) -> tuple:
    model = registry.create("model", MODEL)
    torch.manual_seed(0)
    net = model.build(data.num_classes, data.length)
    one = validate_train_settings({**settings, "epochs": 1})
    fit(net, model.input_format, data.subset(torch.arange(min(len(data), 256))), one, torch.Generator().manual_seed(0),
        torch.device("cpu"))  # warm-up
    start = clocks()
    fit(net, model.input_format, data, one, torch.Generator().manual_seed(0), torch.device("cpu"))
    return since(start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spc", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--batch-real", type=int, default=64)
    parser.add_argument("--per-class-per-snr", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default="alexnet", help="condensation and training network")
    parser.add_argument("--only", nargs="+", choices=("dm", "mdm", "dc"), default=["dm", "mdm", "dc"])
    args = parser.parse_args(argv)
    global MODEL
    MODEL = args.model
    torch.set_num_threads(args.threads)
    registry = default_registry()
    spec = {"name": "rml2016a-synth", "params": registry.create("dataset", "rml2016a-synth",
                                                                {"per_class_per_snr": args.per_class_per_snr}).params,
            "snr": [10, 18], "test_fraction": 0.2, "seed": 0, "standardize": True}
    train, test = load_splits(registry, spec)
    print(f"rml2016a-synth [10, 18] dB standardised, per_class_per_snr {args.per_class_per_snr}: {len(train)} training "
          f"signals; {MODEL}; batch_real {args.batch_real}; {args.threads} thread(s); CPU s (wall s)\n")
    print("| SPC | DM s/it | MDM s/it | DC matching step s | DC inner epoch s | DC s/it (reference loops) |")
    print("|---|---|---|---|---|---|")
    from amrbench_plugins.condense.dc import reference_loops

    for spc in args.spc:
        none = (float("nan"), float("nan"))
        dm = per_iteration(registry, spec, train, "dm", spc, args.repeats, batch_real=args.batch_real) \
            if "dm" in args.only else none
        mdm = per_iteration(registry, spec, train, "mdm", spc, args.repeats, batch_real=args.batch_real,
                            fd_scale="none") if "mdm" in args.only else none
        match = per_iteration(registry, spec, train, "dc", spc, 1, batch_real=args.batch_real, loops=[1, 1]) \
            if "dc" in args.only else none
        inner = dc_inner_epoch(registry, spec, train, spc, args.batch_real) if "dc" in args.only else none
        outer, loops_inner = reference_loops(spc)
        dc = tuple(outer * m + (outer - 1) * loops_inner * i for m, i in zip(match, inner))
        cells = [f"{a:.3g} ({b:.3g})" for a, b in (dm, mdm, match, inner, dc)]
        print(f"| {spc} | " + " | ".join(cells) + f" ({outer} x {loops_inner}) |", flush=True)
    settings = {"batch_size": 128, "optimizer": "adam", "lr": 0.001}
    whole = epoch_seconds(registry, train, settings)
    print(f"\n{MODEL} training epoch on the whole training split ({len(train)} signals, batch 128, Adam): "
          f"{whole[0]:.3g} CPU s ({whole[1]:.3g} wall s) = {1000 * whole[0] / len(train):.3g} ms per signal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
