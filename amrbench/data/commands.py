"""``amrbench datasets ...``: list, inspect, pre-generate and plot dataset plugins.

Wiring into the main CLI is one call; every subcommand stores its handler in
``args.handler``, called as ``args.handler(args, registry)`` and returning an exit code::

    from amrbench.data import commands
    commands.add_parser(subparsers)          # adds `datasets list|info|make|plot`
    ...
    return args.handler(args, registry)

Subcommands: ``list``; ``info NAME [--path FILE] [--snr LO HI]`` (classes, counts per
class x SNR, shapes, cache location); ``make NAME`` (generate into the cache);
``plot NAME [--out FILE.png]`` (one example per class: time domain, |DFT|,
constellation). ``--param KEY=VALUE`` (repeatable, VALUE parsed as JSON when it can be)
sets any other dataset parameter (e.g. ``--param allow_nonfinite=true`` to inspect a
file holding NaN samples), ``--seed`` the seed (default 0). A selection that leaves no
signal is one error line, not a traceback.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from amrbench.basics import AmrbenchError


# --------------------------------------------------------------------------- parser
def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``datasets`` subcommand (with list/info/make/plot) to ``subparsers``."""
    parser = subparsers.add_parser("datasets", help="list, inspect, pre-generate and plot datasets",
                                   description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="datasets_command", metavar="{list,info,make,plot}")
    sub.required = True
    from amrbench.listing import list_datasets

    sub.add_parser("list", help="list the dataset plugins").set_defaults(handler=list_datasets, loads_plugins=False)
    info = sub.add_parser("info", help="classes, counts per class x SNR, shapes, cache location")
    make = sub.add_parser("make", help="generate a dataset into the cache")
    plot = sub.add_parser("plot", help="PNG grid with one example per class")
    for p in (info, make, plot):
        _add_dataset_arguments(p)
    plot.add_argument("--out", default=None, help="PNG file (default: <NAME>_examples.png)")
    info.set_defaults(handler=cmd_info)
    make.set_defaults(handler=cmd_make)
    plot.set_defaults(handler=cmd_plot)
    return parser


