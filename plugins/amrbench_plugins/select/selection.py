"""Helpers every selector shares: per-class budgets and class-balanced picking.

Selection is class-balanced by default (the FoQuS protocol): the budget is split over
classes (``Budget.per_class``) and each class picks its own share. The ``*_per_stratum``
helpers add the ``stratify`` choice every selector offers: ``class`` (default) or
``class_snr`` (each class's share split again over its SNR values).
"""
from __future__ import annotations

import numpy as np
import torch

from amrbench.api import AmrbenchError, Budget, SignalSet, did_you_mean


def class_members(train: SignalSet) -> list[np.ndarray]:
    y = train.y.numpy()
    return [np.flatnonzero(y == c) for c in range(train.num_classes)]


def quotas(train: SignalSet, budget: Budget) -> np.ndarray:
    return budget.per_class(train.class_counts())


def top_per_class(scores, train: SignalSet, budget: Budget, largest: bool = True) -> torch.Tensor:
    """The ``quota`` highest- (or lowest-) scoring signals of each class; ties are broken
    by index so the result is deterministic."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(train),):
        raise AmrbenchError(f"selector scores must have shape ({len(train)},), got {scores.shape}")
    picked = []
    for members, quota in zip(class_members(train), quotas(train, budget)):
        s = scores[members] if largest else -scores[members]
        order = np.lexsort((members, -s))
        picked.append(members[order[:quota]])
    return torch.from_numpy(np.sort(np.concatenate(picked))).long()


def random_per_class(rng: np.random.Generator, train: SignalSet, budget: Budget) -> torch.Tensor:
    picked = [rng.choice(members, size=quota, replace=False)
              for members, quota in zip(class_members(train), quotas(train, budget))]
    return torch.from_numpy(np.sort(np.concatenate(picked))).long()


def check_selection(indices: torch.Tensor, train: SignalSet, budget: Budget) -> torch.Tensor:
    """Selected indices must be unique, in range and within the budget."""
    indices = torch.as_tensor(indices, dtype=torch.int64).flatten()
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= len(train)):
        raise AmrbenchError("selector returned indices outside the training set")
    if len(torch.unique(indices)) != len(indices):
        raise AmrbenchError("selector returned duplicate indices")
    if len(indices) > int(quotas(train, budget).sum()):
        raise AmrbenchError(f"selector returned {len(indices)} signals, more than the budget {budget.label()}")
    return indices


# --------------------------------------------------------------------------- strata
# Every selector balances its picks over classes (the default, ``stratify: class``) or
# over class x SNR cells (``stratify: class_snr``): each class keeps its share of the
# budget (``Budget.per_class``), then splits it over its SNR values like the data.

STRATIFY = ("class", "class_snr")


def strata(train: SignalSet, stratify: str = "class") -> list[tuple[tuple, np.ndarray]]:
    """The groups a selection is balanced over, as ``((class, snr index), members)``,
    members sorted; ``class`` gives one group per class (snr index -1). Signals with an
    unknown (NaN) SNR form one SNR group of their own."""
    if stratify not in STRATIFY:
        raise AmrbenchError(f"stratify={stratify!r} is not allowed{did_you_mean(stratify, STRATIFY)}")
    members = class_members(train)
    if stratify == "class":
        return [((c, -1), m) for c, m in enumerate(members)]
    snr = np.nan_to_num(train.snr.numpy().astype(np.float64), nan=-np.inf)
    levels = np.unique(snr)
    level_of = np.searchsorted(levels, snr)
    out = []
    for c, m in enumerate(members):
        for k in np.unique(level_of[m]):
            out.append(((c, int(k)), m[level_of[m] == k]))
    return out


def stratum_quotas(train: SignalSet, budget: Budget, stratify: str = "class") -> list[tuple[tuple, np.ndarray, int]]:
    """``(stratum, members, quota)`` for every stratum. Class quotas are exactly
    ``Budget.per_class``; with ``class_snr`` a class's quota is split over its SNR groups
    in proportion to their sizes (largest remainder). Equal remainders are broken by a
    rotation of the SNR levels that starts at a different level for each class, so that
    when a class cannot cover every SNR the leftover signals spread over all SNRs across
    classes instead of always favouring the lowest SNR."""
    groups = strata(train, stratify)
    class_quota = quotas(train, budget)
    if stratify == "class":
        return [(key, m, int(class_quota[key[0]])) for key, m in groups]
    n_levels = 1 + max(key[1] for key, _ in groups) if groups else 1
    out = []
    for c in range(train.num_classes):
        mine = [(key, m) for key, m in groups if key[0] == c]
        if not mine:
            continue
        sizes = np.array([len(m) for _, m in mine], dtype=np.int64)
        exact = sizes * (int(class_quota[c]) / sizes.sum())
        share = np.floor(exact).astype(np.int64)
        rotation = np.array([(key[1] - c) % n_levels for key, _ in mine])
        order = np.lexsort((rotation, -(exact - share)))
        share[order[: int(class_quota[c]) - int(share.sum())]] += 1
        share = np.minimum(share, sizes)
        out += [(key, m, int(q)) for (key, m), q in zip(mine, share)]
    return out


def pick_per_stratum(train: SignalSet, budget: Budget, stratify: str, pick) -> torch.Tensor:
    """Sorted indices from ``pick(stratum, members, quota) -> chosen members`` called
    for every stratum with a positive quota."""
    picked = [np.asarray(pick(key, members, quota), dtype=np.int64)
              for key, members, quota in stratum_quotas(train, budget, stratify) if quota > 0]
    if not picked:
        return torch.zeros(0, dtype=torch.int64)
    return torch.from_numpy(np.sort(np.concatenate(picked))).long()


def top_per_stratum(scores, train: SignalSet, budget: Budget, largest: bool = True, stratify: str = "class",
                    tiebreak=None) -> torch.Tensor:
    """The ``quota`` highest- (or lowest-) scoring signals of each stratum. Ties are
    broken by ``tiebreak`` (lower first; e.g. a seeded permutation, so that signals
    stored in SNR order are not favoured) or else by index. With ``stratify: class``
    and no tiebreak this is exactly ``top_per_class``."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(train),):
        raise AmrbenchError(f"selector scores must have shape ({len(train)},), got {scores.shape}")
    if np.isnan(scores).any():
        raise AmrbenchError("selector scores contain NaN")
    keys = np.arange(len(train)) if tiebreak is None else np.asarray(tiebreak)

    def pick(_, members, quota):
        s = scores[members] if largest else -scores[members]
        return members[np.lexsort((keys[members], -s))[:quota]]

    return pick_per_stratum(train, budget, stratify, pick)


