"""SNR filters and seeded stratified (class x SNR) train/test splits."""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import torch

from amrbench.api import SignalSet


def filter_snr(data: SignalSet, snr: Optional[tuple]) -> SignalSet:
    """Keep signals with lo <= snr <= hi (inclusive, as "-high" = [10, 18])."""
    if snr is None:
        return data
    lo, hi = float(snr[0]), float(snr[1])
    keep = torch.nonzero((data.snr >= lo) & (data.snr <= hi)).flatten()
    return data if len(keep) == len(data) else data.subset(keep)


def random_rank_in_groups(labels: np.ndarray, snrs: np.ndarray, rng: np.random.Generator):
    """Group id of every (label, snr) pair and each row's random rank inside its group."""
    groups = np.unique(np.stack([labels, snrs], axis=1), axis=0, return_inverse=True)[1].reshape(-1)
    order = np.lexsort((rng.random(len(labels)), groups))
    sizes = np.bincount(groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels)) - np.repeat(starts, sizes)
    return groups, rank


def stratified_split(data: SignalSet, test_fraction: float, seed: int) -> tuple[SignalSet, SignalSet]:
    """Split every (class, SNR) group test_fraction/1-test_fraction, seeded; indices sorted
    so the result does not depend on the group iteration order."""
    snr = np.nan_to_num(data.snr.numpy(), nan=-9999.0)
    groups, rank = random_rank_in_groups(data.y.numpy(), snr, np.random.default_rng(seed))
    n_test = np.rint(np.bincount(groups) * test_fraction).astype(np.int64)
    is_test = rank < n_test[groups]
    train_idx = np.flatnonzero(~is_test)
    test_idx = np.flatnonzero(is_test)
    return data.subset(torch.from_numpy(train_idx)), data.subset(torch.from_numpy(test_idx))


def standardize_channels(train: SignalSet, test: SignalSet) -> tuple[SignalSet, SignalSet]:
    """Subtract the training split's per-channel (I, Q) mean and divide by its std, on both
    splits: the ``transforms.Normalize(mean, std)`` every dataset gets in the DC/DM code
    MDM builds on. Statistics come from the training split only, so nothing leaks from
    the test split; a constant channel is only centred."""
    std, mean = torch.std_mean(train.x.double(), dim=(0, 2), keepdim=True)
    std = torch.where(std > 0, std, torch.ones_like(std))

    def scaled(data: SignalSet) -> SignalSet:
        return dataclasses.replace(data, x=((data.x.double() - mean) / std).to(data.x.dtype))

    return scaled(train), scaled(test)
