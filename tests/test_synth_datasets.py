"""The synthetic dataset plugins (rml2016a-synth, sig2019-synth, rml2018-synth): shapes, SNR
grid, seeding, parameter checks, window normalisation and the on-disk cache."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from amrbench.api import AmrbenchError
from amrbench.data import store
from amrbench_plugins.datasets import synth_rml2016a, synth_rml2018, synth_sig2019
from tests.dataset_helpers import TINY


@pytest.fixture
def cache_dir():
    """The dataset cache root the conftest points AMRBENCH_CACHE to for every test."""
    return Path(os.environ["AMRBENCH_CACHE"])


def complex_rows(data) -> np.ndarray:
    x = data.x.numpy()
    return x[:, 0] + 1j * x[:, 1]


# --------------------------------------------------------------------------- generators
@pytest.mark.parametrize("cls, length, classes", [
    (synth_rml2016a.SynthRML2016a, 128, 11), (synth_sig2019.SynthSig2019, 512, 12),
    (synth_rml2018.SynthRML2018, 1024, 24)])
def test_generator_shapes_and_counts(cls, length, classes):
    data = cls(per_class_per_snr=2, snr_range=[0, 10, 10]).generate(seed=0)
    assert data.x.shape == (classes * 2 * 2, 2, length) and data.x.dtype == torch.float32
    assert data.y.dtype == torch.int64 and data.snr.dtype == torch.float32
    assert data.classes == list(cls.classes) and len(set(data.classes)) == classes
    counts = np.zeros((classes, 2), dtype=int)
    np.add.at(counts, (data.y.numpy(), (data.snr.numpy() == 10).astype(int)), 1)
    assert (counts == 2).all()
    assert torch.isfinite(data.x).all()


def test_rml2016a_classes_and_default_grid():
    ds = synth_rml2016a.SynthRML2016a()
    assert ds.classes == ["8PSK", "AM-DSB", "AM-SSB", "BPSK", "CPFSK", "GFSK", "PAM4", "QAM16", "QAM64",
                          "QPSK", "WBFM"]
    assert ds.snr_values() == [float(v) for v in range(-20, 20, 2)]
    assert ds.params["per_class_per_snr"] == 1000 and ds.params["length"] == 128
    assert synth_rml2018.SynthRML2018().snr_values() == [float(v) for v in range(-20, 32, 2)]


def test_generator_is_deterministic_per_seed():
    ds = synth_rml2016a.SynthRML2016a(**TINY)
    a, b, c = ds.generate(seed=7), ds.generate(seed=7), ds.generate(seed=8)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.snr, b.snr)
    assert not torch.equal(a.x, c.x)


def test_snr_filter_only_skips_groups():
    ds = synth_rml2016a.SynthRML2016a(per_class_per_snr=3, snr_range=[-20, 18, 2])
    high = ds.load(seed=1, snr=(10, 18))
    assert sorted(set(high.snr.tolist())) == [10.0, 12.0, 14.0, 16.0, 18.0]
    assert len(high) == 11 * 5 * 3
    full = ds.generate(seed=1)
    keep = torch.nonzero(full.snr >= 10).flatten()
    assert torch.equal(full.x[keep], high.x) and torch.equal(full.y[keep], high.y)
    with pytest.raises(AmrbenchError, match="no SNR"):
        ds.load(seed=1, snr=(19, 30))


def test_unknown_and_invalid_parameters_are_rejected():
    with pytest.raises(AmrbenchError, match="unknown parameter 'lenght'"):
        synth_rml2016a.SynthRML2016a(lenght=64)
    with pytest.raises(AmrbenchError, match="'mode'"):
        synth_rml2016a.SynthRML2016a(mode="exact")
    with pytest.raises(AmrbenchError, match="'per_class_per_snr'"):
        synth_rml2016a.SynthRML2016a(per_class_per_snr=0)
    with pytest.raises(AmrbenchError, match="'snr_range'"):
        synth_sig2019.SynthSig2019(snr_range=[10, 0, 2])
    with pytest.raises(AmrbenchError, match="'channel_model' must be one of independent, stream"):
        synth_rml2016a.SynthRML2016a(channel_model="rayleigh")
    with pytest.raises(AmrbenchError, match="'stream_length' must be an integer >= 272"):
        synth_rml2016a.SynthRML2016a(stream_length=200)


def test_window_normalisation():
    faithful = synth_rml2016a.SynthRML2016a(**TINY).generate(0)
    assert np.allclose(np.abs(complex_rows(faithful)).sum(1), 1.0, atol=1e-4)
    clean = synth_rml2016a.SynthRML2016a(mode="clean", **TINY).generate(0)
    assert np.allclose((np.abs(complex_rows(clean)) ** 2).mean(1), 1.0, atol=1e-4)
    energy = synth_sig2019.SynthSig2019(norm="energy", **TINY).generate(0)
    assert np.allclose((np.abs(complex_rows(energy)) ** 2).sum(1), 1.0, atol=1e-4)


def test_faithful_am_ssb_is_pure_noise_and_clean_is_not():
    faithful = synth_rml2016a.SynthRML2016a(mode="faithful").waveforms()["AM-SSB"]
    clean = synth_rml2016a.SynthRML2016a(mode="clean").waveforms()["AM-SSB"]
    rng = np.random.default_rng(0)
    assert not np.any(faithful(rng, 4, 64, 8))
    assert np.mean(np.abs(clean(rng, 64, 64, 8)) ** 2) > 0


# --------------------------------------------------------------------------- cache
def test_cache_second_load_reads_the_file(monkeypatch, cache_dir):
    ds = synth_rml2016a.SynthRML2016a(**TINY)
    first = ds.load(seed=0)
    path = ds.cache_path(0)
    assert path.exists() and path.parent == cache_dir / "datasets"
    monkeypatch.setattr(type(ds), "generate", lambda *a, **k: pytest.fail("regenerated instead of reading"))
    second = ds.load(seed=0)
    assert torch.equal(first.x, second.x) and second.classes == first.classes
    assert not list(path.parent.glob("*.tmp"))


def test_corrupt_cache_file_is_regenerated():
    ds = synth_rml2016a.SynthRML2016a(**TINY)
    first = ds.load(seed=0)
    path = ds.cache_path(0)
    path.write_bytes(path.read_bytes()[:500])
    again = ds.load(seed=0)
    assert torch.equal(first.x, again.x)
    assert torch.equal(store.read_signalset(path).x, first.x)


def test_cache_key_depends_on_params_seed_and_snr():
    ds = synth_rml2016a.SynthRML2016a(**TINY)
    paths = {ds.cache_path(0), ds.cache_path(1), ds.cache_path(0, (0, 4)),
             synth_rml2016a.SynthRML2016a(mode="clean", **TINY).cache_path(0)}
    assert len(paths) == 4
    assert ds.cache_path(0, (0, 4)) == ds.cache_path(0, (-1, 5))  # same kept SNRs, same file


def test_cache_key_follows_the_generator_source(monkeypatch):
    """A set cached by older generator code is not reused after the code changes."""
    dataset = synth_rml2016a.SynthRML2016a(per_class_per_snr=2)
    before = dataset.cache_path(0)
    monkeypatch.setattr("amrbench_plugins.datasets.synth.dataset.source_fingerprint", lambda cls: "edited-code")
    assert dataset.cache_path(0) != before
