"""Dataset plugins: synthetic generators, cache, real-format loaders, CLI helpers."""
from __future__ import annotations

import argparse
import os
import pickle

import h5py
import numpy as np
import pytest
import torch

from amrbench.api import AmrbenchError, SignalSet
from amrbench.data import commands, loaders, store, synth
from amrbench.registry import Registry
from amrbench_plugins.datasets import (generic_file, rml2016_pickle, rml2018_hdf5, sig2019_file,
                                       synth_rml2016a, synth_rml2018, synth_sig2019)

MODULES = (synth_rml2016a, synth_sig2019, synth_rml2018, rml2016_pickle, rml2018_hdf5, sig2019_file, generic_file)
TINY = {"per_class_per_snr": 3, "snr_range": [-4, 4, 4]}


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("AMRBENCH_CACHE", str(root))
    return root


@pytest.fixture
def registry():
    reg = Registry()
    for module in MODULES:
        reg.register_module(module)
    return reg


def complex_rows(data) -> np.ndarray:
    x = data.x.numpy()
    return x[:, 0] + 1j * x[:, 1]


# --------------------------------------------------------------------------- generators
def test_all_dataset_plugins_register(registry):
    assert registry.names("dataset") == sorted(
        ["rml2016a-synth", "sig2019-synth", "rml2018-synth", "rml2016a", "rml2016b", "rml2018", "sig2019", "file"])
    for name in registry.names("dataset"):
        assert registry.get("dataset", name).description()


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


def estimated_snr_db(waveform, snr_db, channel, seed=3, count=400, length=256):
    """Es/N0 measured from the same windows with and without their noise."""
    noisy = synth.render_group(waveform, count, length, snr_db, synth.group_streams(seed, "t", "c", snr_db), channel)
    clean = synth.render_group(waveform, count, length, snr_db, synth.group_streams(seed, "t", "c", snr_db), channel,
                               noise=False)
    noise = noisy - clean
    return 10 * np.log10(np.mean(np.abs(clean) ** 2) * channel.sps / np.mean(np.abs(noise) ** 2))


@pytest.mark.parametrize("waveform", [synth.linear(synth.qam(16)), synth.cpm(2, 0.5), synth.fm(silence=0.0)])
def test_snr_label_controls_noise(waveform):
    channel = synth.Channel()
    labels = [-10.0, 0.0, 10.0, 18.0]
    measured = [estimated_snr_db(waveform, s, channel) for s in labels]
    assert np.all(np.diff(measured) > 0)
    assert np.allclose(measured, labels, atol=1.0), measured


def test_sample_snr_reference_drops_the_sps_factor():
    wave = synth.linear(synth.psk(4))
    symbol = estimated_snr_db(wave, 6.0, synth.Channel(snr_reference="symbol"))
    sample = estimated_snr_db(wave, 6.0, synth.Channel(snr_reference="sample"))
    assert abs((sample - symbol) - 10 * np.log10(8)) < 0.5  # same label, 9 dB less noise


def test_constellations_have_unit_power_and_size():
    for points, m in [(synth.qam(32), 32), (synth.qam(128), 128), (synth.qam(64), 64), (synth.apsk((4, 12)), 16),
                      (synth.psk(8), 8), (synth.pam(4), 4), (synth.ask(2), 2)]:
        assert len(np.unique(np.round(points, 9))) == m
        assert np.isclose(np.mean(np.abs(points) ** 2), 1.0)


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


# --------------------------------------------------------------------------- RML2016 pickles
def rml_table(classes=("QPSK", "8PSK", "WBFM"), snrs=(-2, 0, 2), n=4, length=128):
    rng = np.random.default_rng(0)
    return {(c, s): rng.standard_normal((n, 2, length)).astype(np.float32) for c in classes for s in snrs}


def python2_pickle(table, protocol) -> bytes:
    """A pickle as Python 2's cPickle writes it: byte-string keys, numpy.core module."""
    data = pickle.dumps(table, protocol=protocol).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    for mod in {k[0] for k in table}:
        raw = mod.encode()
        if protocol == 0:
            data = data.replace(b"V" + raw + b"\n", b"S'" + raw + b"'\n")
        else:
            data = data.replace(b"X" + len(raw).to_bytes(4, "little") + raw, b"U" + bytes([len(raw)]) + raw)
    return data


