"""The reference variants of Herding, Forgetting and Cal: each alternative picks
differently from the default on a tiny hand-made case, and follows the reference's rule
(DeepCore for Herding and Forgetting, the CAL paper for Cal). Defaults stay out of the
selector's parameters, so the keys of committed cells do not move."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from amrbench.api import AmrbenchError, Budget, SignalSet, derive_seed
from amrbench.registry import default_registry
from amrbench_plugins.select.cal import neighbour_kl_to_candidates, symmetric_kl_to_neighbours
from amrbench_plugins.select.forgetting import forgetting_scores
from amrbench_plugins.select.herding import herd
from amrbench_plugins.select.selection import settle_added_params
from tests.conftest import TINY_SUITE


class Ctx:
    """The parts of a cell's context a selector reads: seeded RNGs and the dynamics."""

    def __init__(self, dynamics, seed=0):
        self.dynamics, self.seed = dynamics, seed

    def resource(self, kind, **spec):
        return self.dynamics

    def rng(self, *tags):
        return np.random.default_rng(derive_seed(self.seed, *tags))


def one_class(n):
    return SignalSet(torch.zeros(n, 2, 4), torch.zeros(n, dtype=torch.int64), torch.zeros(n), ["a"])


def select(name, dynamics, n, spc, **params):
    selector = default_registry().create("selector", name, params)
    return sorted(selector.select(Ctx(dynamics), one_class(n), Budget(spc=spc)).indices.tolist())


# --------------------------------------------------------------------------- herding
# 1-D points, mean 1.5. Herding: 2 is nearest the mean; then the residual 2*1.5 - 2 = 1
# is nearest 0. DeepCore: 5 is farthest from 1.5; then the residual 2*1.5 - 5 = -2 is
# farthest from 2 (distance 4, against 1 and 2 for -1 and 0).
POINTS = torch.tensor([[-1.0], [0.0], [2.0], [5.0]])


def deepcore_herding(features, k):
    """DeepCore's herding loop written out: argmax over the unselected points of their
    distance to (i + 1) * mean - sum(selected)."""
    mean, chosen = features.mean(0), []
    for i in range(k):
        residual = (i + 1) * mean - features[chosen].sum(0)
        free = [j for j in range(len(features)) if j not in chosen]
        distance = (features[free] - residual).norm(dim=1)
        chosen.append(free[int(torch.argmax(distance))])
    return chosen


def test_herding_variants_pick_nearest_and_farthest_by_hand():
    assert herd(POINTS, 2).tolist() == [2, 1]
    assert herd(POINTS, 2, "deepcore").tolist() == [3, 2] == deepcore_herding(POINTS, 2)
    dynamics = {"embeddings": POINTS}
    assert select("herding", dynamics, 4, 2) == [1, 2]
    assert select("herding", dynamics, 4, 2, variant="deepcore") == [2, 3]


