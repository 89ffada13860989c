"""Compressors (HAE, HQA, scalar, decimate, VQ-VAE), their bits accounting, the
torchsig6-synth generator and the compress protocol end to end (tiny sizes)."""
import math

import pytest
import torch

from amrbench.api import Context, derive_seed
from amrbench.cli import main
from amrbench.registry import default_registry
from amrbench.store import ArtifactCache, RecordStore
from amrbench_plugins.compress import accounting as compress

TINY_STACK = {"layers": 5, "enc_hidden": 4, "dec_hidden": 4, "resnet_blocks": 0, "epochs": 0}


def make_ctx(tmp_path, seed=0):
    return Context(seed=seed, device=torch.device("cpu"), cell={}, cache=ArtifactCache(tmp_path / "artifacts"),
                   registry=default_registry())


def toy(n=6, length=64, seed=0):
    data = default_registry().create("dataset", "toy", {"per_class_per_snr": n, "length": length, "snr_values": [10]})
    return data.load(seed)


def fitted(name, params, data, ctx):
    cls = default_registry().get("compressor", name)
    compressor = cls(**{k: v for k, v in params.items() if k in cls.defaults})
    torch.manual_seed(0)
    compressor.fit(ctx, data)
    return compressor


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("length", [128, 1024])
def test_shapes_and_code_ranges_per_level(tmp_path, length):
    data = toy(n=2, length=length)
    ctx = make_ctx(tmp_path)
    x = data.x[:3]
    hae = fitted("hae", TINY_STACK, data, ctx)
    hqa = fitted("hqa", {**TINY_STACK, "hqa_epochs": 0, "codebook_size": 64}, data, ctx)
    assert hae.levels() == hqa.levels() == [0, 1, 2, 3, 4]
    for level in range(5):
        latent = length // 2 ** (level + 1)
        z = hae.encode(x, level)
        assert z.shape == (3, 64, latent) and z.is_floating_point()
        assert hae.decode(z, level).shape == x.shape
        code = hqa.encode(x, level)
        assert code.shape == (3, latent) and code.dtype == torch.int64
        assert int(code.min()) >= 0 and int(code.max()) < 64
        assert hqa.decode(code, level).shape == x.shape
    vq = fitted("vqvae", {"downsample": [4, 16], "codebook_size": 32, "hidden": 4, "latent_dim": 8, "epochs": 0,
                          "resnet_blocks": 0}, data, ctx)
    for f in (4, 16):
        code = vq.encode(x, f)
        assert code.shape == (3, length // f) and 0 <= int(code.min()) and int(code.max()) < 32
        assert vq.decode(code, f).shape == x.shape
    scalar = fitted("scalar", {"bits": [1, 3, 8]}, data, ctx)
    for b in (1, 3, 8):
        code = scalar.encode(x, b)
        assert 0 <= int(code["index"].min()) and int(code["index"].max()) < 2 ** b
        assert scalar.decode(code, b).shape == x.shape
    decimate = fitted("decimate", {"factors": [3, 8], "interpolation": "fft"}, data, ctx)
    for k in (3, 8):
        code = decimate.encode(x, k)
        assert code["samples"].shape == (3, 2, math.ceil(length / k))
        xhat = decimate.decode(code, k)
        assert xhat.shape == x.shape
        assert torch.allclose(xhat[..., ::k], x[..., ::k], atol=1e-4)  # kept samples come back


def test_length_not_divisible_is_a_clear_error(tmp_path):
    from amrbench.api import AmrbenchError

    with pytest.raises(AmrbenchError, match="divisible by 2\\^layers"):
        fitted("hae", {**TINY_STACK, "layers": 5}, toy(n=1, length=48), make_ctx(tmp_path))


# --------------------------------------------------------------------------- bits
def test_bits_accounting_matches_hand_computed_values():
    reg = default_registry()
    assert [compress.index_bits(k) for k in (1, 2, 3, 64, 65, 128, 256)] == [0, 1, 2, 6, 7, 7, 8]
    hqa64 = reg.create("compressor", "hqa", {"codebook_size": 64})
    assert hqa64.bits(0, 1024) == 512 * 6 == 3072
    assert hqa64.bits(4, 1024) == 32 * 6
    rate = compress.rate_summary(hqa64.bits(0, 1024), 1024)
    assert rate["bits_per_sample"] == 3.0
    assert rate["cr_float32"] == pytest.approx(65536 / 3072)
    assert rate["cr_eq7"] == pytest.approx(2 * 1024 * 2.05 / 3072) and round(rate["cr_eq7"], 2) == 1.37  # paper xi
    assert [round(compress.ratio_eq7(hqa64.bits(i, 1024), 1024), 2) for i in range(5)] == \
        [1.37, 2.73, 5.47, 10.93, 21.87]
    hqa128 = reg.create("compressor", "hqa", {"codebook_size": 128})
    assert round(compress.ratio_eq7(hqa128.bits(0, 1024), 1024), 2) == 1.17  # the paper's 1.17 .. 18.74
    assert round(compress.ratio_eq7(hqa128.bits(4, 1024), 1024), 2) == 18.74
    hqa256 = reg.create("compressor", "hqa", {"codebook_size": 256})
    assert compress.ratio_float32(hqa256.bits(0, 1024), 1024) == 16.0  # 4 bits per complex sample
    assert reg.create("compressor", "hae", {}).bits(0, 1024) == 64 * 512 * 32
    assert compress.ratio_float32(64 * 512 * 32, 1024) == 0.0625
    assert reg.create("compressor", "scalar", {}).bits(4, 128) == 2 * 128 * 4
    assert reg.create("compressor", "scalar", {"range": "per_signal"}).bits(4, 128) == 2 * 128 * 4 + 32
    assert reg.create("compressor", "decimate", {}).bits(8, 128) == 2 * 16 * 32
    assert reg.create("compressor", "decimate", {"factors": [3]}).bits(3, 128) == 2 * 43 * 32
    assert reg.create("compressor", "vqvae", {"downsample": [16]}).bits(16, 1024) == 64 * 8

    u = compress.usage([3, 1, 0, 0], symbols_per_signal=10, length=40)
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert (u["used"], u["unused"], u["alphabet"], u["index_bits"]) == (2, 2, 4, 2)
    assert u["entropy_bits"] == pytest.approx(h) and u["perplexity"] == pytest.approx(2 ** h)
    assert u["entropy_bits_per_signal"] == pytest.approx(10 * h)
    assert u["entropy_bits_per_sample"] == pytest.approx(10 * h / 40)
    x = torch.ones(2, 2, 8)
    assert compress.nmse_db(x, torch.zeros_like(x)) == pytest.approx(0.0)
    assert compress.nmse_db(x, 0.9 * x) == pytest.approx(-20.0)


# --------------------------------------------------------------------------- HQA training
def _params_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_hqa_really_freezes_the_transferred_encoder_and_decoder(tmp_path):
    data = toy(n=8, length=32)
    ctx = make_ctx(tmp_path)
    params = {"layers": 2, "enc_hidden": 4, "dec_hidden": 4, "resnet_blocks": 0, "epochs": 1, "batch_size": 16,
              "codebook_size": 8, "hqa_epochs": 1, "hqa_lr": 0.01, "reset_every": 0, "hae_runs": 1}
    hae = fitted("hae", params, data, ctx)
    stack = hae.get_state()["layers"]
    hqa = fitted("hqa", params, data, ctx)
    assert ctx.cache.computations("hae-stack") == 1  # the HQA reused the HAE's stack
    for i, layer in enumerate(hqa.layers):
        assert _params_equal(layer.encoder.state_dict(), stack[i]["encoder"])  # weights and BatchNorm buffers
        assert _params_equal(layer.decoder.state_dict(), stack[i]["decoder"])
        torch.manual_seed(derive_seed(0, "hqa", "init", i))
        initial = torch.randn(8, 64)
        assert not torch.allclose(layer.codebook.weight, initial)  # the codebook did learn
        assert hqa.history["layer_loss"][i]
    unfrozen = fitted("hqa", {**params, "freeze": False}, data, ctx)
    assert not _params_equal(unfrozen.layers[0].decoder.state_dict(), stack[0]["decoder"])  # the authors' code


def test_reset_moves_a_dead_code_next_to_the_busiest_one():
    from amrbench_plugins.compress.hqa import Codebook, UsageReset

    torch.manual_seed(0)
    book = Codebook(4, 2)
    with torch.no_grad():
        book.weight.copy_(torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0], [100.0, 100.0]]))
    centres = torch.tensor([[0.0, 0.0]] * 300 + [[3.0, 0.0]] * 50 + [[0.0, 3.0]] * 50)
    z = (centres + 0.3 * torch.randn(400, 2)).t().unsqueeze(0)  # (1, 2, 400): codes 0-2 used, code 3 dead
    before = book.select(z)
    assert int((before == 3).sum()) == 0
    reset = UsageReset(book, every=5, threshold=0.03)
    for step in range(5):
        reset.observe(book.select(z))
        reset(step)
    assert reset.resets == 1
    assert torch.dist(book.weight[3], book.weight[0]) < 0.1
    after = book.select(z)
    assert int((after == 3).sum()) > 0  # the dead code is used again


