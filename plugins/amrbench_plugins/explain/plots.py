"""Figures of explanations (Huang et al., Figs. 5, 9-11, 13, 16-17) and ``amrbench explain``.

Plotting (matplotlib, headless "Agg"; every function takes arrays, so any explainer or
model can be drawn):

- ``plot_constellation``: the I/Q points of one signal, each coloured yellow -> red by its
  weight w on a **fixed** 0-1 colour scale, drawn in increasing w (red on top); two
  consecutive samples whose weights both exceed eta_w (0.4, Table II) are joined by a
  green segment (the paper's time-domain feature). ``raw=True`` draws the plain grey
  constellation of the paper's first row.
- ``plot_time``: I and Q against time with w shaded behind them (same colour scale).
- ``plot_thresholds``: one constellation per eta_w (Fig. 5: 0.2, 0.4, 0.6, 0.8).
- ``save_cell_figure``: rows = classes, columns = constellation + time domain (Fig. 9).
- ``rebuild_grids``: the grid of all classes x (model, input format) (Fig. 10) from every
  cell's saved data in a figures folder: one grid per explainer and a paper-style grid
  that takes Grad-CAM where the model has a convolution and the mask otherwise.
- ``save_split_figure``: the 128 vs 2 x 64 split experiment (Figs. 16-17): per class the
  full signal with its w and prediction, then each half with the w and prediction of the
  classifier trained on halves.
- ``plot_confusion`` / ``save_confusion_figures``: from the ``ok`` records of an explain run
  (their ``confusion``, ``classes``, ``format`` and ``confusion_by_format`` metrics), per
  dataset and seed ``confusion_<dataset>_s<seed>.png``: one row-normalised (% per true
  class) confusion matrix per model, of the classifier the cells explain (Fig. 15); and
  ``confusion_relative_<dataset>_s<seed>.png``: per model evaluated with both input formats,
  confusion(I/Q) - confusion(A/P) in percentage points on a diverging scale (Fig. 12;
  ``relative_confusion``). Records of one (dataset, model, format, seed) that differ only in
  the explainer share the classifier: the first is used.

Data files: a cell of the ``explain`` protocol with ``settings.figures: DIR`` writes
``DIR/data/<dataset>__<model>__<explainer>__<format>__s<seed>.npz`` (signals, w, labels,
predictions) and the PNGs beside it; the grids are rebuilt from all data files after
every cell (atomic writes), so a finished suite leaves complete grids.

Command line (wired into ``amrbench`` by ``add_parser``)::

    amrbench explain SUITE_OR_MODEL --signal INDEX --out DIR [--profile P] [--seed S]
        [--dataset NAME --param KEY=VALUE --snr LO HI --explainer NAME --epochs E]

With a suite of the ``explain`` protocol it trains (or loads from the artifact cache) the
classifier of every dataset x model of the suite and explains test signal INDEX with each
of its explainers; with a model name it trains that model on ``--dataset`` (default toy)
and uses ``--explainer`` (default: gradcam when the model has a convolution, else mask).
Writes one PNG per (dataset, model, explainer) with the constellation, the time domain and
the eta_w sweep, and ``signal<INDEX>.png`` with all of them.

    amrbench explain SUITE --confusion --out DIR [--results RESULTS_DIR]

draws the confusion figures instead, from the suite's stored records (default
``results/<suite name>[-<profile>]/records.jsonl``); it trains nothing. The relative
figure needs records of a run with ``settings.figures`` and ``figure_formats: [iq, amp_phase]``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Optional

import numpy as np

from amrbench.basics import AmrbenchError
from amrbench.hookspecs import hookimpl

PAPER_MODELS = ("lenet", "resnet-vis", "lstm")
FORMAT_LABELS = {"iq": "I/Q", "amp_phase": "A/P"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def weight_cmap():
    """Yellow (w = 0) to red (w = 1)."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("amrbench_w", ["#ffe600", "#ff8c00", "#d40000"])


def safe(text) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "x"


# --------------------------------------------------------------------------- panels
def consecutive_segments(w, eta: Optional[float] = None) -> np.ndarray:
    """``amrbench_plugins.explain.attribution.consecutive_segments`` (eta defaulting to its ``ETA``), imported
    on first use: that module needs torch, which ``amrbench explain --help`` must not load."""
    from amrbench_plugins.explain import attribution as explain

    return explain.consecutive_segments(w, explain.ETA if eta is None else eta)


