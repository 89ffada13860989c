"""Helpers every selector shares: per-class budgets and class-balanced picking.

Selection is class-balanced by default (the FoQuS protocol): the budget is split over
classes (``Budget.per_class``) and each class picks its own share.
"""
from __future__ import annotations

import numpy as np
import torch

from amrbench.api import AmrbenchError, Budget, SignalSet


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