def test_deepcore_herding_matches_the_reference_loop_on_random_embeddings():
    features = torch.randn(60, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert herd(features, 25, "deepcore").tolist() == deepcore_herding(features, 25)
    with pytest.raises(AmrbenchError, match="herding variant"):
        herd(features, 3, "farthest")


# --------------------------------------------------------------------------- forgetting
# T = 4 epochs: a forgotten twice, b never learned, c forgotten once, d always right
CORRECT = torch.tensor([[1, 0, 1, 0],
                        [0, 0, 0, 0],
                        [1, 1, 0, 1],
                        [1, 1, 1, 1]], dtype=torch.bool).T


def deepcore_forgetting(correct):
    """DeepCore's counter: previous correctness starts at 0 and an event is counted
    where previous - current > 0.01; then sorted by events, most first."""
    last = torch.zeros(correct.shape[1])
    events = torch.zeros(correct.shape[1])
    for epoch in correct.float():
        events[(last - epoch) > 0.01] += 1
        last = epoch
    return events


def test_forgetting_unlearned_max_keeps_the_never_learned_and_zero_follows_deepcore():
    assert forgetting_scores(CORRECT, "max").tolist() == [2, 4, 1, 0]
    assert forgetting_scores(CORRECT, "zero").tolist() == deepcore_forgetting(CORRECT).tolist() == [2, 0, 1, 0]
    dynamics = {"correct": CORRECT}
    assert select("forgetting", dynamics, 4, 2) == [0, 1]  # b (score T) and a
    assert select("forgetting", dynamics, 4, 2, unlearned="zero") == [0, 2]  # DeepCore: a, then c


# --------------------------------------------------------------------------- cal
# two tight pairs far apart, so each signal's one neighbour is its partner. Pair (0, 1)
# is symmetric (KL 0.832 both ways); pair (2, 3) is lopsided: KL(p3||p2) = 0.882 but
# KL(p2||p3) = 0.217, so its symmetric score (0.549) is the lower one.
PAIR_EMBEDDINGS = torch.tensor([[0.0], [0.1], [10.0], [10.1]])
PAIR_PROBS = torch.tensor([[0.8, 0.2], [0.2, 0.8], [0.999, 0.001], [0.8, 0.2]], dtype=torch.float64)


def test_cal_kl_forms_match_scipy_and_rank_the_pairs_differently():
    neighbours = torch.tensor([[1], [0], [3], [2]])
    p = PAIR_PROBS.numpy()
    paper = [entropy(p[j], p[i]) for i, j in enumerate([1, 0, 3, 2])]  # KL(neighbour || candidate)
    symmetric = [(entropy(p[i], p[j]) + entropy(p[j], p[i])) / 2 for i, j in enumerate([1, 0, 3, 2])]
    assert np.allclose(neighbour_kl_to_candidates(PAIR_PROBS, neighbours).numpy(), paper)
    assert np.allclose(symmetric_kl_to_neighbours(PAIR_PROBS, neighbours).numpy(), symmetric)
    assert math.isclose(paper[2], 0.8 * math.log(0.8 / 0.999) + 0.2 * math.log(0.2 / 0.001), rel_tol=1e-6)
    dynamics = {"embeddings": PAIR_EMBEDDINGS, "probs": PAIR_PROBS}
    assert select("cal", dynamics, 4, 2, neighbors=1) == [0, 1]
    assert select("cal", dynamics, 4, 1, neighbors=1, kl="cal_paper") == [2]
    assert select("cal", dynamics, 4, 2, neighbors=1, kl="cal_paper") in ([0, 2], [1, 2])


def test_cal_paper_direction_averages_over_several_neighbours():
    g = torch.Generator().manual_seed(2)
    probs = torch.softmax(torch.randn(12, 4, generator=g, dtype=torch.float64) * 2, 1)
    neighbours = torch.randint(0, 12, (12, 3), generator=g)
    p = probs.numpy()
    expected = [np.mean([entropy(p[j], p[i]) for j in row]) for i, row in enumerate(neighbours.tolist())]
    assert np.allclose(neighbour_kl_to_candidates(probs, neighbours).numpy(), expected)


# --------------------------------------------------------------------------- keys
@pytest.mark.parametrize("name, key, default, other", [
    ("herding", "variant", "herding", "deepcore"),
    ("cal", "kl", "symmetric", "cal_paper"),
])
def test_added_parameter_enters_the_params_only_when_not_default(name, key, default, other):
    registry = default_registry()
    assert key in registry.create("selector", name).defaults
    assert key not in registry.create("selector", name).params
    assert key not in registry.create("selector", name, {key: default}).params
    assert registry.create("selector", name, {key: other}).params[key] == other
    with pytest.raises(AmrbenchError, match=f"{key}='sideways' is not allowed"):
        registry.create("selector", name, {key: "sideways"})


def test_settle_added_params_returns_values_and_drops_defaults():
    params = {"a": 1, "variant": "herding", "kl": "cal_paper"}
    values = settle_added_params(params, {"variant": "herding", "kl": "symmetric"})
    assert values == {"variant": "herding", "kl": "cal_paper"}
    assert params == {"a": 1, "kl": "cal_paper"}


def test_suite_validation_knows_the_variants(write_suite):
    from amrbench.suite import expand, load_suite

    text = TINY_SUITE.replace("[uniform, herding]", "[herding, {name: cal, params: {kl: cal_paper}}]")
    params = {cell["config"]["method"]["name"]: cell["config"]["method"]["params"]
              for cell in expand(load_suite(write_suite(text)))}
    assert params["herding"] == {"embedding": "model", "stratify": "class"}  # as in the committed records
    assert params["cal"]["kl"] == "cal_paper"
    bad = TINY_SUITE.replace("[uniform, herding]", "[{name: herding, params: {variant: argmax}}]")
    with pytest.raises(AmrbenchError, match="variant='argmax' is not allowed"):
        load_suite(write_suite(bad, name="bad.yaml"))