def plot_constellation(ax, iq, w=None, eta: Optional[float] = None, title: Optional[str] = None, raw: bool = False,
                       size: float = 9.0, limit: Optional[float] = None):
    """I/Q scatter coloured by w (fixed 0-1 scale), green segments where w > eta twice in a
    row (eta defaults to ``amrbench_plugins.explain.attribution.ETA``)."""
    from matplotlib.collections import LineCollection

    iq = np.asarray(iq, dtype=float)
    i, q = iq[0], iq[1]
    limit = limit or 1.1 * float(np.max(np.abs(iq))) or 1.0
    mappable = None
    if raw or w is None:
        ax.plot(i, q, color="0.75", lw=0.5, zorder=1)
        ax.scatter(i, q, s=size, color="0.45", zorder=2, linewidths=0)
    else:
        w = np.clip(np.asarray(w, dtype=float), 0, 1)
        seg = consecutive_segments(w, eta)
        if len(seg):
            lines = np.stack([np.stack([i[seg], q[seg]], 1), np.stack([i[seg + 1], q[seg + 1]], 1)], 1)
            ax.add_collection(LineCollection(lines, colors="#00a000", linewidths=1.0, zorder=2))
        order = np.argsort(w, kind="stable")
        mappable = ax.scatter(i[order], q[order], c=w[order], cmap=weight_cmap(), vmin=0.0, vmax=1.0, s=size,
                              zorder=3, linewidths=0.2, edgecolors="0.3")
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)
    return mappable


def plot_time(ax, iq, w=None, title: Optional[str] = None):
    """I and Q traces with w shaded behind them on the fixed 0-1 colour scale."""
    iq = np.asarray(iq, dtype=float)
    length = iq.shape[1]
    top = 1.1 * float(np.max(np.abs(iq))) or 1.0
    mappable = None
    if w is not None:
        mappable = ax.imshow(np.clip(np.asarray(w, dtype=float), 0, 1)[None], aspect="auto", cmap=weight_cmap(),
                             vmin=0.0, vmax=1.0, extent=[-0.5, length - 0.5, -top, top], alpha=0.55,
                             interpolation="nearest", zorder=0)
    t = np.arange(length)
    ax.plot(t, iq[0], color="#1f4e9c", lw=0.8, label="I", zorder=2)
    ax.plot(t, iq[1], color="0.15", lw=0.8, ls="--", label="Q", zorder=2)
    ax.set_xlim(-0.5, length - 0.5)
    ax.set_ylim(-top, top)
    ax.tick_params(labelsize=6)
    if title:
        ax.set_title(title, fontsize=7)
    return mappable


def plot_thresholds(axes, iq, w, etas=(0.2, 0.4, 0.6, 0.8)):
    for ax, eta in zip(axes, etas):
        plot_constellation(ax, iq, w, eta=eta, title=f"eta_w = {eta:g}")


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=130, bbox_inches="tight")
    os.replace(tmp, path)
    _pyplot().close(fig)
    return path


def _colorbar(fig, mappable, axes):
    if mappable is not None:
        bar = fig.colorbar(mappable, ax=axes, fraction=0.02, pad=0.01)
        bar.set_label("w", fontsize=7)
        bar.ax.tick_params(labelsize=6)


# --------------------------------------------------------------------------- data files
def save_data(folder, name: str, **arrays) -> Path:
    path = Path(folder) / "data" / f"{name}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(tmp, path)
    return path


def load_data(path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        out = {k: data[k] for k in data.files}
    for key in ("dataset", "model", "method", "view", "format", "kind"):
        if key in out:
            out[key] = str(out[key])
    out["classes"] = [str(c) for c in out.get("classes", [])]
    return out


def dataset_label(spec: dict) -> str:
    """A cell's dataset as figures name it: the plugin name plus its SNR filter."""
    return spec["name"] + (f"_{spec['snr'][0]:g}_{spec['snr'][1]:g}dB" if spec.get("snr") else "")


def _label(classes, index) -> str:
    return classes[int(index)] if 0 <= int(index) < len(classes) else str(int(index))


# --------------------------------------------------------------------------- figures
def save_cell_figure(data: dict, path) -> Path:
    """Rows = the figure signals (one per class), columns = constellation, time domain."""
    plt = _pyplot()
    x, w, classes = data["x"], data["w"], data["classes"]
    rows = len(x)
    fig, axes = plt.subplots(rows, 2, figsize=(6.5, 1.9 * rows), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 2.4]})
    mappable = None
    for r in range(rows):
        truth, pred = _label(classes, data["y"][r]), _label(classes, data["pred"][r])
        mark = "" if truth == pred else " (wrong)"
        mappable = plot_constellation(axes[r, 0], x[r], w[r], title=f"{truth} -> {pred}{mark}, {float(data['snr'][r]):g} dB")
        plot_time(axes[r, 1], x[r], w[r])
    fig.suptitle(f"{data['dataset']} · {data['model']} ({FORMAT_LABELS.get(data['format'], data['format'])}) · "
                 f"{data['method']} · acc {float(data['accuracy']):.2f}", fontsize=8)
    _colorbar(fig, mappable, axes)
    return _save(fig, path)