def _add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="dataset plugin name (see `amrbench datasets list`)")
    p.add_argument("--path", default=None, help="data file of a loader plugin")
    p.add_argument("--snr", nargs=2, type=float, metavar=("LO", "HI"), default=None, help="keep LO <= SNR <= HI")
    p.add_argument("--seed", type=int, default=0, help="seed of a generated dataset (default 0)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="other dataset parameter")


def parse_params(items, option: str = "--param") -> dict:
    """KEY=VALUE strings (of the command-line ``option``) to a dict, VALUE parsed as JSON
    when it can be."""
    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise AmrbenchError(f"{option} expects KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def create_dataset(args, registry):
    cls = registry.get("dataset", args.name)
    params = parse_params(args.param)
    if args.path is not None:
        params["path"] = args.path
    return cls(**params)


def load_dataset(args, registry):
    """(plugin, its SNR-filtered SignalSet); AmrbenchError when nothing is left."""
    from amrbench.data.splits import filter_snr

    dataset = create_dataset(args, registry)
    snr = tuple(args.snr) if args.snr else None
    data = filter_snr(dataset.load(args.seed, snr), snr)
    if len(data) == 0:
        where = f" with SNR in [{snr[0]:g}, {snr[1]:g}] dB" if snr else ""
        raise AmrbenchError(f"dataset {args.name!r}: no signals{where}; widen or drop --snr, or check --param")
    return dataset, data


# --------------------------------------------------------------------------- handlers
def _cache_location(dataset, args) -> str:
    path = dataset.cache_path(args.seed, tuple(args.snr) if args.snr else None)
    if path is not None:
        return f"{path} ({'present' if Path(path).exists() else 'absent'})"
    from amrbench.data import store

    return f"{store.datasets_dir()} (loader caches, if any)"


def count_table(data) -> str:
    """Counts per class (rows) x SNR (columns); one line when every group is equal."""
    snrs = np.unique(data.snr.numpy())
    y = data.y.numpy()
    s = data.snr.numpy()
    same = [(s == v) | (np.isnan(s) & np.isnan(v)) for v in snrs]  # unknown SNRs (NaN) count as one column
    counts = np.array([[int(np.sum((y == c) & at)) for at in same] for c in range(data.num_classes)])
    if counts.size and counts.min() == counts.max():
        return f"every (class, SNR) group: {counts.flat[0]}"
    width = max(5, len(str(counts.max())) + 1)
    label = max(len(c) for c in data.classes)
    head = " " * label + "".join(f"{v:>{width}g}" for v in snrs)
    rows = [f"{c:<{label}}" + "".join(f"{n:>{width}}" for n in row) for c, row in zip(data.classes, counts)]
    return "\n".join([head] + rows)


def cmd_info(args, registry) -> int:
    dataset, data = load_dataset(args, registry)
    snrs = np.unique(data.snr.numpy())
    print(f"{dataset.name} v{dataset.version}: {dataset.description()}")
    print(f"parameters: {json.dumps(dataset.params, default=str)}")
    print(f"classes ({data.num_classes}): {', '.join(data.classes)}")
    print(f"signals: {len(data)}, x {tuple(data.x.shape)} {str(data.x.dtype).replace('torch.', '')}, "
          f"y {tuple(data.y.shape)}, snr {tuple(data.snr.shape)}")
    if len(snrs):
        print(f"SNR values ({len(snrs)}): {', '.join(f'{v:g}' for v in snrs)}")
    print("counts per class x SNR:\n" + count_table(data))
    for note in dataset.notes or ():  # what a file loader detected and converted
        print(f"read: {note}")
    print(f"cache: {_cache_location(dataset, args)}")
    return 0


def cmd_make(args, registry) -> int:
    dataset, data = load_dataset(args, registry)
    print(f"{dataset.name}: {len(data)} signals, x {tuple(data.x.shape)}; cache: {_cache_location(dataset, args)}")
    return 0


def example_rows(data) -> list:
    """Index of one example per class, at the highest SNR that class has."""
    y, s = data.y.numpy(), np.nan_to_num(data.snr.numpy(), nan=-np.inf)
    picks = []
    for c in range(data.num_classes):
        rows = np.flatnonzero(y == c)
        picks.append(int(rows[np.argmax(s[rows])]) if len(rows) else None)
    return picks


def cmd_plot(args, registry) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dataset, data = load_dataset(args, registry)
    picks = example_rows(data)
    fig, axes = plt.subplots(len(picks), 3, figsize=(11, 1.7 * len(picks) + 0.6), squeeze=False)
    for c, (row, axs) in enumerate(zip(picks, axes)):
        axs[0].set_ylabel(data.classes[c], rotation=0, ha="right", va="center")
        if row is None:
            for ax in axs:
                ax.axis("off")
            continue
        _plot_example(axs, data.x[row].numpy(), float(data.snr[row]))
    axes[0][0].set_title("time domain (I, Q)")
    axes[0][1].set_title("|DFT| (dB), normalised frequency")
    axes[0][2].set_title("constellation")
    fig.suptitle(f"{dataset.name}: one example per class (highest SNR available)", y=0.995)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    out = Path(args.out or f"{dataset.name}_examples.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    print(f"wrote {out}")
    return 0


def _plot_example(axs, iq: np.ndarray, snr: float) -> None:
    z = iq[0] + 1j * iq[1]
    axs[0].plot(iq[0], lw=0.8, label="I")
    axs[0].plot(iq[1], lw=0.8, label="Q")
    axs[0].text(0.99, 0.95, f"{snr:g} dB", transform=axs[0].transAxes, ha="right", va="top", fontsize=7)
    spectrum = np.fft.fftshift(np.abs(np.fft.fft(z)))
    freqs = np.fft.fftshift(np.fft.fftfreq(len(z)))
    axs[1].plot(freqs, 20 * np.log10(spectrum / max(spectrum.max(), 1e-30) + 1e-12), lw=0.8)
    axs[1].set_ylim(-60, 3)
    axs[2].plot(z.real, z.imag, ".", ms=2)
    axs[2].set_aspect("equal", adjustable="datalim")
    for ax in axs:
        ax.tick_params(labelsize=6)
