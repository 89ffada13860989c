"""Figures of compression runs (``amrbench compress-plot RESULTS_DIR --out DIR``).

From the records of a ``compress`` suite:
- ``accuracy_vs_bits[_<dataset>].png`` and ``nmse_vs_bits[_<dataset>].png``: one curve per
  method (mean over seeds), x = bits per complex sample on a log axis, the clean-data
  accuracy dashed;
- ``usage_<method>[_s<seed>].png``: codebook usage histograms per level (test split);
  ``usage_reset_comparison.png`` when the records hold the same HQA with and without
  code reset (``reset_every`` > 0 vs 0);
- ``spectrograms_<method>.png`` and ``constellations_<method>.png``: one test signal per
  class, original and reconstruction at every level. These rebuild the fitted
  compressor from the artifact cache (``--cache``, as the run used; it is refitted if
  missing) -- ``--no-reconstructions`` skips them.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np
from amrbench.hookspecs import hookimpl


def _powers_of_two_ticks(ax) -> None:
    """Label a log bits axis at powers of two (the default minor labels overlap)."""
    lo, hi = ax.get_xlim()
    ticks = [2.0 ** k for k in range(-12, 13) if lo <= 2.0 ** k <= hi]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter("")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "x"


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    _plt().close(fig)
    return path


# --------------------------------------------------------------------------- records
def load_records(results_dir) -> list:
    """The latest ``ok`` record per key of a results folder (or a records.jsonl path)."""
    from amrbench.store import RecordStore

    path = Path(results_dir)
    if path.is_dir():
        path = path / "records.jsonl"
    return [r for r in RecordStore(path).latest().values()
            if r.get("status") == "ok" and isinstance((r.get("metrics") or {}).get("levels"), list)]


def rate_points(records: list) -> dict:
    """{dataset: {method: [(bits_per_sample, accuracy, nmse_db, label), ...]}} averaged over seeds,
    and {dataset: clean accuracy}."""
    acc = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    clean = defaultdict(list)
    for r in records:
        ds, method = r["labels"]["dataset"], r["labels"]["method"]
        clean[ds].append(r["metrics"].get("clean_accuracy"))
        for level in r["metrics"]["levels"]:
            acc[ds][method][(level["bits_per_sample"], level["label"])].append((level["accuracy"], level["nmse_db"]))
    out = {}
    for ds, methods in acc.items():
        out[ds] = {}
        for method, points in methods.items():
            rows = [(bps, float(np.mean([a for a, _ in v])), float(np.mean([n for _, n in v])), label)
                    for (bps, label), v in points.items()]
            out[ds][method] = sorted(rows)
    cleans = {ds: float(np.mean([c for c in v if c is not None])) for ds, v in clean.items()
              if any(c is not None for c in v)}
    return {"points": out, "clean": cleans}


def plot_rate_curves(records: list, out_dir) -> list:
    plt = _plt()
    data = rate_points(records)
    files, many = [], len(data["points"]) > 1
    for ds, methods in data["points"].items():
        suffix = f"_{_slug(ds)}" if many else ""
        for metric, index, ylabel in (("accuracy", 1, "accuracy on reconstructions (%)"), ("nmse", 2, "NMSE (dB)")):
            fig, ax = plt.subplots(figsize=(6.4, 4.2))
            for method, rows in methods.items():
                x = [r[0] for r in rows]
                y = [r[index] * (100 if metric == "accuracy" else 1) for r in rows]
                ax.plot(x, y, marker="o", label=method)
                for r, xv, yv in zip(rows, x, y):
                    ax.annotate(r[3], (xv, yv), textcoords="offset points", xytext=(3, 3), fontsize=6)
            if metric == "accuracy" and ds in data["clean"]:
                ax.axhline(100 * data["clean"][ds], color="k", ls="--", lw=1, label="clean data")
            ax.set_xscale("log")
            _powers_of_two_ticks(ax)
            ax.set_xlabel("bits per complex sample")
            ax.set_ylabel(ylabel)
            ax.set_title(ds)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
            files.append(_save(fig, Path(out_dir) / f"{metric}_vs_bits{suffix}.png"))
    return files


# --------------------------------------------------------------------------- codebook usage
def _usage_levels(record: dict) -> list:
    return [(lv["label"], lv["codebook"]["counts"]) for lv in record["metrics"]["levels"] if lv.get("codebook")]


def plot_usage(levels: list, path, title: str = "") -> Path:
    """Bar charts of code counts, one panel per (label, counts) level."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(levels), figsize=(3.0 * len(levels), 2.6), squeeze=False)
    for ax, (label, counts) in zip(axes[0], levels):
        counts = np.asarray(counts)
        ax.bar(np.arange(len(counts)), counts, width=1.0, color="C0")
        ax.set_title(f"{label}: {int((counts > 0).sum())}/{len(counts)} used", fontsize=8)
        ax.set_xlabel("code index", fontsize=7)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9, y=1.06)
    return _save(fig, Path(path))


