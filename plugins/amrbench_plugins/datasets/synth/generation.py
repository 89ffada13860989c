"""Rendering: one (class, SNR) group through waveform, channel and AWGN on its own random
streams, per-window normalisation, and a whole set of groups on a few threads."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np

from amrbench.api import AmrbenchError, SignalSet, derive_seed

from .channel import Channel, StreamRun, apply_channel
from .pulses import Waveform

NORMS = ("l1", "energy", "rms", "none")


def normalise(z: np.ndarray, norm: str) -> np.ndarray:
    """Per-window normalisation of complex windows (rows, length)."""
    if norm == "none":
        return z
    if norm == "l1":
        scale = np.sum(np.abs(z), axis=1, keepdims=True)
    elif norm == "energy":
        scale = np.sqrt(np.sum(np.abs(z) ** 2, axis=1, keepdims=True))
    elif norm == "rms":
        scale = np.sqrt(np.mean(np.abs(z) ** 2, axis=1, keepdims=True))
    else:
        raise AmrbenchError(f"unknown normalisation {norm!r}; allowed: {', '.join(NORMS)}")
    return z / np.where(scale > 0, scale, 1.0)


# --------------------------------------------------------------------------- groups
def group_streams(seed: int, dataset: str, label: str, snr_db: float) -> list:
    """Independent generators (signal, channel, noise) of one (class, SNR) group."""
    root = np.random.SeedSequence(derive_seed(seed, dataset, label, float(snr_db)))
    return [np.random.default_rng(s) for s in root.spawn(3)]


def stream_run(seed: int, dataset: str, channel: Channel) -> Optional[StreamRun]:
    """The stream model's channel run of (seed, dataset); None for the independent model."""
    if channel.model != "stream":
        return None
    return StreamRun(np.random.default_rng(derive_seed(seed, dataset, "stream-channel")), channel)


def render_group(waveform: Waveform, count: int, length: int, snr_db: float, streams: list,
                 channel: Channel, noise: bool = True, run: Optional[StreamRun] = None) -> np.ndarray:
    """Received windows (count, length) complex64 of one group before normalisation.
    With ``noise=False`` the same windows without their AWGN (for checks); ``run``: the
    stream model's channel run (required by that model)."""
    signal_rng, channel_rng, noise_rng = streams
    tx = waveform(signal_rng, count, channel.input_length(length), channel.sps)
    power = np.mean(np.abs(tx) ** 2)
    tx = (tx / np.sqrt(power) if power > 0 else tx).astype(np.complex64)
    rx, gain = apply_channel(channel_rng, tx, length, channel, run)
    if not noise:
        return rx
    sigma = np.sqrt(channel.noise_variance(gain, snr_db) / 2).astype(np.float32)[:, None]
    real = noise_rng.standard_normal((count, length), dtype=np.float32)
    imag = noise_rng.standard_normal((count, length), dtype=np.float32)
    return rx + sigma * (real + 1j * imag)


# --------------------------------------------------------------------------- whole sets
def generate_threads() -> int:
    """Worker threads for group rendering (numpy releases the GIL in the heavy steps)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def generate(dataset: str, waveforms: dict, snr_values, per_class_per_snr: int, length: int,
             seed: int, channel: Channel, norm: str) -> SignalSet:
    """All (class, SNR) groups, class-major then SNR, as one float32 SignalSet. Groups are
    rendered on a few threads; each has its own random streams, so the result does not
    depend on the scheduling."""
    classes = list(waveforms)
    snr_values = [float(s) for s in snr_values]
    per = int(per_class_per_snr)
    x = np.empty((len(classes) * len(snr_values) * per, 2, length), dtype=np.float32)
    groups = [(label, snr_db) for label in classes for snr_db in snr_values]
    run = stream_run(seed, dataset, channel)

    def render(index: int) -> None:
        label, snr_db = groups[index]
        streams = group_streams(seed, dataset, label, snr_db)
        z = normalise(render_group(waveforms[label], per, length, snr_db, streams, channel, run=run), norm)
        x[index * per:(index + 1) * per, 0] = z.real
        x[index * per:(index + 1) * per, 1] = z.imag

    with ThreadPoolExecutor(generate_threads()) as pool:
        list(pool.map(render, range(len(groups))))
    y = np.repeat(np.arange(len(classes)), len(snr_values) * per)
    snr = np.tile(np.repeat(np.asarray(snr_values, dtype=np.float32), per), len(classes))
    return SignalSet(x, y, snr, classes, name=dataset)