@pytest.mark.parametrize("protocol", [0, 2])
def test_rml2016_pickle_loads_python2_style_file(tmp_path, protocol):
    table = rml_table()
    path = tmp_path / "RML2016.10a_dict.pkl"
    raw = python2_pickle(table, protocol)
    assert b"numpy.core.multiarray" in raw and (b"S'QPSK'" if protocol == 0 else b"U\x04QPSK") in raw
    path.write_bytes(raw)
    assert pickle.loads(path.read_bytes(), encoding="latin1").keys() == table.keys()
    data = rml2016_pickle.RML2016a(path=str(path)).load(seed=0)
    assert data.classes == ["8PSK", "QPSK", "WBFM"] and len(data) == 36
    first_qpsk = int(torch.nonzero((data.y == 1) & (data.snr == -2))[0])
    assert np.array_equal(data.x[first_qpsk].numpy(), table[("QPSK", -2)][0])
    high = rml2016_pickle.RML2016b(path=str(path)).load(seed=0, snr=(0, 2))
    assert sorted(set(high.snr.tolist())) == [0.0, 2.0] and len(high) == 24


def test_rml2016_pickle_subsample_per_key(tmp_path):
    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps(rml_table(n=10), protocol=2))
    data = rml2016_pickle.RML2016a(path=str(path), per_class_per_snr=3).load(seed=5)
    assert len(data) == 3 * 3 * 3


class Hostile:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("protocol", [0, 2])
def test_hostile_pickle_never_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    table = {("QPSK", 0): np.zeros((1, 2, 8), np.float32), ("BPSK", 0): Hostile(f"touch {marker}")}
    path.write_bytes(pickle.dumps(table, protocol=protocol))
    with pytest.raises(AmrbenchError) as err:
        rml2016_pickle.RML2016a(path=str(path)).load(seed=0)
    assert not marker.exists()
    message = str(err.value)
    assert "evil.pkl" in message and "system" in message and "refusing" in message and "\n" not in message


def test_hostile_codecs_encoding_is_refused(tmp_path):
    # _codecs.encode is admitted only for latin-1 (protocol-2 bytes)
    path = tmp_path / "codec.pkl"
    path.write_bytes(b"c_codecs\nencode\n(Vabc\nVrot13\ntR.")
    with pytest.raises(AmrbenchError, match="codec.pkl"):
        loaders.load_restricted_pickle(path)


@pytest.mark.parametrize("content, expected", [
    (None, "no such file"),
    (b"", "cannot read"),
    (b"not a pickle at all", "cannot read"),
    ("truncated", "cannot read"),
    (pickle.dumps([1, 2, 3], protocol=2), "expected a non-empty dict"),
    (pickle.dumps({("QPSK", 0): np.zeros((2, 3, 8), np.float32)}, protocol=2), r"\(N, 2, L\)"),
])
def test_bad_pickles_give_one_line_errors(tmp_path, content, expected):
    path = tmp_path / "bad.pkl"
    if content == "truncated":
        content = pickle.dumps(rml_table(), protocol=2)[:300]
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AmrbenchError, match=expected) as err:
        rml2016_pickle.RML2016a(path=str(path)).load(seed=0)
    assert "bad.pkl" in str(err.value) and "\n" not in str(err.value)


def test_missing_path_parameter():
    with pytest.raises(AmrbenchError, match="'path' is required"):
        rml2018_hdf5.RML2018().load(seed=0)


