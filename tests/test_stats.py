"""amrbench.stats against hand-computed values (and the scipy calls they wrap)."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from amrbench import stats

# Student t quantile with 2 degrees of freedom in closed form: (2p - 1) / sqrt(2 p (1 - p))
T_975_DF2 = (2 * 0.975 - 1) / math.sqrt(2 * 0.975 * 0.025)  # 4.3027


def test_t_interval_matches_the_hand_computed_interval():
    mean, low, high = stats.t_interval([1.0, 2.0, 3.0])
    half = T_975_DF2 * 1.0 / math.sqrt(3)  # sample std 1, sem = 1 / sqrt(3)
    assert mean == 2.0 and low == pytest.approx(2 - half, rel=1e-12) and high == pytest.approx(2 + half, rel=1e-12)
    assert stats.half_width([1.0, 2.0, 3.0]) == pytest.approx(half, rel=1e-12)
    assert (low, high) == pytest.approx(scipy_stats.t.interval(0.95, 2, loc=2, scale=scipy_stats.sem([1, 2, 3])))


def test_t_interval_edge_cases():
    mean, low, high = stats.t_interval([0.7])
    assert mean == 0.7 and math.isnan(low) and math.isnan(high)
    assert stats.t_interval([0.3, 0.3, 0.3]) == (pytest.approx(0.3), pytest.approx(0.3), pytest.approx(0.3))
    narrow = stats.half_width([1.0, 2.0, 3.0], confidence=0.5)
    assert narrow < stats.half_width([1.0, 2.0, 3.0])


def test_one_sided_paired_t_test_matches_the_closed_form_for_two_degrees_of_freedom():
    best, other = [0.62, 0.66, 0.70], [0.50, 0.55, 0.60]
    d = np.subtract(other, best)  # -0.12, -0.11, -0.10
    t = d.mean() / (d.std(ddof=1) / math.sqrt(3))
    expected = 0.5 + t / (2 * math.sqrt(2 + t * t))  # Student t CDF, 2 degrees of freedom
    p = stats.worse_pvalue(best, other, higher_is_better=True)
    assert t == pytest.approx(-19.0525588833, rel=1e-9)
    assert p == pytest.approx(expected, rel=1e-9) and p < 0.05
    assert p == pytest.approx(scipy_stats.ttest_rel(other, best, alternative="less").pvalue)
    assert stats.significantly_worse(best, other, True) is True
    # lower is better: the same numbers make `other` the better one
    assert stats.worse_pvalue(best, other, higher_is_better=False) == pytest.approx(1 - expected, rel=1e-9)
    assert stats.significantly_worse(best, other, False) is False


def test_paired_test_not_significant_and_degenerate_cases():
    # differences -0.12, -0.04 at n = 2: t = -2, one-sided p = 0.1476 (tables)
    assert stats.worse_pvalue([0.62, 0.64], [0.50, 0.60], True) == pytest.approx(0.14758362, rel=1e-6)
    assert stats.significantly_worse([0.62, 0.64], [0.50, 0.60], True) is False
    assert stats.significantly_worse([0.6], [0.5], True) is None  # one pair: no test
    assert stats.worse_pvalue([0.6, 0.7], [0.6, 0.7], True) == 1.0  # identical
    assert stats.worse_pvalue([0.6, 0.7], [0.5, 0.6], True) == 0.0  # constant shift, the limit of t
    assert stats.worse_pvalue([0.6, 0.7], [0.7, 0.8], True) == 1.0


def test_wilcoxon_cannot_reach_five_percent_with_three_seeds():
    """The reason the tables use the t-test (documented in amrbench.stats)."""
    assert scipy_stats.wilcoxon([0.1, 0.2, 0.3]).pvalue == pytest.approx(0.25)


def test_paired_difference_is_oriented_towards_better():
    up = stats.paired_difference([3.0, 4.0, 5.0], [1.0, 2.0, 3.0], higher_is_better=True)
    assert (up.mean, up.low, up.high, up.n) == (2.0, 2.0, 2.0, 3)
    down = stats.paired_difference([1.0, 2.0, 4.0], [2.0, 3.0, 4.0], higher_is_better=False)
    half = T_975_DF2 * (math.sqrt(1 / 3) / math.sqrt(3))  # differences 1, 1, 0: sd sqrt(1/3)
    assert down.mean == pytest.approx(2 / 3) and down.high == pytest.approx(2 / 3 + half) and down.n == 3


def test_average_ranks_average_ties_and_put_the_best_first():
    blocks = pd.DataFrame([[3.0, 1.0, 2.0], [1.0, 1.0, 3.0]], columns=["a", "b", "c"])
    # block 1 (higher better): a 1, b 3, c 2; block 2: a and b tie for 2 and 3 -> 2.5, c 1
    assert stats.average_ranks(blocks, True).to_dict() == {"a": 1.75, "b": 2.75, "c": 1.5}
    assert stats.average_ranks(blocks, False).to_dict() == {"a": 2.25, "b": 1.25, "c": 2.5}


def test_friedman_wraps_scipy_and_refuses_what_it_cannot_test():
    blocks = pd.DataFrame([[3.0, 1.0, 2.0], [3.0, 2.0, 1.0], [2.0, 1.0, 3.0], [3.0, 1.0, 2.0]], columns=list("abc"))
    result = stats.friedman(blocks)
    expected = scipy_stats.friedmanchisquare(*(blocks[c] for c in blocks))
    assert result.statistic == pytest.approx(expected.statistic) and result.pvalue == pytest.approx(expected.pvalue)
    assert result.blocks == 4
    # rank sums a 11, b 5, c 8 over n = 4 blocks, k = 3: chi2 = 12 / (n k (k+1)) * sum R^2 - 3 n (k+1)
    assert result.statistic == pytest.approx(12 / (4 * 3 * 4) * (11 ** 2 + 5 ** 2 + 8 ** 2) - 3 * 4 * 4)
    assert stats.friedman(blocks[["a", "b"]]) is None  # two competitors
    assert stats.friedman(blocks.iloc[:1]) is None  # one block


@pytest.mark.skipif(not stats.have_posthocs(), reason="needs the optional extra amrbench[stats]")
def test_nemenyi_is_symmetric_with_unit_diagonal():
    blocks = pd.DataFrame(np.random.default_rng(0).random((6, 4)), columns=list("abcd"))
    p = stats.nemenyi(blocks)
    assert list(p.columns) == list("abcd") and np.allclose(np.diag(p), 1) and np.allclose(p, p.T)
