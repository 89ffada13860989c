"""Calibrate a synthetic dataset against the real one's accuracy-vs-SNR shape.

Trains the CNN1D model (Adam) on the 4:1 class x SNR stratified train split of a
synthetic set, prints accuracy per SNR, the plateau and the largest confusions, and
writes two figures: accuracy vs SNR and the high-SNR confusion matrix.

    python scripts/calibrate_synth.py --per-class-per-snr 1000 --epochs 20 --cosine   # README's figures
    python scripts/calibrate_synth.py                      # a 250-per-key look in minutes
    python scripts/calibrate_synth.py --param channel_model=independent --param snr_reference=symbol --tag v1
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "plugins"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from amrbench import allocator  # noqa: E402
from amrbench.data.splits import stratified_split  # noqa: E402
from amrbench.registry import Registry  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="rml2016a-synth")
    ap.add_argument("--per-class-per-snr", type=int, default=250)
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="extra dataset parameter (value parsed as JSON when possible)")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--cosine", action="store_true", help="cosine learning-rate decay to 0 over the epochs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--high-snr", type=float, default=0.0, help="confusion matrix over SNR >= this")
    ap.add_argument("--tag", default="", help="suffix of the figure names")
    ap.add_argument("--out", default=str(ROOT / "docs"))
    return ap.parse_args(argv)


def parse_params(items) -> dict:
    params = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def load_dataset(args):
    from amrbench_plugins.datasets import synth_rml2016a, synth_rml2018, synth_sig2019

    registry = Registry()
    for module in (synth_rml2016a, synth_sig2019, synth_rml2018):
        registry.register_module(module)
    params = {"per_class_per_snr": args.per_class_per_snr, **parse_params(args.param)}
    return registry.create("dataset", args.dataset, params).load(args.seed)


def global_scale(x: torch.Tensor) -> float:
    """One constant for the whole set (from the train split) giving unit RMS samples, so
    L1-normalised windows (values ~1e-2) train at Adam's usual learning rate; the
    per-window normalisation of the dataset is kept."""
    return float(x.pow(2).mean().sqrt().clamp_min(1e-12))


def train(model, x, y, args) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs) if args.cosine else None
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total, start = 0.0, time.time()
        for i in range(0, len(x), args.batch):
            idx = order[i:i + args.batch]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        if schedule:
            schedule.step()
        print(f"epoch {epoch + 1:2d}  loss {total / len(x):.4f}  ({time.time() - start:.1f} s)", flush=True)


@torch.no_grad()
def predict(model, x, batch=2048) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])


def per_snr_accuracy(pred, y, snr) -> dict:
    return {float(s): float((pred[snr == s] == y[snr == s]).float().mean()) for s in torch.unique(snr).tolist()}


def confusion(pred, y, classes) -> np.ndarray:
    c = len(classes)
    counts = np.bincount((y * c + pred).numpy(), minlength=c * c).reshape(c, c).astype(np.float64)
    return counts / np.maximum(counts.sum(1, keepdims=True), 1)


def plot(curve: dict, conf: np.ndarray, classes, args, title: str) -> tuple:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.dataset.replace("-synth", "") + (f"_{args.tag}" if args.tag else "")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(list(curve), [100 * a for a in curve.values()], "o-")
    ax.axhline(100 / len(classes), color="grey", ls=":", label="chance")
    ax.set(xlabel="SNR label (dB)", ylabel="test accuracy (%)", ylim=(0, 100), title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    curve_png = out / f"calibration_{stem}.png"
    fig.savefig(curve_png, dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(conf, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=90)
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if conf[i, j] >= 0.05:
                ax.text(j, i, f"{100 * conf[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if conf[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion (%), SNR >= {args.high_snr:g} dB")
    fig.tight_layout()
    conf_png = out / f"confusion_{stem}.png"
    fig.savefig(conf_png, dpi=120)
    plt.close(fig)
    return curve_png, conf_png


def report(curve, conf, classes, args) -> None:
    print("\naccuracy per SNR (%):")
    print("  " + "  ".join(f"{s:+.0f}:{100 * a:.1f}" for s, a in curve.items()))
    high = [a for s, a in curve.items() if s >= 6]
    low = [a for s, a in curve.items() if s <= -12]
    print(f"chance {100 / len(classes):.1f} %; mean <= -12 dB {100 * np.mean(low):.1f} %; "
          f"plateau (>= 6 dB) mean {100 * np.mean(high):.1f} %, range {100 * min(high):.1f}..{100 * max(high):.1f} %")
    print(f"recall at SNR >= {args.high_snr:g} dB: "
          + ", ".join(f"{c} {100 * conf[i, i]:.0f}" for i, c in enumerate(classes)))
    off = [(conf[i, j], classes[i], classes[j]) for i in range(len(classes)) for j in range(len(classes)) if i != j]
    print("largest confusions (true -> predicted): "
          + ", ".join(f"{a}->{b} {100 * v:.0f}%" for v, a, b in sorted(off, reverse=True)[:6]))


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    allocator.tune()
    torch.manual_seed(args.seed)
    from amrbench_plugins.models.cnn1d import CNN1D

    start = time.time()
    data = load_dataset(args)
    print(f"{args.dataset}: {len(data)} signals, length {data.length} ({time.time() - start:.1f} s to load/generate)")
    train_set, test_set = stratified_split(data, 0.2, args.seed)
    model = CNN1D().build(data.num_classes, data.length)
    scale = global_scale(train_set.x)
    train(model, train_set.x / scale, train_set.y, args)
    pred = predict(model, test_set.x / scale)
    curve = per_snr_accuracy(pred, test_set.y, test_set.snr)
    high = test_set.snr >= args.high_snr
    conf = confusion(pred[high], test_set.y[high], data.classes)
    report(curve, conf, data.classes, args)
    params = " ".join(args.param) or "defaults"
    files = plot(curve, conf, data.classes, args,
                 f"CNN1D on {args.dataset} ({params}), {args.per_class_per_snr}/class/SNR, {args.epochs} ep")
    print("wrote " + ", ".join(str(f) for f in files) + f" in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