def _column_key(d: dict):
    model = d["model"]
    return (0 if d["format"] == "iq" else 1, PAPER_MODELS.index(model) if model in PAPER_MODELS else len(PAPER_MODELS),
            model)


def _grid(datas: list, title: str, path) -> Path:
    """Rows = classes, columns = raw + one (model, format) per data set."""
    plt = _pyplot()
    datas = sorted(datas, key=_column_key)
    classes = datas[0]["classes"]
    rows = len(datas[0]["x"])
    cols = len(datas) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.45 * cols, 1.45 * rows), squeeze=False)
    mappable = None
    for r in range(rows):
        base = datas[0]["x"][r]
        plot_constellation(axes[r, 0], base, raw=True, title="raw" if r == 0 else None)
        axes[r, 0].set_ylabel(_label(classes, datas[0]["y"][r]), fontsize=7)
        for c, d in enumerate(datas, start=1):
            head = f"{d['model']} {FORMAT_LABELS.get(d['format'], d['format'])}\n{d['method']}" if r == 0 else None
            if r < len(d["x"]):
                pred = _label(classes, d["pred"][r])
                m = plot_constellation(axes[r, c], d["x"][r], d["w"][r], title=head)
                mappable = m or mappable
                ok = pred == _label(classes, d["y"][r])
                axes[r, c].set_xlabel(pred, fontsize=6, color="#1f4e9c" if ok else "#d40000")
            else:
                axes[r, c].axis("off")
    fig.suptitle(title, fontsize=8)
    _colorbar(fig, mappable, axes)
    return _save(fig, path)


def rebuild_grids(folder) -> list:
    """Grids of classes x (model, input format) from every saved cell of ``folder``."""
    folder = Path(folder)
    files = sorted((folder / "data").glob("*.npz")) if (folder / "data").exists() else []
    cells = [load_data(f) for f in files if not f.name.startswith("split__") and not f.name.startswith(".")]
    cells = [d for d in cells if d.get("kind", "cell") == "cell"]
    written = []
    groups: dict = {}
    for d in cells:
        groups.setdefault((d["dataset"], int(d["seed"])), []).append(d)
    for (dataset, seed), items in sorted(groups.items()):
        for method in sorted({d["method"] for d in items}):
            chosen = [d for d in items if d["method"] == method]
            written.append(_grid(chosen, f"{dataset} · {method} · seed {seed}",
                                 folder / f"grid_{safe(dataset)}_{safe(method)}_s{seed}.png"))
        # paper style: Grad-CAM for CNNs, the mask for models Grad-CAM cannot explain
        best: dict = {}
        for d in items:
            slot = (d["model"], d["format"])
            rank = {"gradcam": 0, "mask": 1}.get(d["method"], 2)
            if slot not in best or rank < best[slot][0]:
                best[slot] = (rank, d)
        written.append(_grid([v[1] for v in best.values()], f"{dataset} · Grad-CAM (CNNs) / mask (others) · seed {seed}",
                             folder / f"grid_{safe(dataset)}_s{seed}.png"))
    return written


