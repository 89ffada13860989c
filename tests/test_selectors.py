"""Coreset selectors: hand-built scores, greedy algorithms against brute force, budget and
stratification properties, and one end-to-end run of all 11 selectors on tiny data."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from amrbench import resources  # noqa: F401  (scoring registers "gradnorms")
from amrbench.api import AmrbenchError, AMRNet, Budget, SignalSet, derive_seed
from amrbench.cli import main
from amrbench.registry import default_registry
from amrbench.store import ArtifactCache, RecordStore
from amrbench_plugins.select import scoring
from amrbench_plugins.select.cal import knn, symmetric_kl_to_neighbours
from amrbench_plugins.select.cd import kl_traversal
from amrbench_plugins.select.entropy import entropy_scores
from amrbench_plugins.select.foqus import foqus_components, foqus_scores, tiered_pick
from amrbench_plugins.select.forgetting import forgetting_scores
from amrbench_plugins.select.herding import herd
from amrbench_plugins.select.kcenter import farthest_first, nearest_center_counts
from amrbench_plugins.select.least_confidence import least_confidence_scores
from amrbench_plugins.select.margin import margin_scores
from amrbench_plugins.select.selection import (
    class_members,
    quotas,
    random_per_stratum,
    split_quota,
    stratum_quotas,
    top_per_class,
    top_per_stratum,
)

ALL = ["uniform", "herding", "cal", "cd", "forgetting", "grand", "kcenter", "least-confidence", "entropy", "margin",
       "foqus"]
STRATIFIED = [name for name in ALL if name not in ("uniform", "herding")]


class FakeCtx:
    """What a selector reads from its context: seeded RNGs and shared resources."""

    def __init__(self, shared, seed=0):
        self.seed, self.shared, self.memo = seed, shared, {}

    def resource(self, kind, **spec):
        return self.shared[kind]

    def rng(self, *tags):
        return np.random.default_rng(derive_seed(self.seed, *tags))


def make_set(classes=3, snrs=(0, 10, 20, 30), per=10, length=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = classes * len(snrs) * per
    y = torch.arange(classes).repeat_interleave(len(snrs) * per)
    snr = torch.tensor(snrs, dtype=torch.float32).repeat_interleave(per).repeat(classes)
    x = torch.randn(n, 2, length, generator=g) + y.view(-1, 1, 1)
    return SignalSet(x, y, snr, [f"c{i}" for i in range(classes)])


def make_shared(train, epochs=6, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    n, c = len(train), train.num_classes
    logits = torch.randn(n, c, generator=g) * 2
    correct = torch.rand(epochs, n, generator=g) < 0.6
    return {"dynamics": {"correct": correct, "loss": torch.rand(epochs, n, generator=g) * 3,
                         "pred": torch.zeros(epochs, n, dtype=torch.int16), "probs": torch.softmax(logits, 1),
                         "embeddings": torch.randn(n, dim, generator=g), "epochs": epochs},
            "gradnorms": {"norms": torch.rand(3, n, generator=g), "epochs": 2, "repeats": 3}}


def select(name, train, shared, budget, seed=0, **params):
    selector = default_registry().create("selector", name, params)
    return selector.select(FakeCtx(shared, seed), train, budget)


# --------------------------------------------------------------------------- FoQuS
# four samples over T = 5 epochs, scores worked out by hand from Eqs. (4)-(8)
CORRECT = torch.tensor([[1, 0, 1, 0, 1],   # a: forgets at t=2 and t=4
                        [0, 0, 0, 1, 1],   # b: persistent errors at t=2, t=3
                        [1, 1, 1, 1, 1],   # c: always right
                        [0, 0, 0, 0, 0]],  # d: never right
                       dtype=torch.bool).T
LOSS = torch.tensor([[1.0, 2.0, 1.0, 2.0, 1.0],
                     [3.0, 3.0, 2.0, 1.0, 1.0],
                     [0.5, 0.5, 0.5, 0.5, 0.5],
                     [4.0, 4.0, 4.0, 4.0, 4.0]]).T


def test_foqus_components_match_hand_computation():
    parts = foqus_components(CORRECT, LOSS, beta=0.1)
    assert parts["T"] == 5
    assert parts["forgetting"].tolist() == [2, 0, 0, 0]
    assert parts["persistent_error"].tolist() == [0, 2, 0, 4]
    expected_quality = [3 / 5 - 0.1 * 7 / 5, 2 / 5 - 0.1 * 10 / 5, 1 - 0.1 * 2.5 / 5, 0 - 0.1 * 20 / 5]
    assert np.allclose(parts["quality"].numpy(), expected_quality)
    total = foqus_scores(CORRECT, LOSS)
    assert np.allclose(total.numpy(), [2 / 4 + expected_quality[0], 2 / 4 + expected_quality[1], expected_quality[2],
                                       4 / 4 + expected_quality[3]])
    only_forget = foqus_scores(CORRECT, LOSS, persistent_error=False, quality=False)
    assert np.allclose(only_forget.numpy(), [0.5, 0, 0, 0])
    forget_quality = foqus_scores(CORRECT, LOSS, persistent_error=False)
    assert np.allclose(forget_quality.numpy(), [0.5 + expected_quality[0]] + expected_quality[1:])
    minmax = foqus_scores(CORRECT, LOSS, forgetting=False, quality=False, normalize="minmax")
    assert np.allclose(minmax.numpy(), [0, 0.5, 0, 1])
    beta0 = foqus_scores(CORRECT, LOSS, beta=0.0, forgetting=False, persistent_error=False)
    assert np.allclose(beta0.numpy(), [0.6, 0.4, 1.0, 0.0])
    with pytest.raises(AmrbenchError):
        foqus_scores(CORRECT, LOSS, forgetting=False, persistent_error=False, quality=False)


def test_foqus_with_one_epoch_has_no_transition_terms():
    c = torch.tensor([[1, 0]], dtype=torch.bool)
    assert np.allclose(foqus_scores(c, torch.tensor([[1.0, 2.0]])).numpy(), [1 - 0.1, -0.2])


def test_forgetting_counts_and_unlearned_choice():
    assert forgetting_scores(CORRECT, "max").tolist() == [2, 0, 0, 5]
    assert forgetting_scores(CORRECT, "zero").tolist() == [2, 0, 0, 0]


def test_tiers_partition_sorted_scores_and_draw_their_share():
    members = np.arange(9)
    scores = np.arange(9, 0, -1).astype(float)  # already descending: tiers {0,1,2}, {3,4,5}, {6,7,8}
    ties = np.arange(9)
    rng = np.random.default_rng(0)
    assert sorted(tiered_pick(members, scores, 3, [1, 1, 1], [1, 0, 0], "top", rng, ties)) == [0, 1, 2]
    assert sorted(tiered_pick(members, scores, 3, [1, 1, 1], [0, 0, 1], "top", rng, ties)) == [6, 7, 8]
    assert sorted(tiered_pick(members, scores, 3, [1, 1, 1], [1, 1, 1], "top", rng, ties)) == [0, 3, 6]
    # a full tier passes the rest of its share on
    assert sorted(tiered_pick(members, scores, 5, [1, 1, 1], [1, 0, 0], "top", rng, ties)) == [0, 1, 2, 3, 4]
    drawn = tiered_pick(members, scores, 6, [1, 1, 1], [1, 1, 1], "random", rng, ties)
    assert sorted(np.bincount(drawn // 3, minlength=3)) == [2, 2, 2] and len(set(drawn)) == 6
    assert list(split_quota(10, [1, 1, 1], [10, 10, 10])) == [4, 3, 3]
    assert list(split_quota(4, [1, 0, 0], [2, 5, 5])) == [2, 2, 0]


def test_foqus_selector_parameters_are_checked():
    reg = default_registry()
    with pytest.raises(AmrbenchError, match="at least one"):
        reg.create("selector", "foqus", {"forgetting": False, "persistent_error": False, "quality": False})
    with pytest.raises(AmrbenchError, match="tier_proportions"):
        reg.create("selector", "foqus", {"tier_proportions": [1, 1]})
    with pytest.raises(AmrbenchError, match="stratify"):
        reg.create("selector", "kcenter", {"stratify": "snr"})


# --------------------------------------------------------------------------- uncertainty
PROBS = torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1 / 3, 1 / 3, 1 / 3], [0.9, 0.05, 0.05]])


def test_uncertainty_scores_match_hand_computation():
    assert np.allclose(least_confidence_scores(PROBS).numpy(), [0.3, 0.6, 2 / 3, 0.1])
    h = lambda p: -sum(v * math.log(v) for v in p)  # noqa: E731
    assert np.allclose(entropy_scores(PROBS).numpy(), [h(p) for p in PROBS.tolist()])
    assert np.allclose(margin_scores(PROBS).numpy(), [0.5, 0.0, 0.0, 0.85])


def test_uncertainty_selectors_keep_the_most_uncertain_of_each_class():
    train = SignalSet(torch.zeros(8, 2, 4), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]), torch.zeros(8), ["a", "b"])
    probs = torch.cat([PROBS, PROBS.flip(0)])  # class 1 holds the same rows in reverse order
    shared = {"dynamics": {"probs": probs}}
    budget = Budget(spc=1)
    assert select("least-confidence", train, shared, budget).indices.tolist() == [2, 5]
    assert select("entropy", train, shared, budget).indices.tolist() == [2, 5]
    assert select("margin", train, shared, Budget(spc=2)).indices.tolist() == [1, 2, 5, 6]


# --------------------------------------------------------------------------- greedy methods
def brute_force_farthest_first(points, k, start):
    d = torch.cdist(points, points)
    chosen = [start]
    mins = d[start].clone()
    while len(chosen) < k:
        mins[chosen] = -1
        j = int(torch.argmax(mins))
        chosen.append(j)
        mins = torch.minimum(mins, d[j])
    return chosen


def covering_radius(points, chosen):
    return float(torch.cdist(points, points[chosen]).min(1).values.max())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kcenter_equals_brute_force_farthest_first(seed):
    g = torch.Generator().manual_seed(seed)
    points = torch.randn(80, 6, generator=g, dtype=torch.float64)
    for k in (1, 5, 20):
        ours = farthest_first(points, k, start=3).tolist()
        reference = brute_force_farthest_first(points, k, 3)
        assert ours == reference
        assert covering_radius(points, ours) <= covering_radius(points, reference) + 1e-12


@pytest.mark.parametrize("offset", [30.0, 100.0])
def test_kcenter_float32_matches_float64_on_embeddings_with_a_common_offset(offset):
    """Penultimate ReLU features share a large offset; the ||x||^2 + ||y||^2 - 2x.y
    expansion cancels in float32 there unless the features are centred first."""
    g = torch.Generator().manual_seed(0)
    points = offset + 0.3 * torch.randn(2000, 32, generator=g, dtype=torch.float64)
    reference = brute_force_farthest_first(points, 100, 7)
    assert farthest_first(points.float(), 100, start=7).tolist() == reference
    counts = nearest_center_counts(points.float(), torch.tensor(reference))
    exact = torch.cdist(points, points[reference]).argmin(1)
    assert counts.tolist() == torch.bincount(exact, minlength=len(reference)).tolist()


def test_kcenter_selector_is_a_prefix_across_rates_and_weights_count_the_class():
    train = make_set()
    shared = make_shared(train)
    small = select("kcenter", train, shared, Budget(rate=0.1))
    large = select("kcenter", train, shared, Budget(rate=0.3))
    assert set(small.indices.tolist()) <= set(large.indices.tolist())
    weighted = select("kcenter", train, shared, Budget(rate=0.2), weighted=True)
    assert weighted.weights is not None
    y = train.y[weighted.indices]
    for c in range(train.num_classes):
        assert float(weighted.weights[y == c].sum()) == float((train.y == c).sum())
    features = torch.randn(30, 3, dtype=torch.float64)
    centres = torch.tensor([0, 7, 19])
    expected = torch.bincount(torch.cdist(features, features[centres]).argmin(1), minlength=3)
    assert nearest_center_counts(features, centres).tolist() == expected.tolist()


def test_cd_traversal_equals_brute_force_in_symmetric_kl():
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(40, 5, generator=g, dtype=torch.float64) * 2, 1)
    kl = 0.5 * ((p[:, None, :] - p[None, :, :]) * (p.log()[:, None, :] - p.log()[None, :, :])).sum(2)
    chosen, mins = [4], kl[4].clone()
    while len(chosen) < 10:
        mins[chosen] = -1
        j = int(torch.argmax(mins))
        chosen.append(j)
        mins = torch.minimum(mins, kl[j])
    assert kl_traversal(p, 4).extend(10) == chosen


def test_cal_neighbours_and_divergence_match_brute_force():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, generator=g)
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    expected = d.topk(3, largest=False).indices
    assert torch.equal(knn(x, 3), expected)
    p = torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.5, 0.5]])
    nb = torch.tensor([[1, 2], [0, 2], [0, 1]])
    kl = 0.5 * (0.4 * (math.log(0.9) - math.log(0.5)) + (-0.4) * (math.log(0.1) - math.log(0.5)))
    assert np.allclose(symmetric_kl_to_neighbours(p, nb).numpy(), [kl / 2, kl, kl / 2])


def test_herding_running_mean_approaches_the_class_mean():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(400, 5, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1, 1, 0.5, 2])
    order = herd(features, 60)
    assert len(set(order.tolist())) == 60
    mean = features.mean(0)
    error = [float((features[order[:k]].mean(0) - mean).norm()) for k in (1, 5, 20, 60)]
    assert error[0] > error[1] > error[2] > error[3]
    rng = np.random.default_rng(0)
    random_error = np.mean([float((features[rng.choice(400, 60, replace=False)].mean(0) - mean).norm())
                            for _ in range(20)])
    assert error[3] < random_error / 5


def test_grand_closed_form_equals_autograd_last_layer_gradient():
    from amrbench_plugins.select.scoring import last_layer_gradnorms

    class Net(AMRNet):
        def __init__(self, head):
            super().__init__()
            self.body, self.head = nn.Linear(8, 5), head

        def embed(self, x):
            return torch.tanh(self.body(x.flatten(1)))

    torch.manual_seed(0)
    data = SignalSet(torch.randn(12, 2, 4), torch.randint(0, 3, (12,)), torch.zeros(12), ["a", "b", "c"])
    for head in (nn.Linear(5, 3), nn.Sequential(nn.Linear(5, 3))):
        net = Net(head)
        norms = last_layer_gradnorms(net, "iq", data, 5, torch.device("cpu"))
        for i in range(len(data)):
            net.zero_grad()
            loss = nn.functional.cross_entropy(net(data.x[i:i + 1]), data.y[i:i + 1])
            grads = torch.autograd.grad(loss, list(net.head.parameters()))
            assert math.isclose(float(norms[i]), float(torch.sqrt(sum(g.pow(2).sum() for g in grads))), rel_tol=1e-4)


def test_gradnorms_cache_key_covers_dataset_model_seed_and_settings():
    from amrbench.api import Context

    base = {"dataset": {"name": "toy", "params": {"per_class_per_snr": 4}}, "model": {"source": "cnn1d"},
            "versions": {"source": "1"}, "seed": 0, "train": {"epochs": 3}, "settings": {"scoring": {}},
            "method": {"name": "grand", "params": {"repeats": 2, "epochs": None}}}

    def key(**changes):
        cell = {**base, **changes}
        return resources.artifact_config(Context(0, torch.device("cpu"), cell, None, default_registry()), "gradnorms")

    first = key()
    assert first["train"]["epochs"] == 3 and first["repeats"] == 2  # epochs null = min(10, scoring epochs)
    variants = [key(seed=1), key(model={"source": "cnn2d"}), key(dataset={"name": "toy", "params": {}}),
                key(settings={"scoring": {"lr": 0.01}}), key(versions={"source": "2"}),
                key(method={"name": "grand", "params": {"repeats": 3, "epochs": None}}),
                key(method={"name": "grand", "params": {"repeats": 2, "epochs": 1}})]
    assert all(v != first for v in variants)
    assert key() == first


# --------------------------------------------------------------------------- properties
@pytest.mark.parametrize("name", ALL)
def test_selection_is_unique_within_budget_and_deterministic(name):
    train = make_set()
    shared = make_shared(train)
    budget = Budget(rate=0.2)
    first = select(name, train, shared, budget, seed=3)
    again = select(name, train, shared, budget, seed=3)
    idx = first.indices
    assert torch.equal(idx, again.indices)
    assert len(torch.unique(idx)) == len(idx)
    per_class = np.bincount(train.y[idx].numpy(), minlength=train.num_classes)
    assert (per_class == quotas(train, budget)).all()
    spc = select(name, train, shared, Budget(spc=5), seed=3).indices
    assert (np.bincount(train.y[spc].numpy()) == 5).all()


@pytest.mark.parametrize("name", STRATIFIED)
def test_class_snr_stratification_balances_snrs(name):
    train = make_set()  # 3 classes x 4 SNRs x 10
    shared = make_shared(train)
    idx = select(name, train, shared, Budget(rate=0.2), stratify="class_snr").indices  # 8 per class, 2 per SNR
    cells = np.stack([train.y[idx].numpy(), train.snr[idx].numpy()], 1)
    _, counts = np.unique(cells, axis=0, return_counts=True)
    assert len(counts) == 12 and (counts == 2).all()


def test_stratum_quotas_spread_leftovers_over_snrs():
    train = make_set(classes=4, snrs=(0, 10, 20), per=10)
    plan = stratum_quotas(train, Budget(spc=1), "class_snr")
    picked = [key for key, _, quota in plan if quota]
    assert sorted(k[1] for k in picked) == [0, 0, 1, 2]  # one signal per class, SNRs rotate over classes
    for c, q in enumerate(quotas(train, Budget(rate=0.37))):
        assert sum(quota for key, _, quota in stratum_quotas(train, Budget(rate=0.37), "class_snr") if key[0] == c) == q
    scores = np.random.default_rng(0).random(len(train))
    assert torch.equal(top_per_stratum(scores, train, Budget(rate=0.3)), top_per_class(scores, train, Budget(rate=0.3)))
    random_idx = random_per_stratum(np.random.default_rng(0), train, Budget(rate=0.5), "class_snr")
    assert len(random_idx) == 60 and len(torch.unique(random_idx)) == 60
    assert [len(m) for m in class_members(train)] == [30] * 4


# --------------------------------------------------------------------------- end to end
SUITE = """
name: all-selectors
protocol: select
datasets:
  - name: toy
    params: {per_class_per_snr: 24, snr_values: [10, 18], length: 64}
methods: [uniform, herding, cal, cd, forgetting, {name: grand, params: {repeats: 2}}, kcenter, least-confidence,
          entropy, margin, {name: foqus, params: {stratify: class_snr}}]
rates: [0.25]
models: [cnn1d]
seeds: [0, 1]
train: {epochs: 1, batch_size: 32}
settings: {scoring: {epochs: 2}}
"""


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only contend
    yield
    torch.set_num_threads(threads)


def test_all_selectors_end_to_end_share_one_scoring_run(write_suite, tmp_path, isolated_cache, one_thread):
    suite = write_suite(SUITE)
    out = tmp_path / "out"
    assert main(["run", str(suite), "--results", str(out)]) == 0
    records = RecordStore(out / "records.jsonl").read()
    assert len(records) == 22 and all(r["status"] == "ok" for r in records)
    assert {r["config"]["method"]["name"] for r in records} == set(ALL)
    assert all(r["metrics"]["selected"] == round(0.25 * r["metrics"]["n_train"]) for r in records)
    cache = ArtifactCache(isolated_cache / "artifacts")
    assert cache.computations("dynamics") == 2  # one per (dataset, model, seed), whatever the methods and rates
    assert cache.computations("gradnorms") == 2