def plot_codebook_usage(records: list, out_dir) -> list:
    files = []
    seeds = {r["labels"]["seed"] for r in records}
    for r in records:
        levels = _usage_levels(r)
        if not levels:
            continue
        suffix = f"_s{r['labels']['seed']}" if len(seeds) > 1 else ""
        name = f"usage_{_slug(r['labels']['method'])}_{_slug(r['labels']['dataset'])}{suffix}.png"
        files.append(plot_usage(levels, Path(out_dir) / name, f"{r['labels']['method']} ({r['labels']['dataset']})"))
    pair = reset_pair(records)
    if pair is not None:
        plt = _plt()
        with_reset, without = pair
        rows = [("with reset", _usage_levels(with_reset)), ("without reset", _usage_levels(without))]
        n = max(len(levels) for _, levels in rows)
        fig, axes = plt.subplots(2, n, figsize=(3.0 * n, 5.0), squeeze=False)
        for i, (name, levels) in enumerate(rows):
            for j, (label, counts) in enumerate(levels):
                counts = np.asarray(counts)
                axes[i][j].bar(np.arange(len(counts)), counts, width=1.0, color="C0" if i == 0 else "C3")
                axes[i][j].set_title(f"{name} {label}: {int((counts > 0).sum())}/{len(counts)} used", fontsize=7)
                axes[i][j].tick_params(labelsize=6)
        fig.suptitle(f"{with_reset['labels']['method']} vs {without['labels']['method']}", fontsize=9)
        fig.tight_layout()
        files.append(_save(fig, Path(out_dir) / "usage_reset_comparison.png"))
    return files


def reset_pair(records: list) -> Optional[tuple]:
    """Two records of the same compressor, dataset and seed differing only in ``reset_every``
    (one > 0, one = 0): (with reset, without reset), or None."""
    def signature(r):
        method = r["config"]["method"]
        params = {k: v for k, v in (method.get("params") or {}).items() if k != "reset_every"}
        return repr((method["name"], sorted(params.items()), r["labels"]["dataset"], r["labels"]["seed"]))

    groups = defaultdict(dict)
    for r in records:
        every = (r["config"]["method"].get("params") or {}).get("reset_every")
        if every is not None and _usage_levels(r):
            groups[signature(r)]["on" if every > 0 else "off"] = r
    for group in groups.values():
        if "on" in group and "off" in group:
            return group["on"], group["off"]
    return None