# --------------------------------------------------------------------------- RML2018 HDF5
def write_rml2018(path, per=2, snrs=(-20, 0, 30), length=1024):
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(24), len(snrs) * per)
    snr = np.tile(np.repeat(snrs, per), 24)
    order = rng.permutation(len(labels))  # never rely on the file order
    labels, snr = labels[order], snr[order]
    x = rng.standard_normal((len(labels), length, 2)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["X"] = x
        f["Y"] = np.eye(24, dtype=np.int64)[labels]
        f["Z"] = snr.reshape(-1, 1).astype(np.int64)
    return x, labels, snr


def test_rml2018_hdf5_full_and_filtered(tmp_path, monkeypatch):
    path = tmp_path / "GOLD_XYZ_OSC.0001_1024.hdf5"
    x, labels, snr = write_rml2018(path)
    monkeypatch.setattr(loaders, "BLOCK_BYTES", 5 * 1024 * 2 * 4)  # force many small blocks
    monkeypatch.setattr(loaders, "LABEL_CHUNK", 7)
    data = rml2018_hdf5.RML2018(path=str(path)).load(seed=0)
    assert data.classes == loaders.RML2018_CLASSES_FIXED and data.x.shape == (144, 2, 1024)
    assert np.array_equal(data.x.numpy(), x.transpose(0, 2, 1))
    assert np.array_equal(data.y.numpy(), labels) and np.array_equal(data.snr.numpy(), snr)
    sub = rml2018_hdf5.RML2018(path=str(path), classes=["QPSK", "BPSK"], per_class_per_snr=1).load(0, snr=(0, 30))
    assert sub.classes == ["BPSK", "QPSK"] and len(sub) == 2 * 2
    rows = [int(np.flatnonzero((labels == 3) & (snr == 0) & np.all(x == sub.x[i].numpy().T, axis=(1, 2)))[0])
            for i in range(len(sub)) if sub.y[i] == 0 and sub.snr[i] == 0]
    assert len(rows) == 1
    distributed = rml2018_hdf5.RML2018(path=str(path), class_order="distributed").load(0)
    assert distributed.classes == loaders.RML2018_CLASSES_DISTRIBUTED


def test_rml2018_reads_only_kept_rows(tmp_path, monkeypatch):
    import tracemalloc

    path = tmp_path / "big.hdf5"
    write_rml2018(path, per=20, snrs=(0, 10))  # 960 rows, 7.9 MB of X
    monkeypatch.setattr(loaders, "BLOCK_BYTES", 64 * 1024)
    tracemalloc.start()
    data = rml2018_hdf5.RML2018(path=str(path), per_class_per_snr=1).load(seed=0, snr=(10, 10))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(data) == 24 and data.x.nbytes == 24 * 2 * 1024 * 4
    assert peak < 1.5e6, peak  # kept rows + one block + labels, not the 7.9 MB of X


def test_rml2018_bad_files(tmp_path):
    wrong = tmp_path / "wrong.hdf5"
    with h5py.File(wrong, "w") as f:
        f["X"] = np.zeros((4, 1024, 2), np.float32)
        f["Y"] = np.zeros((4, 10))
        f["Z"] = np.zeros((4, 1))
    with pytest.raises(AmrbenchError, match=r"wrong.hdf5.*Y \(N, 24\)"):
        rml2018_hdf5.RML2018(path=str(wrong)).load(0)
    good = tmp_path / "good.hdf5"
    write_rml2018(good, per=1)
    truncated = tmp_path / "truncated.hdf5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(AmrbenchError, match="truncated.hdf5") as err:
        rml2018_hdf5.RML2018(path=str(truncated)).load(0)
    assert "\n" not in str(err.value)
    garbage = tmp_path / "garbage.hdf5"
    garbage.write_bytes(b"\x00" * 4096)
    with pytest.raises(AmrbenchError, match="garbage.hdf5.*cannot read"):
        rml2018_hdf5.RML2018(path=str(garbage)).load(0)
    with pytest.raises(AmrbenchError, match="unknown class 'QAM1024'"):
        rml2018_hdf5.RML2018(path=str(good), classes=["QAM1024"]).load(0)


# --------------------------------------------------------------------------- Sig2019 and generic
def sig2019_arrays(n=24, length=512):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, length, 2)).astype(np.float32)
    y = np.stack([np.arange(n) % 12, np.where(np.arange(n) < 12, 10, 20)], axis=1).astype(np.float32)
    return x, y


