"""The one training / evaluation loop every protocol uses.

Data stays in tensors on the device and batches are gathered by index (no DataLoader,
no per-sample Python); the input transform of the model's format is applied once.
Seeded: the permutation comes from a ``torch.Generator``, initialisation and dropout
from ``torch.manual_seed`` set by the caller, so a cell is deterministic on CPU.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from amrbench import allocator, progress, transforms
from amrbench.api import AmrbenchError, SignalSet, did_you_mean

TRAIN_DEFAULTS = {
    "epochs": 10,
    "batch_size": 128,
    "optimizer": "adam",
    "lr": 1e-3,
    "momentum": 0.9,
    "weight_decay": 0.0,
    "scheduler": "none",
    "eval_batch_size": 2048,
    "amp": False,
}
_TYPES = {"epochs": int, "batch_size": int, "optimizer": str, "lr": float, "momentum": float,
          "weight_decay": float, "scheduler": str, "eval_batch_size": int, "amp": bool}
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "cosine", "step")


def validate_train_settings(settings: dict) -> dict:
    out = dict(TRAIN_DEFAULTS)
    for key, value in (settings or {}).items():
        if key not in TRAIN_DEFAULTS:
            raise AmrbenchError(f"unknown training setting {key!r}{did_you_mean(key, TRAIN_DEFAULTS)}")
        kind = _TYPES[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise AmrbenchError(f"training setting {key!r} must be {kind.__name__}, got {value!r}")
        out[key] = value
    if out["optimizer"] not in OPTIMIZERS:
        raise AmrbenchError(f"optimizer {out['optimizer']!r}{did_you_mean(out['optimizer'], OPTIMIZERS)}")
    if out["scheduler"] not in SCHEDULERS:
        raise AmrbenchError(f"scheduler {out['scheduler']!r}{did_you_mean(out['scheduler'], SCHEDULERS)}")
    if out["epochs"] < 0 or out["batch_size"] < 1 or out["eval_batch_size"] < 1 or not out["lr"] > 0:
        raise AmrbenchError("epochs must be >= 0, batch sizes >= 1 and lr > 0")
    return out


def make_optimizer(params, settings: dict) -> torch.optim.Optimizer:
    lr, wd = settings["lr"], settings["weight_decay"]
    if settings["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=settings["momentum"], weight_decay=wd)
    if settings["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, weight_decay=wd)


def make_scheduler(optimizer, settings: dict, steps: int):
    if settings["scheduler"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    if settings["scheduler"] == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, steps // 3), gamma=0.1)
    return None


def _autocast(device: torch.device, enabled: bool):
    """Mixed precision: float16 with loss scaling on CUDA, bfloat16 on the CPU (float32's
    range, so no scaler; fast where the CPU has AVX512-BF16 or AMX, emulated and slower
    elsewhere). Weights, the loss and the optimiser stay float32."""
    if not enabled:
        return contextlib.nullcontext()
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast(device.type, dtype=torch.bfloat16)


BatchHook = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None]


def fit(net: nn.Module, input_format: str, data: SignalSet, settings: dict, generator: torch.Generator,
        device: torch.device, on_batch: Optional[BatchHook] = None) -> nn.Module:
    """Train ``net`` on ``data`` (weighted by ``data.weights`` when present).

    ``on_batch(epoch, index, logits, losses)`` sees every training batch (used to record
    per-sample training dynamics without a second pass). Each finished epoch is reported
    to this process's progress display (``amrbench.progress.epoch_done``)."""
    net.to(device).train()
    n = len(data)
    if n == 0 or settings["epochs"] == 0:
        return net
    x = transforms.apply(input_format, data.x.to(device))
    y = data.y.to(device)
    w = None if data.weights is None else data.weights.to(device)
    batch = min(settings["batch_size"], n)
    steps_per_epoch = math.ceil(n / batch)
    optimizer = make_optimizer(net.parameters(), settings)
    scheduler = make_scheduler(optimizer, settings, settings["epochs"])
    use_amp = settings["amp"] and device.type in ("cuda", "cpu")
    scaler = torch.amp.GradScaler("cuda") if use_amp and device.type == "cuda" else None
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    # large activations reused from the heap, not mapped anew every step (allocator doc)
    with allocator.large_buffers_from_heap():
        for epoch in range(settings["epochs"]):
            order = torch.randperm(n, generator=generator).to(device)
            for step in range(steps_per_epoch):
                index = order[step * batch:(step + 1) * batch]
                with _autocast(device, use_amp):
                    logits = net(x[index])
                    losses = loss_fn(logits.float(), y[index])
                loss = losses.mean() if w is None else (losses * w[index]).sum() / w[index].sum().clamp_min(1e-12)
                _optimiser_step(loss, optimizer, scaler)
                if on_batch is not None:
                    on_batch(epoch, index, logits.detach(), losses.detach())
            if scheduler is not None:
                scheduler.step()
            progress.epoch_done(epoch + 1, settings["epochs"])
    return net


def _optimiser_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler) -> None:
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


@torch.no_grad()
def predict(net: nn.Module, input_format: str, x: torch.Tensor, batch_size: int, device: torch.device,
            embed: bool = False) -> torch.Tensor:
    """Logits (or penultimate embeddings) in eval mode, in large no-grad batches."""
    net.to(device).eval()
    outputs = []
    for start in range(0, x.shape[0], batch_size):
        xb = transforms.apply(input_format, x[start:start + batch_size].to(device))
        outputs.append((net.embed(xb) if embed else net(xb)).float().cpu())
    if not outputs:
        return torch.empty(0)
    return torch.cat(outputs)


def classification_metrics(logits: torch.Tensor, data: SignalSet) -> dict:
    """Overall, per-SNR and per-class accuracy and the confusion matrix (rows: true)."""
    pred = logits.argmax(1).numpy()
    y = data.y.numpy()
    k = data.num_classes
    confusion = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    correct = pred == y
    per_class = {}
    for c, name in enumerate(data.classes):
        mask = y == c
        if mask.any():
            per_class[name] = float(correct[mask].mean())
    per_snr = {}
    snr = data.snr.numpy()
    for value in np.unique(snr[~np.isnan(snr)]):
        mask = snr == value
        per_snr[f"{value:g}"] = float(correct[mask].mean())
    return {
        "accuracy": float(correct.mean()) if len(y) else float("nan"),
        "per_snr": per_snr,
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "n_test": int(len(y)),
    }


def evaluate(net: nn.Module, input_format: str, test: SignalSet, settings: dict, device: torch.device) -> dict:
    logits = predict(net, input_format, test.x, settings["eval_batch_size"], device)
    return classification_metrics(logits, test)
