"""SNR filters and seeded stratified (class x SNR) train/test splits."""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Optional

import numpy as np
import torch

from amrbench.api import SignalSet

log = logging.getLogger("amrbench.data")


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


def snr_bins_problem(bins) -> Optional[str]:
    """Why ``bins`` is not a valid ``snr_bins`` (a positive bin width in dB, or a list of
    increasing bin edges in dB), or None."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if isinstance(bins, list):
        if not bins or not all(number(v) for v in bins) or any(b <= a for a, b in zip(bins, bins[1:])):
            return "must be a non-empty list of increasing bin edges in dB, e.g. [-10, 0, 10, 20]"
        return None
    if not number(bins) or bins <= 0:
        return "must be a bin width in dB (a positive number, e.g. 2) or a list of bin edges"
    return None


def snr_strata(snr: np.ndarray, bins=None) -> np.ndarray:
    """The SNR value each signal is stratified by: the SNR itself, or with ``snr_bins`` its
    bin (width w: floor(snr / w), bins anchored at 0 dB; edges: the index of the interval,
    as np.digitize). Unknown SNRs (NaN) form one stratum. Stored SNRs are not changed."""
    if bins is None:
        strata = snr.astype(np.float64)
    elif isinstance(bins, (list, tuple)):
        strata = np.digitize(snr, np.asarray(bins, dtype=np.float64)).astype(np.float64)
        strata[np.isnan(snr)] = np.nan
    else:
        strata = np.floor(snr.astype(np.float64) / float(bins))
    return np.nan_to_num(strata, nan=-9999.0)


def _test_counts(groups: np.ndarray, test_fraction: float) -> tuple:
    """(test signals per group, whether each group can be split: at least one signal on
    each side)."""
    sizes = np.bincount(groups)
    n_test = np.rint(sizes * test_fraction).astype(np.int64)
    return n_test, (n_test > 0) & (n_test < sizes)


def exact_test_counts(groups: np.ndarray, labels: np.ndarray, test_fraction: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Test signals per group such that every class's total is exactly
    round(class size x test_fraction): each group gets floor(size x fraction) and the
    class's remaining signals go to its groups with the largest remainders (ties broken
    at random, seeded). Rounding per group instead drifts: 26 groups of 8 at 0.2 round to
    2 of 8 each, a 25 % test split."""
    sizes = np.bincount(groups)
    group_class = np.zeros(len(sizes), dtype=np.int64)
    group_class[groups] = labels
    wanted = sizes * float(test_fraction)
    counts = np.floor(wanted).astype(np.int64)
    class_totals = np.rint(np.bincount(group_class, weights=wanted)).astype(np.int64)
    missing = class_totals - np.bincount(group_class, weights=counts, minlength=len(class_totals)).astype(np.int64)
    order = np.lexsort((rng.random(len(sizes)), -(wanted - counts), group_class))
    place = np.arange(len(sizes)) - np.searchsorted(group_class[order], group_class[order])
    counts[order[place < missing[group_class[order]]]] += 1
    return counts


def stratified_split(data: SignalSet, test_fraction: float, seed: int, snr_bins=None,
                     exact: bool = False) -> tuple[SignalSet, SignalSet]:
    """Split every (class, SNR) group test_fraction/1-test_fraction, seeded; indices sorted
    so the result does not depend on the group iteration order. ``snr_bins`` groups SNRs
    into bins for stratification (see :func:`snr_strata`).

    By default each group's test count is rounded on its own. Signals of groups too small
    to split (rounding leaves one side empty, e.g. a single signal per measured SNR
    value) are pooled per class and split there, with one warning: otherwise they would
    all land on one side and a continuous SNR axis would leave the test split empty.

    ``exact`` (the dataset option ``split: exact``) makes every class's test count
    exactly round(class size x test_fraction), spread over its SNR groups by
    :func:`exact_test_counts`; small groups need no pooling then. The random ranks inside
    groups are drawn first either way, so a group's test signals are the same rows
    whenever both ways give it the same count."""
    y = data.y.numpy()
    rng = np.random.default_rng(seed)
    groups, rank = random_rank_in_groups(y, snr_strata(data.snr.numpy(), snr_bins), rng)
    if exact:
        is_test = rank < exact_test_counts(groups, y, test_fraction, rng)[groups]
    else:
        is_test = _rounded_per_group(data.name, y, groups, rank, test_fraction, rng)
    train_idx = np.flatnonzero(~is_test)
    test_idx = np.flatnonzero(is_test)
    return data.subset(torch.from_numpy(train_idx)), data.subset(torch.from_numpy(test_idx))


def _rounded_per_group(name: str, y: np.ndarray, groups: np.ndarray, rank: np.ndarray, test_fraction: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Test mask with each group's count rounded on its own; unsplittable groups pooled
    per class (see :func:`stratified_split`)."""
    n_test, splittable = _test_counts(groups, test_fraction)
    is_test = rank < n_test[groups]
    pooled = ~splittable[groups]
    if pooled.any():
        class_groups, class_rank = random_rank_in_groups(y[pooled], np.zeros(int(pooled.sum())), rng)
        is_test[pooled] = class_rank < _test_counts(class_groups, test_fraction)[0][class_groups]
        _warn_once(f"dataset {name!r}: {int(pooled.sum())} signals in {int((~splittable).sum())} (class, SNR) "
                   f"groups too small to split {1 - test_fraction:g}:{test_fraction:g} are stratified by class only; "
                   f"set snr_bins (e.g. snr_bins: 2) to group measured SNRs, or split: exact")
    return is_test


_WARNED: set = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning(message)


def split_problem(train: SignalSet, test: SignalSet) -> Optional[str]:
    """Why a (train, test) pair cannot be scored meaningfully, or None: a class with no
    test signal (an empty test split, or fewer test signals than classes, included)."""
    counts = test.class_counts()
    if counts.all():
        return None
    missing = np.flatnonzero(counts == 0)
    names = ", ".join(test.classes[c] for c in missing[:3]) + (" ..." if len(missing) > 3 else "")
    text = f"the test split holds {len(test)} signals for {test.num_classes} classes (none of class {names})"
    never = [c for c in missing if train.class_counts()[c] == 0]
    if never:
        text += f"; class {test.classes[never[0]]!r} has no signal at all: keep only the classes the data holds"
    return text + "; set snr_bins (e.g. snr_bins: 2) when SNRs are measured values, or raise test_fraction"


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