def test_sig2019_layouts(tmp_path):
    x, y = sig2019_arrays()
    np.savez(tmp_path / "sig.npz", X=x, Y=y)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", y)
    with h5py.File(tmp_path / "sig.h5", "w") as f:
        f["X"], f["Y"] = x, y
    for params in ({"path": str(tmp_path / "sig.npz")}, {"path": str(tmp_path / "sig.h5")},
                   {"path": str(tmp_path / "X.npy"), "labels": str(tmp_path / "Y.npy")}):
        data = sig2019_file.Sig2019(**params).load(seed=0, snr=(15, 30))
        assert data.x.shape == (12, 2, 512) and data.classes == loaders.SIG2019_CLASSES
        assert np.array_equal(data.x.numpy(), x[12:].transpose(0, 2, 1)) and set(data.snr.tolist()) == {20.0}
    with pytest.raises(AmrbenchError, match="labels"):
        sig2019_file.Sig2019(path=str(tmp_path / "X.npy")).load(0)
    np.savez(tmp_path / "bad.npz", X=x[:, :, :1], Y=y)
    with pytest.raises(AmrbenchError, match="bad.npz"):
        sig2019_file.Sig2019(path=str(tmp_path / "bad.npz")).load(0)


def test_generic_file_roundtrip_hdf5_and_npz(tmp_path):
    original = synth_rml2016a.SynthRML2016a(**TINY).generate(0)
    store.write_signalset(tmp_path / "set.h5", original)
    np.savez(tmp_path / "set.npz", x=original.x.numpy(), y=original.y.numpy(), snr=original.snr.numpy(),
             classes=np.array(original.classes))
    for name in ("set.h5", "set.npz"):
        data = generic_file.GenericFile(path=str(tmp_path / name)).load(seed=0)
        assert torch.equal(data.x, original.x) and torch.equal(data.y, original.y)
        assert data.classes == original.classes
        high = generic_file.GenericFile(path=str(tmp_path / name)).load(seed=0, snr=(0, 4))
        assert len(high) == 11 * 2 * 3 and float(high.snr.min()) == 0.0


def test_generic_file_with_classes_attribute_and_bad_shapes(tmp_path):
    with h5py.File(tmp_path / "attr.h5", "w") as f:
        f["x"] = np.zeros((3, 2, 16), np.float32)
        f["y"] = np.array([0, 1, 1])
        f["snr"] = np.array([0.0, np.nan, 5.0])
        f.attrs["classes"] = ["A", "B"]
    data = generic_file.GenericFile(path=str(tmp_path / "attr.h5")).load(seed=0)
    assert data.classes == ["A", "B"] and len(data) == 3
    np.savez(tmp_path / "mis.npz", x=np.zeros((3, 16, 3), np.float32), y=np.zeros(3, int), snr=np.zeros(3),
             classes=np.array(["A"]))
    with pytest.raises(AmrbenchError, match=r"mis.npz.*x \(N, 2, L\)"):
        generic_file.GenericFile(path=str(tmp_path / "mis.npz")).load(seed=0)
    np.savez(tmp_path / "nolabels.npz", x=np.zeros((3, 2, 16), np.float32))
    with pytest.raises(AmrbenchError, match="nolabels.npz.*missing array 'y'"):
        generic_file.GenericFile(path=str(tmp_path / "nolabels.npz")).load(seed=0)
    np.savez(tmp_path / "objects.npz", x=np.zeros((1, 2, 4), np.float32), y=np.zeros(1, int), snr=np.zeros(1),
             classes=np.array([object()], dtype=object))
    with pytest.raises(AmrbenchError, match="objects.npz"):
        generic_file.GenericFile(path=str(tmp_path / "objects.npz")).load(seed=0)


# --------------------------------------------------------------------------- CLI helpers
def run_cli(argv, registry):
    parser = argparse.ArgumentParser(prog="amrbench")
    commands.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args, registry)