def random_per_stratum(rng: np.random.Generator, train: SignalSet, budget: Budget, stratify: str = "class") -> torch.Tensor:
    """Uniform draws without replacement inside every stratum."""
    return pick_per_stratum(train, budget, stratify, lambda _, members, quota: rng.choice(members, quota, replace=False))


def split_quota(quota: int, proportions, capacity) -> np.ndarray:
    """Split ``quota`` over parts in ``proportions`` (largest remainder), never giving a
    part more than its ``capacity``; what a full part cannot take goes to the parts with
    room, in order of their proportion."""
    p = np.asarray(proportions, dtype=np.float64)
    capacity = np.asarray(capacity, dtype=np.int64)
    quota = int(min(quota, capacity.sum()))
    exact = quota * p / p.sum()
    share = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(len(p)), -(exact - share)))
    share[order[: quota - int(share.sum())]] += 1
    share = np.minimum(share, capacity)
    for i in np.lexsort((np.arange(len(p)), -p)):
        extra = min(quota - int(share.sum()), int(capacity[i] - share[i]))
        share[i] += max(0, extra)
    return share


def settle_added_params(params: dict, added: dict) -> dict:
    """The values of the parameters in ``added`` (name -> default), each removed from
    ``params`` while it holds its default. A cell's key hashes its selector's resolved
    parameters, so a parameter added after records were committed would otherwise change
    the key of every cell that never sets it; left out at its default, those keys (and
    the records behind them) stay valid."""
    values = {key: params[key] for key in added}
    for key, default in added.items():
        if params[key] == default:
            del params[key]
    return values