def test_codebook_init_class_means_draws_from_each_class():
    from amrbench_plugins.compress.hqa import Codebook, init_codebook

    torch.manual_seed(0)
    latents = torch.cat([torch.full((5, 3, 4), -10.0), torch.full((5, 3, 4), 10.0)]) + 0.01 * torch.randn(10, 3, 4)
    labels = torch.tensor([0] * 5 + [1] * 5)
    book = Codebook(6, 3)
    init_codebook(book, "class_means", latents, labels, 2)
    assert torch.allclose(book.weight[0::2], torch.full((3, 3), -10.0), atol=0.2)
    assert torch.allclose(book.weight[1::2], torch.full((3, 3), 10.0), atol=0.2)


def test_tiny_fit_reconstructs_better_than_the_zero_signal(tmp_path):
    data = toy(n=16, length=32)
    ctx = make_ctx(tmp_path)
    params = {"layers": 1, "enc_hidden": 8, "dec_hidden": 8, "resnet_blocks": 0, "epochs": 25, "batch_size": 16,
              "lr": 0.005, "cos_lambda": 0.1, "codebook_size": 16, "hqa_epochs": 8, "hqa_lr": 0.01, "hae_runs": 1}
    zero = compress.mse(data.x, torch.zeros_like(data.x))
    hae = fitted("hae", params, data, ctx)
    assert compress.mse(data.x, hae.decode(hae.encode(data.x, 0), 0)) < 0.5 * zero
    hqa = fitted("hqa", params, data, ctx)
    assert compress.mse(data.x, hqa.decode(hqa.encode(data.x, 0), 0)) < zero
    scalar = fitted("scalar", {"bits": [4]}, data, ctx)
    assert compress.nmse_db(data.x, scalar.decode(scalar.encode(data.x, 4), 4)) < -15


