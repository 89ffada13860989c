"""The real-format dataset loaders: RML2016 pickles (restricted unpickler), RML2018 HDF5
(chunked reads), Sig2019 files and the generic file plugin."""
from __future__ import annotations

import os
import pickle

import h5py
import numpy as np
import pytest
import torch

from amrbench.api import AmrbenchError
from amrbench.data import loaders, store
from amrbench_plugins.datasets import generic_file, rml2016_pickle, rml2018_hdf5, sig2019_file, synth_rml2016a
from tests.dataset_helpers import TINY, rml_table


# --------------------------------------------------------------------------- RML2016 pickles
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
