"""The statistics behind tables, claims and figures: thin wrappers over scipy.stats.

- Per-cell uncertainty: a Student t-interval of the mean (``scipy.stats.t``).
- "Not significantly worse than the best": a one-sided paired t-test
  (``scipy.stats.ttest_rel``) over values that share a seed (same split, same
  initialisation) or, for pooled metrics, a (seed, position in the pooled list) pair.
  The t-test, not the Wilcoxon signed-rank test: with the 3-5 seeds a suite runs, the
  signed-rank test cannot reach p < 0.05 at all (its smallest two-sided p for n = 3 is
  2 / 2**3 = 0.25, one-sided 0.125; for n = 5 one-sided 1/32 is its only chance).
- Paired differences for claims: the t-interval of the per-pair differences.
- Ranks: ``scipy.stats.rankdata`` (ties share their average rank), the Friedman test
  (``scipy.stats.friedmanchisquare``) and, with the optional extra ``amrbench[stats]``,
  the Nemenyi post-hoc test of scikit-posthocs.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

ALPHA = 0.05
CONFIDENCE = 0.95


def t_interval(values, confidence: float = CONFIDENCE) -> tuple:
    """(mean, low, high): the Student t-interval of the mean of ``values``; the bounds
    are NaN with fewer than two values and equal the mean when all values are equal."""
    values = np.asarray(values, dtype=float)
    mean = float(np.mean(values)) if len(values) else math.nan
    if len(values) < 2:
        return mean, math.nan, math.nan
    sem = float(scipy_stats.sem(values))
    if sem == 0.0 or _constant(values):
        return mean, mean, mean
    low, high = scipy_stats.t.interval(confidence, len(values) - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def half_width(values, confidence: float = CONFIDENCE) -> float:
    """Half the width of the t-interval (NaN with fewer than two values)."""
    mean, low, high = t_interval(values, confidence)
    return (high - low) / 2


def _constant(values: np.ndarray) -> bool:
    """All values equal up to float noise (the t statistic is then undefined)."""
    spread = float(np.max(values) - np.min(values))
    return spread <= 1e-12 * max(1.0, float(np.max(np.abs(values))))


def worse_pvalue(reference, other, higher_is_better: bool) -> float:
    """One-sided p-value of the paired t-test that ``other`` is worse than
    ``reference`` (``reference[i]`` and ``other[i]`` share a seed). NaN with fewer than
    two pairs. Constant differences have no variance: the limit of the test is taken
    (p = 0 when they all point the worse way, 1 otherwise)."""
    reference, other = np.asarray(reference, dtype=float), np.asarray(other, dtype=float)
    if len(other) < 2:
        return math.nan
    difference = other - reference
    if _constant(difference):
        worse = difference[0] < 0 if higher_is_better else difference[0] > 0
        return 0.0 if worse and abs(difference[0]) > 0 else 1.0
    alternative = "less" if higher_is_better else "greater"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(scipy_stats.ttest_rel(other, reference, alternative=alternative).pvalue)


def significantly_worse(reference, other, higher_is_better: bool, alpha: float = ALPHA) -> Optional[bool]:
    """Whether ``other`` is significantly worse than ``reference`` at level ``alpha``
    (one-sided paired t-test); None when there are fewer than two pairs to test."""
    p = worse_pvalue(reference, other, higher_is_better)
    return None if math.isnan(p) else bool(p < alpha)


@dataclass
class PairedDifference:
    """The mean paired difference (oriented so that positive means "better"), its
    t-interval and the number of pairs."""

    mean: float
    low: float
    high: float
    n: int


def paired_difference(better, than, higher_is_better: bool, confidence: float = CONFIDENCE) -> PairedDifference:
    """Per-pair differences ``better - than`` (sign flipped when lower is better) and
    the t-interval of their mean."""
    difference = np.asarray(better, dtype=float) - np.asarray(than, dtype=float)
    if not higher_is_better:
        difference = -difference
    mean, low, high = t_interval(difference, confidence)
    return PairedDifference(mean, low, high, len(difference))


def average_ranks(blocks: pd.DataFrame, higher_is_better: bool) -> pd.Series:
    """Average rank of each column of ``blocks`` (one row per block, one column per
    competitor) over the blocks; rank 1 is the best, ties share their average rank."""
    signed = blocks.to_numpy(dtype=float) * (-1.0 if higher_is_better else 1.0)
    ranks = np.vstack([scipy_stats.rankdata(row) for row in signed]) if len(signed) else np.empty((0, blocks.shape[1]))
    return pd.Series(ranks.mean(axis=0), index=blocks.columns)


@dataclass
class Friedman:
    statistic: float
    pvalue: float
    blocks: int


def friedman(blocks: pd.DataFrame) -> Optional[Friedman]:
    """The Friedman test over complete blocks (rows of ``blocks``, one column per
    competitor); None when it cannot be computed (fewer than 3 competitors or 2 blocks,
    or no variation within any block)."""
    if blocks.shape[1] < 3 or blocks.shape[0] < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            result = scipy_stats.friedmanchisquare(*[blocks[c].to_numpy(dtype=float) for c in blocks.columns])
        except (ValueError, ZeroDivisionError):
            return None
    if not np.isfinite(result.pvalue):
        return None
    return Friedman(float(result.statistic), float(result.pvalue), int(blocks.shape[0]))


def have_posthocs() -> bool:
    """Whether scikit-posthocs (the optional extra ``amrbench[stats]``) is installed."""
    try:
        import scikit_posthocs  # noqa: F401
    except ImportError:
        return False
    return True


def nemenyi(blocks: pd.DataFrame) -> pd.DataFrame:
    """Pairwise p-values of the Nemenyi post-hoc test after Friedman (scikit-posthocs);
    ``blocks`` has one row per block and one column per competitor."""
    import scikit_posthocs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return scikit_posthocs.posthoc_nemenyi_friedman(blocks)
