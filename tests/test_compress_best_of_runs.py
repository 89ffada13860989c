"""HQA on the best of ``hae_runs`` HAE runs (HQARF: "we always used the best HAE of the
different runs"): the chosen run is the argmin of the training-data criterion, and one
run is the single stack of the cell's seed. Tiny sizes."""
import pytest
import torch

from amrbench.api import AmrbenchError, Context
from amrbench.registry import default_registry
from amrbench.store import ArtifactCache
from amrbench_plugins.compress import accounting as compress
from amrbench_plugins.compress import hae

PARAMS = {"layers": 2, "enc_hidden": 4, "dec_hidden": 4, "resnet_blocks": 0, "epochs": 2, "batch_size": 16,
          "codebook_size": 8, "hqa_epochs": 1, "hqa_lr": 0.01, "reset_every": 0}


def make_ctx(tmp_path, seed=0):
    return Context(seed=seed, device=torch.device("cpu"), cell={}, cache=ArtifactCache(tmp_path / "artifacts"),
                   registry=default_registry())


def toy():
    data = default_registry().create("dataset", "toy", {"per_class_per_snr": 8, "length": 32, "snr_values": [10]})
    return data.load(0)


def fitted(name, params, data, ctx):
    cls = default_registry().get("compressor", name)
    compressor = cls(**{k: v for k, v in params.items() if k in cls.defaults})
    compressor.fit(ctx, data)
    return compressor


def same_weights(module, state) -> bool:
    own = module.state_dict()
    return own.keys() == state.keys() and all(torch.equal(own[k], state[k]) for k in own)


def test_the_chosen_run_is_the_argmin_of_the_training_reconstruction_error(tmp_path):
    data, ctx = toy(), make_ctx(tmp_path)
    hqa = fitted("hqa", {**PARAMS, "hae_runs": 3}, data, ctx)
    runs = hqa.history["hae_runs"]
    assert runs["seeds"] == hae.run_seeds(0, 3) and len(set(runs["seeds"])) == 3
    assert ctx.cache.computations("hae-stack") == 3
    # the criterion recomputed through the public HAE plugin, one cell per run seed (cached stacks)
    scores, stacks = [], []
    for seed in runs["seeds"]:
        model = fitted("hae", PARAMS, data, make_ctx(tmp_path, seed))
        levels = [compress.nmse_db(data.x, model.decode(model.encode(data.x, level), level)) for level in (0, 1)]
        scores.append(sum(levels) / 2)
        stacks.append(model.get_state())
    assert ctx.cache.computations("hae-stack") == 3  # the plugin cells reused the runs
    assert runs["score"] == pytest.approx(scores, abs=1e-4)
    assert len({round(s, 4) for s in scores}) == 3  # the runs differ
    best = min(range(3), key=scores.__getitem__)
    assert runs["chosen"] == best
    for i, layer in enumerate(hqa.layers):
        assert same_weights(layer.encoder, stacks[best]["layers"][i]["encoder"])
        assert same_weights(layer.decoder, stacks[best]["layers"][i]["decoder"])


def test_the_mean_over_levels_decides_whichever_run_it_picks(tmp_path, monkeypatch):
    data, ctx = toy(), make_ctx(tmp_path)
    # run 1 is best at level 0 but worst on average; run 2 has the lowest mean
    fake = iter([[0.0, 0.0], [-4.0, 6.0], [-3.0, -1.0]])
    monkeypatch.setattr(hae, "reconstruction_nmse_db", lambda *args, **kwargs: next(fake))
    hqa = fitted("hqa", {**PARAMS, "hae_runs": 3}, data, ctx)
    assert hqa.history["hae_runs"]["chosen"] == 2 and hqa.history["hae_runs"]["score"] == [0.0, 1.0, -2.0]
    chosen = hae.fitted_stack(ctx, data.x, hqa.params, hae.run_seeds(0, 3)[2])
    assert all(same_weights(layer.encoder, chosen["layers"][i]["encoder"]) for i, layer in enumerate(hqa.layers))


def test_one_run_is_the_single_stack_of_the_cell_seed_and_the_same_hqa_stage(tmp_path, monkeypatch):
    data, ctx = toy(), make_ctx(tmp_path)
    single = fitted("hqa", {**PARAMS, "hae_runs": 1}, data, ctx)
    assert ctx.cache.computations("hae-stack") == 1 and single.history["hae_runs"] == {"seeds": [0], "chosen": 0}
    stack = fitted("hae", PARAMS, data, ctx).get_state()  # the hae plugin's stack of the same cell seed
    assert ctx.cache.computations("hae-stack") == 1
    # best of 3 where run 0 (the cell's seed) wins: the very same HQA as one run
    fake = iter([[-9.0, -9.0], [0.0, 0.0], [0.0, 0.0]])
    monkeypatch.setattr(hae, "reconstruction_nmse_db", lambda *args, **kwargs: next(fake))
    of_three = fitted("hqa", {**PARAMS, "hae_runs": 3}, data, ctx)
    for i, (a, b) in enumerate(zip(single.layers, of_three.layers)):
        assert same_weights(a.encoder, stack["layers"][i]["encoder"])
        assert same_weights(a, b.state_dict())  # codebooks too


def test_hae_runs_must_be_a_positive_integer():
    with pytest.raises(AmrbenchError, match="hae_runs"):
        default_registry().create("compressor", "hqa", {"hae_runs": 0})