def save_split_figure(data: dict, path) -> Path:
    """Per class: the full signal with w and prediction, then both halves (Figs. 16-17)."""
    plt = _pyplot()
    classes = data["classes"]
    rows = len(data["x"])
    parts = data["w_parts"].shape[1]
    fig, axes = plt.subplots(rows, 1 + parts, figsize=(1.8 * (1 + parts), 1.8 * rows), squeeze=False)
    mappable = None
    length = data["x"].shape[-1]
    piece = length // parts
    for r in range(rows):
        x = data["x"][r]
        truth = _label(classes, data["y"][r])
        limit = 1.1 * float(np.max(np.abs(x))) or 1.0
        pred = _label(classes, data["pred"][r])
        mappable = plot_constellation(axes[r, 0], x, data["w"][r], limit=limit,
                                      title=f"{length} pts: {pred}" + ("" if pred == truth else " (wrong)"))
        axes[r, 0].set_ylabel(truth, fontsize=7)
        for k in range(parts):
            seg = x[:, k * piece:(k + 1) * piece]
            pred_k = _label(classes, data["pred_parts"][r][k])
            plot_constellation(axes[r, 1 + k], seg, data["w_parts"][r][k], limit=limit,
                               title=f"{piece} pts #{k + 1}: {pred_k}" + ("" if pred_k == truth else " (wrong)"))
    fig.suptitle(f"{data['dataset']} · {data['model']} · {data['method']} · accuracy {float(data['accuracy']):.3f} "
                 f"({length} pts) vs {float(data['accuracy_parts']):.3f} ({piece} pts)", fontsize=8)
    _colorbar(fig, mappable, axes)
    return _save(fig, path)


def save_signal_figure(entries: list, path, etas=(0.2, 0.4, 0.6, 0.8)) -> Path:
    """One row per (model, explainer) for one signal: constellation, time domain, eta sweep."""
    plt = _pyplot()
    rows = len(entries)
    cols = 2 + len(etas)
    fig = plt.figure(figsize=(1.9 * cols + 1.5, 1.9 * rows))
    grid = fig.add_gridspec(rows, cols, width_ratios=[1, 2.2] + [1] * len(etas), hspace=0.55)
    mappable = None
    axes = []
    for r, e in enumerate(entries):
        ax_c, ax_t = fig.add_subplot(grid[r, 0]), fig.add_subplot(grid[r, 1])
        truth, pred = e["truth"], e["pred"]
        mappable = plot_constellation(ax_c, e["x"], e["w"], title=f"{e['model']} · {e['method']}\n{truth} -> {pred}")
        plot_time(ax_t, e["x"], e["w"], title=f"{e['dataset']}, {e['snr']:g} dB")
        if r == 0:
            ax_t.legend(fontsize=6, loc="upper right", ncol=2)
        sweep = [fig.add_subplot(grid[r, 2 + k]) for k in range(len(etas))]
        plot_thresholds(sweep, e["x"], e["w"], etas)
        axes += [ax_c, ax_t] + sweep
    _colorbar(fig, mappable, axes)
    return _save(fig, path)


# --------------------------------------------------------------------------- confusion matrices
def row_percent(confusion) -> np.ndarray:
    """Counts (rows: true class) as % of each row; an empty row stays 0."""
    c = np.asarray(confusion, dtype=float)
    total = c.sum(1, keepdims=True)
    return 100.0 * np.divide(c, total, out=np.zeros_like(c), where=total > 0)


def relative_confusion(a, b) -> np.ndarray:
    """Row-normalised confusion ``a`` minus row-normalised ``b``, in percentage points."""
    return row_percent(a) - row_percent(b)


def plot_confusion(ax, confusion, classes, title, relative=False, limit: Optional[float] = None):
    """Counts drawn row-normalised (%, 0-100, "Blues"); ``relative=True`` draws a difference
    already in percentage points on "RdBu" with symmetric limits +-``limit`` (default: its
    largest magnitude). Values are written in the cells."""
    values = np.asarray(confusion, dtype=float) if relative else row_percent(confusion)
    if relative:
        limit = limit or float(np.abs(values).max()) or 1.0
        mappable = ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit)
    else:
        limit = 100.0
        mappable = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=100.0)
    k = len(classes)
    size = min(7.0, max(4.0, 9.0 - 0.4 * k))
    for (r, c), v in np.ndenumerate(values):
        n = int(round(v))
        ax.text(c, r, f"{n:+d}" if relative and n else str(n), ha="center", va="center", fontsize=size,
                color="white" if abs(v) > 0.6 * limit else "black")
    ax.set_xticks(range(k), classes, rotation=90, fontsize=size)
    ax.set_yticks(range(k), classes, fontsize=size)
    ax.set_xlabel("predicted", fontsize=7)
    ax.set_ylabel("true", fontsize=7)
    ax.set_title(title, fontsize=8)
    return mappable