# --------------------------------------------------------------------------- reconstructions
def spectrogram(z: np.ndarray, nperseg: int) -> np.ndarray:
    """Two-sided power spectrogram (freq x time, dB) of a complex signal, Hann window."""
    hop = max(1, nperseg // 4)
    starts = np.arange(0, max(1, len(z) - nperseg + 1), hop)
    frames = np.stack([z[s:s + nperseg] for s in starts]) * np.hanning(nperseg)
    power = np.abs(np.fft.fftshift(np.fft.fft(frames, axis=1), axes=1)) ** 2
    return 10 * np.log10(power.T + 1e-12)


def plot_spectrograms(original: np.ndarray, recons: dict, classes: list, path, title: str = "") -> Path:
    """``original`` (C, 2, L), ``recons`` {level label: (C, 2, L)}; rows = classes."""
    plt = _plt()
    columns = [("original", original)] + list(recons.items())
    nperseg = max(8, min(128, original.shape[-1] // 4))
    fig, axes = plt.subplots(len(classes), len(columns), figsize=(1.9 * len(columns), 1.5 * len(classes)),
                             squeeze=False)
    for i, name in enumerate(classes):
        ref = spectrogram(original[i, 0] + 1j * original[i, 1], nperseg)
        vmin, vmax = ref.max() - 60, ref.max()
        for j, (label, x) in enumerate(columns):
            ax = axes[i][j]
            ax.imshow(spectrogram(x[i, 0] + 1j * x[i, 1], nperseg), aspect="auto", origin="lower", cmap="viridis",
                      vmin=vmin, vmax=vmax)
            _label_panel(ax, label if i == 0 else None, name if j == 0 else None)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, Path(path))


def _label_panel(ax, column: Optional[str], row: Optional[str]) -> None:
    """A grid panel without ticks; the column name on the top row, the row name on the left."""
    ax.set_xticks([])
    ax.set_yticks([])
    if column is not None:
        ax.set_title(column, fontsize=8)
    if row is not None:
        ax.set_ylabel(row, fontsize=7)


def plot_constellations(original: np.ndarray, recons: dict, classes: list, path, title: str = "") -> Path:
    plt = _plt()
    columns = [("original", original)] + list(recons.items())
    fig, axes = plt.subplots(len(classes), len(columns), figsize=(1.6 * len(columns), 1.6 * len(classes)),
                             squeeze=False)
    for i, name in enumerate(classes):
        lim = 1.15 * float(np.abs(original[i]).max() or 1.0)
        for j, (label, x) in enumerate(columns):
            ax = axes[i][j]
            ax.scatter(x[i, 0], x[i, 1], s=1, c="C3" if j else "C0")
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            _label_panel(ax, label if i == 0 else None, name if j == 0 else None)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, Path(path))


def example_signals(test, per_class: int = 1) -> np.ndarray:
    """Indices of ``per_class`` test signals per class, highest SNR first."""
    snr = test.snr.numpy()
    snr = np.where(np.isnan(snr), -np.inf, snr)
    y = test.y.numpy()
    picks = []
    for c in range(test.num_classes):
        idx = np.flatnonzero(y == c)
        picks.extend(idx[np.argsort(-snr[idx], kind="stable")][:per_class].tolist())
    return np.asarray(picks, dtype=np.int64)


def reconstruct_examples(record: dict, cache: Optional[str] = None, device: str = "cpu", per_class: int = 1):
    """(original (C, 2, L), {label: reconstruction}, class names) for a record's fitted compressor."""
    import torch

    from amrbench import resources
    from amrbench.runner import make_context

    config = record["config"]
    ctx = make_context(config, {"cache": cache, "device": device})
    _, test = ctx.resource("dataset")
    params = resources.artifact_config(ctx, "compressor")["params"]
    artifact = ctx.resource("compressor")
    compressor = artifact.get("object")
    if compressor is None:
        compressor = ctx.registry.create("compressor", config["method"]["name"], params)
        compressor.device = ctx.device
        compressor.set_state(artifact["state"])
    picks = example_signals(test, per_class)
    x = test.x[torch.as_tensor(picks)]
    recons = {}
    for level in compressor.levels():
        ctx.seed_torch("reconstruct", str(level), 0)  # from the cell seed, as the protocol seeds its repeats
        with torch.no_grad():
            xhat = compressor.decode(compressor.encode(x.to(ctx.device), level), level)
        recons[str(compressor.level_label(level))] = torch.as_tensor(xhat).float().cpu().numpy()
    names = [f"{test.classes[int(test.y[i])]}" for i in picks]
    return x.numpy(), recons, names


def plot_reconstructions(records: list, out_dir, cache: Optional[str] = None, device: str = "cpu") -> list:
    files, seen = [], set()
    for r in records:
        ident = (r["labels"]["dataset"], r["labels"]["method"])
        if ident in seen:  # one seed per method is enough
            continue
        seen.add(ident)
        original, recons, names = reconstruct_examples(r, cache, device)
        stem = f"{_slug(r['labels']['method'])}_{_slug(r['labels']['dataset'])}"
        title = f"{r['labels']['method']} ({r['labels']['dataset']})"
        files.append(plot_spectrograms(original, recons, names, Path(out_dir) / f"spectrograms_{stem}.png", title))
        files.append(plot_constellations(original, recons, names, Path(out_dir) / f"constellations_{stem}.png", title))
    return files


def plot_all(results_dir, out_dir, cache: Optional[str] = None, device: str = "cpu",
             reconstructions: bool = True) -> list:
    from amrbench.api import AmrbenchError

    records = load_records(results_dir)
    if not records:
        raise AmrbenchError(f"{results_dir}: no successful compress records (records.jsonl with per-level metrics)")
    files = plot_rate_curves(records, out_dir) + plot_codebook_usage(records, out_dir)
    if reconstructions:
        files += plot_reconstructions(records, out_dir, cache, device)
    return files


# --------------------------------------------------------------------------- CLI
def run_compress_plot(args, registry) -> int:
    files = plot_all(args.results_dir, args.out, cache=args.cache, device=args.device,
                     reconstructions=not args.no_reconstructions)
    for f in files:
        print(f)
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("compress-plot", help="figures of a compress suite's results (rate curves, "
                                                    "codebook usage, spectrograms, constellations)")
    p.add_argument("results_dir", help="results folder of a compress suite (holds records.jsonl)")
    p.add_argument("--out", required=True, help="folder for the PNG files")
    p.add_argument("--cache", help="artifact cache the run used (default $AMRBENCH_CACHE/artifacts)")
    p.add_argument("--device", default="cpu", help="device for reconstructions (cpu, cuda)")
    p.add_argument("--no-reconstructions", action="store_true",
                   help="skip spectrograms and constellations (they need the fitted compressors)")
    p.set_defaults(handler=run_compress_plot)


@hookimpl
def amrbench_add_commands(subparsers):
    add_parser(subparsers)