def test_cli_list_info_make(registry, tmp_path, capsys):
    assert run_cli(["datasets", "list"], registry) == 0
    assert "rml2016a-synth" in capsys.readouterr().out
    tiny = ["--param", "per_class_per_snr=2", "--param", "snr_range=[0, 18, 6]"]
    assert run_cli(["datasets", "info", "rml2016a-synth", "--snr", "10", "18"] + tiny, registry) == 0
    out = capsys.readouterr().out
    assert "classes (11)" in out and "every (class, SNR) group: 2" in out and "(44, 2, 128)" in out
    assert "cache:" in out
    assert run_cli(["datasets", "make", "rml2016a-synth"] + tiny, registry) == 0
    assert "(present)" in capsys.readouterr().out


def test_cli_plot_writes_a_png(registry, tmp_path):
    two_classes = synth_rml2016a.SynthRML2016a(**TINY).generate(0)
    two_classes = two_classes.subset(torch.nonzero(two_classes.y < 2).flatten())
    two_classes.classes = two_classes.classes[:2]
    store.write_signalset(tmp_path / "two.h5", two_classes)
    png = tmp_path / "examples.png"
    assert run_cli(["datasets", "plot", "file", "--path", str(tmp_path / "two.h5"), "--out", str(png)], registry) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_info_of_a_loader_with_path(registry, tmp_path, capsys):
    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps(rml_table(), protocol=2))
    assert run_cli(["datasets", "info", "rml2016a", "--path", str(path)], registry) == 0
    assert "8PSK, QPSK, WBFM" in capsys.readouterr().out
    with pytest.raises(AmrbenchError, match="unknown dataset"):
        run_cli(["datasets", "info", "rml2016x"], registry)


@pytest.mark.parametrize("label", [-10.0, 6.0, 18.0])
def test_rml2016_snr_reference_gives_twice_the_label_per_sample(label):
    """The original generator's noise amplitude 10^(-SNR/10): per-sample SNR = 2 x label dB."""
    wave = synth.linear(synth.psk(4))
    es_n0 = estimated_snr_db(wave, label, synth.Channel(snr_reference="rml2016"))
    per_sample = es_n0 - 10 * np.log10(8)
    assert abs(per_sample - 2 * label) < 0.5, per_sample


def test_cache_key_follows_the_generator_source(monkeypatch):
    """A set cached by older generator code is not reused after the code changes."""
    dataset = synth_rml2016a.SynthRML2016a(per_class_per_snr=2)
    before = dataset.cache_path(0)
    monkeypatch.setattr(synth, "source_fingerprint", lambda cls: "edited-code")
    assert dataset.cache_path(0) != before


# --------------------------------------------------------------------------- stream channel
def carrier_frequencies(channel: synth.Channel, rows: int = 300, seed: int = 5) -> np.ndarray:
    """Per-window frequency (cycles/sample) of a noiseless, unfaded unit carrier."""
    carrier = lambda rng, count, length, sps: np.ones((count, length), dtype=np.complex128)  # noqa: E731
    run = synth.stream_run(seed, "t", channel)
    rx = synth.render_group(carrier, rows, 128, 10.0, synth.group_streams(seed, "t", "c", 10.0), channel,
                            noise=False, run=run)
    return np.angle(np.sum(rx[:, 1:] * np.conj(rx[:, :-1]), axis=1)) / (2 * np.pi)


def test_stream_channel_gives_a_few_hertz_of_cfo_independent_gives_hundreds():
    """At 200 kHz: the random walk (0.01 Hz/sample over 50,000 samples) stays within a few
    Hz; the independent model spreads the CFO uniformly over +-500 Hz."""
    stream = carrier_frequencies(synth.Channel(model="stream", fading=False)) * 200e3
    independent = carrier_frequencies(synth.Channel(model="independent", fading=False)) * 200e3
    assert np.max(np.abs(stream)) < 20
    assert np.std(independent) > 200 and np.max(np.abs(independent)) <= 500 + 1


def test_stream_walks_are_clipped_and_the_fader_has_unit_power():
    channel = synth.Channel(model="stream", cfo_max=1e-7, sro_max=2e-7, doppler=1e-3)
    run = synth.stream_run(0, "t", channel)
    assert np.max(np.abs(run.cfo)) <= 1e-7 and np.max(np.abs(run.sro)) <= 2e-7
    assert np.sum(np.abs(run.cfo) == 1e-7) > 0  # the walk (std ~1.1e-5) does hit the clip
    gains = run.path_gains(np.arange(0, 2e6, 100.0))  # 2,000 Doppler periods
    assert np.allclose(np.mean(np.abs(gains) ** 2, axis=0), 1.0, atol=0.15)