def confusion_entries(records) -> dict:
    """{(dataset, seed): {(model, format): {"classes", "confusion", "native"}}} from the ``ok``
    records (``native``: the format the cells explain); the first record of a (dataset,
    seed, model, format) wins: records differing only in the explainer share the classifier."""
    out: dict = {}
    for r in records:
        m = r.get("metrics") or {}
        if r.get("status") != "ok" or not m.get("classes"):
            continue
        cfg = r["config"]
        slots = out.setdefault((dataset_label(cfg["dataset"]), int(cfg["seed"])), {})
        found = [(m.get("format"), m.get("confusion")), *(m.get("confusion_by_format") or {}).items()]
        for fmt, confusion in found:
            if fmt and confusion is not None:
                slot = slots.setdefault((cfg["model"]["source"], fmt),
                                        {"classes": list(m["classes"]), "confusion": confusion, "native": False})
                slot["native"] |= fmt == m.get("format")
    return out


def _model_key(model: str):
    return (PAPER_MODELS.index(model) if model in PAPER_MODELS else len(PAPER_MODELS), model)


def _panels(panels: list, title: str, path, relative: bool) -> Path:
    plt = _pyplot()
    k = len(panels[0][1])
    side = max(3.0, 0.32 * k + 1.5)
    fig, axes = plt.subplots(1, len(panels), figsize=(side * len(panels) + 0.8, side), squeeze=False,
                             layout="constrained")
    limit = (max(float(np.abs(m).max()) for _, _, m in panels) or 1.0) if relative else None
    mappable = None
    for ax, (name, classes, matrix) in zip(axes[0], panels):
        mappable = plot_confusion(ax, matrix, classes, name, relative=relative, limit=limit)
    bar = fig.colorbar(mappable, ax=axes, fraction=0.03, pad=0.02)
    bar.set_label("I/Q - A/P (percentage points)" if relative else "% of true class", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def save_confusion_figures(records, folder) -> list:
    """Per (dataset, seed): the confusion matrix of each model (Fig. 15) and, for models
    evaluated on both input formats, the I/Q - A/P relative confusion matrix (Fig. 12)."""
    folder = Path(folder)
    written = []
    for (dataset, seed), slots in sorted(confusion_entries(records).items()):
        keys = sorted(slots, key=lambda mf: (_model_key(mf[0]), mf[1] != "iq", mf[1]))
        name = f"{safe(dataset)}_s{seed}.png"
        panels = [(f"{model} ({FORMAT_LABELS.get(fmt, fmt)})", slots[model, fmt]["classes"],
                   slots[model, fmt]["confusion"]) for model, fmt in keys if slots[model, fmt]["native"]]
        if panels:
            written.append(_panels(panels, f"{dataset} · confusion matrices · seed {seed}",
                                   folder / f"confusion_{name}", relative=False))
        both = [m for m, f in keys if f == "iq" and (m, "amp_phase") in slots]
        relative = [(f"{m}: I/Q - A/P", slots[m, "iq"]["classes"],
                     relative_confusion(slots[m, "iq"]["confusion"], slots[m, "amp_phase"]["confusion"]))
                    for m in both]
        if relative:
            written.append(_panels(relative, f"{dataset} · relative confusion (I/Q - A/P) · seed {seed}",
                                   folder / f"confusion_relative_{name}", relative=True))
    return written


# --------------------------------------------------------------------------- CLI
def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``explain SUITE_OR_MODEL --signal INDEX --out DIR``; handler ``args.handler(args, registry)``."""
    p = subparsers.add_parser("explain", help="explain one test signal: constellation and time-domain figures",
                              description="Explain test signal INDEX with the explainers of an explain-protocol "
                                          "suite, or with one model trained on --dataset.")
    p.add_argument("target", metavar="SUITE_OR_MODEL", help="a suite YAML of the explain protocol, or a model name")
    p.add_argument("--signal", type=int, default=0, metavar="INDEX", help="index into the test split (default 0)")
    p.add_argument("--out", default="explain_figures", metavar="DIR", help="output folder (default explain_figures)")
    p.add_argument("--profile", help="suite profile (suite mode)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: the suite's first, or 0)")
    p.add_argument("--dataset", default="toy", help="model mode: dataset plugin (default toy)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="model mode: dataset parameter")
    p.add_argument("--snr", nargs=2, type=float, metavar=("LO", "HI"), help="model mode: SNR filter")
    p.add_argument("--explainer", default="auto", help="model mode: explainer (default: gradcam if the model has a "
                                                       "convolution, else mask)")
    p.add_argument("--epochs", type=int, default=10, help="model mode: training epochs (default 10)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--cache", help="artifact cache directory (default $AMRBENCH_CACHE/artifacts)")
    p.add_argument("--confusion", action="store_true", help="suite mode: draw the confusion and I/Q - A/P relative "
                                                            "confusion matrices from the stored records instead")
    p.add_argument("--results", help="with --confusion: the run's results folder (default "
                   "<results root>/<suite name>, <suite name>-<profile> with --profile)")
    p.set_defaults(handler=cmd_explain)
    return p


def _parse_params(items) -> dict:
    params = {}
    for item in items:
        if "=" not in item:
            raise AmrbenchError(f"--param {item!r}: give KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def _model_mode_configs(args, registry) -> list:
    from amrbench.suite import CellSpec, cell_config
    from amrbench.train import validate_train_settings

    model_name = args.target
    registry.get("model", model_name)
    dataset = registry.create("dataset", args.dataset, _parse_params(args.param))
    protocol_cls = registry.get("protocol", "explain")
    settings = dict(protocol_cls.defaults)
    method = args.explainer
    if method == "auto":
        net = registry.create("model", model_name).build(2, 64)
        method = "gradcam" if getattr(net, "last_conv", None) is not None else "mask"
    explainer = registry.create("explainer", method)
    seed = 0 if args.seed is None else args.seed
    spec = CellSpec(protocol="explain", budget=None, seed=seed, settings=settings,
                    dataset={"name": args.dataset, "params": dataset.params, "snr": list(args.snr) if args.snr else None,
                             "test_fraction": 0.2, "seed": 0},
                    method={"name": method, "params": explainer.params},
                    model={"source": model_name, "target": model_name},
                    train=validate_train_settings({"epochs": args.epochs}))
    return [cell_config(spec, registry)]


def _suite_mode_configs(args) -> list:
    from amrbench.suite import expand, load_suite

    suite = load_suite(args.target, profile=args.profile)
    if suite.protocol != "explain":
        raise AmrbenchError(f"{args.target}: `amrbench explain` needs a suite of the explain protocol "
                            f"(this one is {suite.protocol!r}); or pass a model name")
    seed = suite.seeds[0] if args.seed is None else args.seed
    configs, seen = [], set()
    for cell in expand(suite):
        config = dict(cell["config"], seed=seed)
        key = json.dumps([config["dataset"], config["model"], config["method"]], sort_keys=True)
        if key not in seen:
            seen.add(key)
            configs.append(config)
    return configs


def cmd_confusion(args) -> int:
    from amrbench.shipped import suite_results_dir
    from amrbench.store import RecordStore
    from amrbench.suite import load_suite

    suite = load_suite(args.target, profile=args.profile)
    path = (Path(args.results) if args.results else suite_results_dir(suite.name, suite.profile)) / "records.jsonl"
    written = save_confusion_figures(RecordStore(path).latest().values(), args.out)
    if not written:
        raise AmrbenchError(f"{path}: no ok record holds a confusion matrix (records written before it was stored "
                            "lack one: rerun the suite into a fresh --results folder)")
    for figure in written:
        print(figure)
    return 0


def cmd_explain(args, registry) -> int:
    from amrbench.runner import make_context, resolve_device

    if args.confusion:
        return cmd_confusion(args)

    resolve_device(args.device)
    target = str(args.target)
    suite_mode = target.endswith((".yaml", ".yml")) or Path(target).is_file()
    configs = _suite_mode_configs(args) if suite_mode else _model_mode_configs(args, registry)
    out = Path(args.out)
    entries = []
    for config in configs:
        ctx = make_context(config, {"device": args.device, "cache": args.cache})
        protocol = ctx.registry.create("protocol", "explain", config["settings"])
        explainer = ctx.registry.create("explainer", config["method"]["name"], config["method"]["params"])
        entry = protocol.explain_signal(ctx, explainer, args.signal)
        if entry is None:
            print(f"skipped {config['model']['source']} x {config['method']['name']}: not applicable")
            continue
        entries.append(entry)
        name = f"{safe(config['dataset']['name'])}_{safe(entry['model'])}_{safe(entry['method'])}_signal{args.signal}.png"
        print(save_signal_figure([entry], out / name))
    if not entries:
        raise AmrbenchError("no explainer could explain any model of this selection")
    print(save_signal_figure(entries, out / f"signal{args.signal}.png"))
    return 0


@hookimpl
def amrbench_add_commands(subparsers):
    add_parser(subparsers)