# --------------------------------------------------------------------------- dataset
def test_torchsig6_synth_is_seeded_linf_normalised_and_has_the_paper_classes():
    plugin = default_registry().create("dataset", "torchsig6-synth", {"per_class_per_snr": 3, "length": 256})
    a, b = plugin.load(seed=1), plugin.load(seed=1)
    assert a.classes == ["4ask", "8pam", "16psk", "32qam_cross", "2fsk", "ofdm-256"]
    assert a.x.shape == (18, 2, 256) and torch.equal(a.x, b.x)
    magnitude = a.x.pow(2).sum(1).sqrt()
    assert torch.allclose(magnitude.amax(1), torch.ones(18), atol=1e-5)  # L-inf normalised
    assert not torch.equal(a.x, plugin.load(seed=2).x)
    assert set(a.snr.tolist()) == {100.0}


# --------------------------------------------------------------------------- protocol
SUITE = """
name: compress-tiny
protocol: compress
datasets:
  - name: toy
    params: {per_class_per_snr: 24, length: 64}
methods:
  - {name: hqa, params: {layers: 3, enc_hidden: 4, dec_hidden: 4, resnet_blocks: 0, codebook_size: 16}, label: HQA}
  - {name: scalar, params: {bits: [2, 8]}, label: Scalar}
  - {name: decimate, params: {factors: [4]}, label: Decimate}
models: [cnn1d]
seeds: [0]
train: {epochs: 1, batch_size: 64}
settings:
  fit: {epochs: 1, hqa_epochs: 1, batch_size: 64, hae_runs: 2}
table: {rows: method, columns: dataset, metric: accuracy_L0}
"""