def test_stream_channel_drifts_slowly_along_the_run():
    """Windows read close together on the run see nearly the same multipath (1 Hz Doppler
    at 200 kHz), far apart ones a different one."""
    run = synth.stream_run(0, "t", synth.Channel(model="stream"))
    near = run.path_gains(np.array([1000.0, 1128.0]))
    far = run.path_gains(np.array([1000.0, 49000.0]))
    assert np.max(np.abs(near[0] - near[1])) < 0.01
    assert np.max(np.abs(far[0] - far[1])) > 0.1


def test_stream_model_needs_its_run_and_depends_on_the_seed():
    channel = synth.Channel(model="stream")
    with pytest.raises(ValueError, match="StreamRun"):
        synth.render_group(synth.linear(synth.psk(4)), 4, 64, 0.0, synth.group_streams(0, "t", "c", 0.0), channel)
    assert not np.array_equal(synth.stream_run(0, "t", channel).cfo, synth.stream_run(1, "t", channel).cfo)
    assert np.array_equal(synth.stream_run(0, "t", channel).cfo, synth.stream_run(0, "t", channel).cfo)


def test_standardize_uses_the_training_split_statistics_per_channel():
    from amrbench.data.splits import standardize_channels

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, 16, generator=gen) * torch.tensor([0.005, 3.0]).view(1, 2, 1) + torch.tensor([1e-3, -2.0]).view(1, 2, 1)
    train = SignalSet(x[:30], torch.arange(30) % 3, torch.zeros(30), ["a", "b", "c"], "t", torch.rand(30, generator=gen))
    test = SignalSet(x[30:], torch.arange(10) % 3, torch.zeros(10), ["a", "b", "c"], "t")
    std_train, std_test = standardize_channels(train, test)
    assert torch.allclose(std_train.x.mean((0, 2)), torch.zeros(2), atol=1e-6)
    assert torch.allclose(std_train.x.std((0, 2)), torch.ones(2), atol=1e-5)
    # the test split goes through the same affine map, fitted on train only
    mean, std = x[:30].double().mean((0, 2)), x[:30].double().std((0, 2))
    expected = ((x[30:].double() - mean.view(1, 2, 1)) / std.view(1, 2, 1)).float()
    assert torch.allclose(std_test.x, expected, atol=1e-6)
    assert torch.equal(std_train.y, train.y) and torch.equal(std_train.weights, train.weights)
    # a constant channel is centred, never divided by zero
    flat = SignalSet(torch.ones(4, 2, 8), torch.zeros(4), torch.zeros(4), ["a"], "flat")
    assert torch.equal(standardize_channels(flat, flat)[0].x, torch.zeros(4, 2, 8))


def test_load_splits_standardize_keeps_the_split_and_rescales():
    from amrbench.registry import default_registry
    from amrbench.resources import load_splits

    spec = {"name": "rml2016a-synth", "params": {"per_class_per_snr": 4, "length": 32, "snr_range": [10, 18, 8]},
            "snr": [10, 18], "test_fraction": 0.25, "seed": 0}
    raw_train, raw_test = load_splits(default_registry(), spec)
    train, test = load_splits(default_registry(), {**spec, "standardize": True})
    assert raw_train.x.abs().mean() < 0.05  # the faithful L1 scale
    assert torch.equal(train.y, raw_train.y) and torch.equal(test.snr, raw_test.snr)
    assert torch.allclose(train.x.std((0, 2)), torch.ones(2), atol=1e-4)
    scale = raw_train.x.double().std((0, 2)).view(1, 2, 1)
    shift = raw_train.x.double().mean((0, 2)).view(1, 2, 1)
    assert torch.allclose(test.x.double(), (raw_test.x.double() - shift) / scale, atol=1e-5)
