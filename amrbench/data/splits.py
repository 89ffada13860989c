"""SNR filters and seeded stratified (class x SNR) train/test splits."""
from __future__ import annotations

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


def stratified_split(data: SignalSet, test_fraction: float, seed: int) -> tuple[SignalSet, SignalSet]:
    """Split every (class, SNR) group test_fraction/1-test_fraction, seeded; indices sorted
    so the result does not depend on the group iteration order."""
    rng = np.random.default_rng(seed)
    y = data.y.numpy()
    snr = np.nan_to_num(data.snr.numpy(), nan=-9999.0)
    groups = np.unique(np.stack([y, snr], axis=1), axis=0, return_inverse=True)[1].reshape(-1)
    order = np.lexsort((rng.random(len(y)), groups))
    sizes = np.bincount(groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(len(y), dtype=np.int64)
    rank[order] = np.arange(len(y)) - np.repeat(starts, sizes)
    n_test = np.rint(sizes * test_fraction).astype(np.int64)
    is_test = rank < n_test[groups]
    train_idx = np.flatnonzero(~is_test)
    test_idx = np.flatnonzero(is_test)
    return data.subset(torch.from_numpy(train_idx)), data.subset(torch.from_numpy(test_idx))