def test_compress_suite_runs_end_to_end_and_plots(write_suite, tmp_path, capsys):
    suite = write_suite(SUITE)
    out = tmp_path / "out"
    assert main(["run", str(suite), "--results", str(out)]) == 0
    records = RecordStore(out / "records.jsonl").read()
    assert len(records) == 3 and all(r["status"] == "ok" for r in records)
    by_method = {r["labels"]["method"]: r["metrics"] for r in records}
    hqa = by_method["HQA"]
    assert [lv["label"] for lv in hqa["levels"]] == ["L0", "L1", "L2"]
    assert hqa["bps_L0"] == 32 * 4 / 64 and hqa["cr_L0"] == 64 * 64 / (32 * 4)
    assert 0 <= hqa["accuracy_L2"] <= 1 and 0 <= hqa["clean_accuracy"] <= 1
    assert hqa["levels"][0]["codebook"]["alphabet"] == 16 and sum(hqa["levels"][0]["codebook"]["counts"]) == 32 * hqa["n_test"]
    assert hqa["levels"][0]["per_snr"] and len(hqa["levels"][0]["confusion"]) == 4
    runs = hqa["fit_history"]["hae_runs"]  # the HQA of the best of 2 HAE runs (settings.fit)
    assert len(runs["seeds"]) == len(runs["score"]) == 2 and runs["chosen"] == runs["score"].index(min(runs["score"]))
    assert by_method["Scalar"]["nmse_db_8b"] < by_method["Scalar"]["nmse_db_2b"] < 0
    assert by_method["Decimate"]["bps_k4"] == 16.0
    assert "| HQA" in (out / "table.md").read_text()

    import argparse

    from amrbench_plugins.compress.plots import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["compress-plot", str(out), "--out", str(tmp_path / "figures")])
    assert args.handler(args, default_registry()) == 0
    files = list((tmp_path / "figures").glob("*.png"))
    names = {f.name for f in files}
    assert {"accuracy_vs_bits.png", "nmse_vs_bits.png", "spectrograms_HQA_toy.png", "constellations_Scalar_toy.png",
            "usage_HQA_toy.png"} <= names
    assert all(f.stat().st_size > 0 for f in files)


def test_plots_from_records_pair_reset_on_and_off(tmp_path):
    from amrbench_plugins.compress.plots import plot_codebook_usage, plot_rate_curves, reset_pair

    def record(label, reset_every, counts):
        levels = [{"label": f"L{i}", "bits_per_sample": 3.0 / 2 ** i, "accuracy": 0.9 - 0.1 * i, "nmse_db": -5.0 + i,
                   "codebook": compress.usage(counts)} for i in range(2)]
        return {"status": "ok", "labels": {"dataset": "toy", "method": label, "seed": 0},
                "config": {"method": {"name": "hqa", "params": {"codebook_size": 4, "reset_every": reset_every}}},
                "metrics": {"levels": levels, "clean_accuracy": 0.95}}

    records = [record("with", 25, [5, 5, 5, 5]), record("without", 0, [20, 0, 0, 0])]
    on, off = reset_pair(records)
    assert on["labels"]["method"] == "with" and off["labels"]["method"] == "without"
    files = plot_rate_curves(records, tmp_path) + plot_codebook_usage(records, tmp_path)
    assert {f.name for f in files} == {"accuracy_vs_bits.png", "nmse_vs_bits.png", "usage_with_toy.png",
                                       "usage_without_toy.png", "usage_reset_comparison.png"}


def test_reconstruction_figures_draw_a_sampling_hqa_as_the_cell_seeded_it(write_suite, tmp_path):
    """`compress-plot` reconstructions of a stochastic HQA are seeded from the cell,
    whatever ran before in the process: the same figure every time."""
    import numpy as np

    from amrbench_plugins.compress.plots import reconstruct_examples

    suite = SUITE.replace("codebook_size: 16}", "codebook_size: 16, code_selection: sample}")
    suite = suite.replace("""  - {name: scalar, params: {bits: [2, 8]}, label: Scalar}
  - {name: decimate, params: {factors: [4]}, label: Decimate}
""", "").replace("hae_runs: 2", "hae_runs: 1")
    out = tmp_path / "out"
    assert main(["run", str(write_suite(suite)), "--results", str(out)]) == 0
    (record,) = RecordStore(out / "records.jsonl").read()
    torch.manual_seed(1)
    _, first, _ = reconstruct_examples(record)
    torch.manual_seed(2)
    _, again, _ = reconstruct_examples(record)
    assert first.keys() == again.keys() == {"L0", "L1", "L2"}
    assert all(np.array_equal(first[k], again[k]) for k in first)
