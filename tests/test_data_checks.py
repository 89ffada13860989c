"""Data checks at load: bad contents, bogus declared sizes, content fingerprints in cell
keys, splits of measured (continuous) SNRs, and the preflight that refuses unusable
splits before training. Every hostile file is built small in tmp_path."""
from __future__ import annotations

import io
import logging
import os
import pickle
import struct
import tracemalloc
import zipfile

import h5py
import numpy as np
import pytest
import torch

from amrbench import cli, resources, runner
from amrbench.api import AmrbenchError, SignalSet
from amrbench.data import checks, fingerprint, loaders
from amrbench.data.splits import random_rank_in_groups, snr_strata, split_problem, stratified_split
from amrbench.registry import default_registry
from amrbench.store import RecordStore
from amrbench.suite import dataset_config, expand, load_suite
from amrbench_plugins.datasets import generic_file, rml2016_pickle, rml2018_hdf5, sig2019_file

CLASSES = ["A", "B", "C", "D"]


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- builders
def signals(n=24, length=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2, length)).astype(np.float32)
    y = np.arange(n) % len(CLASSES)
    snr = np.where(np.arange(n) < n // 2, 0.0, 10.0)
    return x, y, snr


def write_generic(path, x, y, snr, classes=CLASSES):
    if str(path).endswith(".npz"):
        np.savez(path, x=x, y=y, snr=snr, classes=np.array(classes))
    else:
        with h5py.File(path, "w") as f:
            f["x"], f["y"], f["snr"] = x, y, snr
            f.attrs["classes"] = classes
    return path


def load_file(path, **params):
    return generic_file.GenericFile(path=str(path), **params).load(seed=0)


def write_rml2018(path, n=48, length=32, x=None, y=None):
    rng = np.random.default_rng(1)
    labels = np.arange(n) % 24
    with h5py.File(path, "w") as f:
        f["X"] = rng.standard_normal((n, length, 2)).astype(np.float32) if x is None else x
        f["Y"] = np.eye(24, dtype=np.int64)[labels] if y is None else y
        f["Z"] = np.zeros((n, 1), np.int64)
    return path


def rml_pickle(path, table, protocol=2):
    path.write_bytes(pickle.dumps(table, protocol=protocol))
    return path


def rml_table(n=4, length=8):
    rng = np.random.default_rng(3)
    return {(mod, snr): rng.standard_normal((n, 2, length)).astype(np.float32)
            for mod in ("BPSK", "QPSK") for snr in (0, 10)}


# --------------------------------------------------------------------------- 1. contents
@pytest.mark.parametrize("suffix", [".h5", ".npz"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_generic_file_refuses_nonfinite_samples_unless_allowed(tmp_path, suffix, bad):
    x, y, snr = signals()
    x[13, 1, 5] = bad
    path = write_generic(tmp_path / f"mine{suffix}", x, y, snr)
    with pytest.raises(AmrbenchError, match=r"mine.*signal row 13 .*non-finite.*allow_nonfinite") as err:
        load_file(path)
    one_line(err)
    data = load_file(path, allow_nonfinite=True)
    assert not torch.isfinite(data.x[13]).all() and torch.isfinite(data.x[12]).all()


def test_float64_beyond_float32_range_is_an_inf(tmp_path, monkeypatch):
    x, y, snr = signals()
    x = x.astype(np.float64)
    x[20, 0, 0] = 1e300
    monkeypatch.setattr(loaders, "BLOCK_BYTES", 4 * 2 * 16 * 8)  # several blocks: the row number is the file's
    with pytest.raises(AmrbenchError, match="signal row 20 "):
        load_file(write_generic(tmp_path / "wide.h5", x, y, snr))


@pytest.mark.parametrize("labels, message", [
    (lambda y: y + 0.5, r"label y in row 0 is 0.5, not an integer"),
    (lambda y: np.where(np.arange(len(y)) == 7, np.nan, y), r"row 7 is nan, not an integer"),
    (lambda y: np.where(np.arange(len(y)) == 9, 4, y), r"row 9 is 4, outside 0..3"),
    (lambda y: np.where(np.arange(len(y)) == 2, -1, y), r"row 2 is -1, outside 0..3"),
])
def test_generic_file_refuses_bad_labels(tmp_path, labels, message):
    x, y, snr = signals()
    path = write_generic(tmp_path / "labels.h5", x, labels(y.astype(np.float64)), snr)
    with pytest.raises(AmrbenchError, match=message) as err:
        load_file(path)
    assert "labels.h5" in one_line(err)


def test_whole_float_labels_are_accepted(tmp_path):
    x, y, snr = signals()
    data = load_file(write_generic(tmp_path / "f.npz", x, y.astype(np.float32), snr))
    assert torch.equal(data.y, torch.as_tensor(y))


def test_sig2019_refuses_fractional_labels_and_nonfinite_samples(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 64, 2)).astype(np.float32)
    y = np.stack([np.arange(24) % 12, np.full(24, 10)], axis=1).astype(np.float32)
    y[5, 0] = 1.5  # was truncated to 1 silently
    np.savez(tmp_path / "sig.npz", X=x, Y=y)
    with pytest.raises(AmrbenchError, match=r"sig.npz.*row 5 is 1.5, not an integer"):
        sig2019_file.Sig2019(path=str(tmp_path / "sig.npz")).load(0)
    y[5, 0] = 5
    x[11, 3, 1] = np.nan
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", y)
    params = {"path": str(tmp_path / "X.npy"), "labels": str(tmp_path / "Y.npy")}
    with pytest.raises(AmrbenchError, match=r"X.npy: signal row 11 .*non-finite"):
        sig2019_file.Sig2019(**params).load(0)
    assert len(sig2019_file.Sig2019(**params, allow_nonfinite=True).load(0)) == 24


@pytest.mark.parametrize("row", ["zeros", "nan", "two", "soft"])
def test_rml2018_refuses_rows_that_are_not_one_hot(tmp_path, row, monkeypatch):
    y = np.eye(24)[np.arange(48) % 24]
    y[37] = {"zeros": np.zeros(24), "nan": np.full(24, np.nan), "two": np.eye(24)[0] + np.eye(24)[5],
             "soft": np.full(24, 1 / 24)}[row]
    monkeypatch.setattr(loaders, "LABEL_CHUNK", 10)  # the row number counts across chunks
    path = write_rml2018(tmp_path / "onehot.hdf5", y=y)
    with pytest.raises(AmrbenchError, match=r"onehot.hdf5: Y row 37 is not one-hot") as err:
        rml2018_hdf5.RML2018(path=str(path)).load(0)
    one_line(err)


def test_rml2018_refuses_nonfinite_samples_unless_allowed(tmp_path):
    x = np.random.default_rng(0).standard_normal((48, 32, 2)).astype(np.float32)
    x[30, 4, 0] = np.inf
    path = write_rml2018(tmp_path / "inf.hdf5", x=x)
    with pytest.raises(AmrbenchError, match="inf.hdf5: signal row 30 "):
        rml2018_hdf5.RML2018(path=str(path)).load(0)
    assert len(rml2018_hdf5.RML2018(path=str(path), allow_nonfinite=True).load(0)) == 48


def test_rml2016_pickle_refuses_nonfinite_samples_and_caches_by_the_flag(tmp_path):
    table = rml_table()
    table[("QPSK", 10)][2, 0, 3] = np.nan
    path = rml_pickle(tmp_path / "nan.pkl", table)
    with pytest.raises(AmrbenchError, match=r"nan.pkl: key \('QPSK', 10\): row 2 .*allow_nonfinite") as err:
        rml2016_pickle.RML2016a(path=str(path)).load(0)
    one_line(err)
    allowed = rml2016_pickle.RML2016a(path=str(path), allow_nonfinite=True)
    assert torch.isnan(allowed.load(0).x).sum() == 1
    assert torch.isnan(allowed.load(0).x).sum() == 1  # from the cache, read with the flag
    with pytest.raises(AmrbenchError, match="row 2"):  # the flag's cache entry is not reused without it
        rml2016_pickle.RML2016a(path=str(path)).load(0)


@pytest.mark.parametrize("cls", [generic_file.GenericFile, rml2018_hdf5.RML2018, sig2019_file.Sig2019,
                                 rml2016_pickle.RML2016a, rml2016_pickle.RML2016b])
def test_allow_nonfinite_is_a_boolean_parameter_of_every_loader(cls):
    assert cls(path="x").params["allow_nonfinite"] is False and "allow_nonfinite" in cls.__doc__
    with pytest.raises(AmrbenchError, match="'allow_nonfinite' must be true or false"):
        cls(path="x", allow_nonfinite="yes")


# --------------------------------------------------------------------------- 2. declared sizes
def bogus_hdf5(path, names_shapes, **options):
    with h5py.File(path, "w") as f:
        for name, shape, dtype in names_shapes:
            f.create_dataset(name, shape=shape, dtype=dtype, **options)
        f.attrs["classes"] = CLASSES
    return path


def quick(call):
    """The error comes from the declared sizes, before any data is read: the call's
    peak of traced memory (numpy's buffers included) stays small, whatever the load."""
    tracemalloc.start()
    try:
        with pytest.raises(AmrbenchError) as err:
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64e6
    return one_line(err)


@pytest.mark.parametrize("rows", [10 ** 9, 10 ** 12])
def test_file_and_sig2019_refuse_declared_rows_the_file_lacks(tmp_path, rows):
    generic = bogus_hdf5(tmp_path / "huge.h5", [("x", (rows, 2, 128), "f4"), ("y", (rows,), "i8"),
                                                ("snr", (rows,), "f4")])
    assert generic.stat().st_size < 1e5
    assert "huge.h5: dataset '/x' declares shape" in quick(lambda: load_file(generic))
    sig = bogus_hdf5(tmp_path / "huge_sig.h5", [("X", (rows, 512, 2), "f4"), ("Y", (rows, 2), "f4")])
    assert "huge_sig.h5: dataset '/X'" in quick(lambda: sig2019_file.Sig2019(path=str(sig)).load(0))


def test_rml2018_with_a_trillion_declared_rows_fails_fast(tmp_path):
    n = 10 ** 12
    path = bogus_hdf5(tmp_path / "tera.hdf5", [("X", (n, 1024, 2), "f4"), ("Y", (n, 24), "i8"), ("Z", (n, 1), "i8")])
    assert "tera.hdf5" in quick(lambda: rml2018_hdf5.RML2018(path=str(path)).load(0))


def test_compressed_dataset_with_unwritten_chunks_is_refused(tmp_path):
    path = bogus_hdf5(tmp_path / "holes.h5", [("x", (10 ** 12, 2, 128), "f4"), ("y", (10 ** 12,), "i8"),
                                              ("snr", (10 ** 12,), "f4")], chunks=True, compression="gzip")
    assert "chunks hold data" in quick(lambda: load_file(path))


def test_compressed_data_beyond_the_file_size_is_bound_by_the_memory_budget(tmp_path, monkeypatch):
    x = np.zeros((4000, 2, 256), np.float32)  # 8 MB of zeros compress to a few kB
    y = np.arange(4000) % 4
    with h5py.File(tmp_path / "zeros.h5", "w") as f:
        f.create_dataset("x", data=x, chunks=(500, 2, 256), compression="gzip")
        f["y"], f["snr"] = y, np.zeros(4000)
        f.attrs["classes"] = CLASSES
    assert (tmp_path / "zeros.h5").stat().st_size < x.nbytes / 10
    assert len(load_file(tmp_path / "zeros.h5")) == 4000
    monkeypatch.setenv("AMRBENCH_MAX_BYTES", "1e6")
    message = quick(lambda: load_file(tmp_path / "zeros.h5"))
    assert "memory budget" in message and "AMRBENCH_MAX_BYTES" in message
    monkeypatch.setenv("AMRBENCH_MAX_BYTES", "lots")
    assert "AMRBENCH_MAX_BYTES" in quick(lambda: load_file(tmp_path / "zeros.h5"))


def npy_bytes(shape, dtype="<f4", data=b"\0" * 64) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False, "shape": shape})
    return out.getvalue() + data


def test_npz_and_npy_headers_declaring_more_than_they_hold_are_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "claim.npz", "w") as z:
        z.writestr("x.npy", npy_bytes((10 ** 12, 2, 128)))
        for name, array in (("y", np.zeros(2, int)), ("snr", np.zeros(2)), ("classes", np.array(CLASSES))):
            buffer = io.BytesIO()
            np.save(buffer, array)
            z.writestr(f"{name}.npy", buffer.getvalue())
    assert "claim.npz: array 'x' declares shape" in quick(lambda: load_file(tmp_path / "claim.npz"))
    x = np.zeros((2, 64, 2), np.float32)
    np.save(tmp_path / "X.npy", x)
    (tmp_path / "Y.npy").write_bytes(npy_bytes((10 ** 12, 2)))
    sig = sig2019_file.Sig2019(path=str(tmp_path / "X.npy"), labels=str(tmp_path / "Y.npy"))
    assert "Y.npy: declares shape" in quick(lambda: sig.load(0))


class Claim:
    """Pickles as a call of an allowed array constructor with a huge shape."""

    def __init__(self, function, args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize("claim", [
    Claim(np._core.multiarray._reconstruct, (np.ndarray, (10 ** 12,), b"b")),
    Claim(np.ndarray, ((2 ** 38, 2, 128), "f4")),
])
def test_pickled_array_claiming_a_terabyte_is_refused(tmp_path, claim):
    path = rml_pickle(tmp_path / "tb.pkl", {("QPSK", 0): claim})
    assert "tb.pkl" in quick(lambda: rml2016_pickle.RML2016a(path=str(path)).load(0))


def test_binbytes8_of_2_to_the_60_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "b8.pkl"
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2 ** 60) + b"abc.")
    assert "declares 1152921504606846976 bytes" in quick(lambda: loaders.load_restricted_pickle(path))
    assert cli.main(["datasets", "info", "rml2016a", "--path", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("amrbench: error: ") and err.count("\n") == 1 and "b8.pkl" in err


def test_frame_beyond_the_file_is_refused(tmp_path):
    path = tmp_path / "frame.pkl"
    path.write_bytes(b"\x80\x04\x95" + struct.pack("<Q", 2 ** 50) + b"N.")
    assert "frame.pkl" in quick(lambda: loaders.load_restricted_pickle(path))


# --------------------------------------------------------------------------- 3. fingerprints
FILE_SUITE = """
name: fp
protocol: select
datasets:
  - name: file
    params: {{path: {path}}}
{extra}methods: [uniform]
rates: [0.5]
models: [cnn1d]
seeds: [0, 1]
train: {{epochs: 1, batch_size: 16}}
"""


def file_suite(tmp_path, data_path, extra=""):
    suite = tmp_path / "fp.yaml"
    suite.write_text(FILE_SUITE.format(path=data_path, extra=extra))
    return suite


def keys(suite_path) -> list:
    return [c["key"] for c in expand(load_suite(suite_path))]


def test_cell_keys_follow_the_file_contents_not_its_path(tmp_path):
    x, y, snr = signals()
    mine = write_generic(tmp_path / "mine.npz", x, y, snr)
    suite = file_suite(tmp_path, mine)
    first = keys(suite)
    os.utime(mine, ns=(1, 1))
    write_generic(mine, x, y, snr)  # rewritten, same contents
    assert keys(suite) == first
    x[0, 0, 0] += 1
    write_generic(mine, x, y, snr)
    assert set(keys(suite)).isdisjoint(first)
    config = expand(load_suite(suite))[0]["config"]["dataset"]
    assert set(config["fingerprint"]) == {"path"} and "sha256" in config["fingerprint"]["path"]


def test_synthetic_sets_have_no_fingerprint_in_their_keys(write_suite):
    config = expand(load_suite(write_suite()))[0]["config"]["dataset"]
    assert set(config) == {"name", "params", "snr", "test_fraction", "seed"}


def test_missing_data_file_is_named_at_suite_load(tmp_path):
    with pytest.raises(AmrbenchError, match=r"fp.yaml:\d+: .*gone.npz: no such file"):
        load_suite(file_suite(tmp_path, tmp_path / "gone.npz"))


def test_large_files_get_a_sampled_digest(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint, "FULL_HASH_BYTES", 1000)
    monkeypatch.setattr(fingerprint, "SAMPLE_BLOCK_BYTES", 64)
    path = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(0).bytes(64 * 100))
    path.write_bytes(bytes(data))
    os.utime(path, ns=(5, 5))
    first = fingerprint.file_fingerprint(path)
    assert first["size"] == len(data) and first["mtime_ns"] == 5 and "sampled_sha256" in first
    sampled = fingerprint.sample_offsets(len(data))[7] + 3
    data[sampled] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(5, 5))  # same size and mtime: only the sampled block tells
    fingerprint._fingerprint.cache_clear()  # the memo also keys by ctime, whose resolution is coarse
    assert fingerprint.file_fingerprint(path)["sampled_sha256"] != first["sampled_sha256"]


def test_dry_run_says_why_cells_of_a_changed_file_run_anew(tmp_path, capsys):
    x, y, snr = signals()
    mine = write_generic(tmp_path / "mine.npz", x, y, snr)
    suite = file_suite(tmp_path, mine)
    results = tmp_path / "results"
    store = RecordStore(results / "records.jsonl")
    results.mkdir()
    for cell in expand(load_suite(suite)):
        store.append({"key": cell["key"], "suite": "fp", "status": "ok", "config": cell["config"], "metrics": {}})
    assert cli.main(["run", str(suite), "--dry-run", "--results", str(results)]) == 0
    assert "note" not in capsys.readouterr().err
    x[1, 1, 1] = 7.0
    write_generic(mine, x, y, snr)
    assert cli.main(["run", str(suite), "--dry-run", "--results", str(results)]) == 0
    err = capsys.readouterr().err
    assert err.count("amrbench: note:") == 1 and "2 stored cell(s)" in err and str(mine) in err
    assert "fingerprint differs" in err


def test_a_cell_refuses_a_file_that_changed_after_expansion(tmp_path):
    x, y, snr = signals()
    mine = write_generic(tmp_path / "mine.npz", x, y, snr)
    config = expand(load_suite(file_suite(tmp_path, mine)))[0]["config"]
    write_generic(mine, x + 1, y, snr)
    with pytest.raises(AmrbenchError, match="changed after the suite was loaded"):
        resources.load_splits(default_registry(), config["dataset"])


def test_rml2016_cache_follows_the_contents_even_with_size_and_mtime_kept(tmp_path):
    table = rml_table()
    path = rml_pickle(tmp_path / "a.pkl", table)
    os.utime(path, ns=(9, 9))
    first = rml2016_pickle.RML2016a(path=str(path)).load(0)
    table[("BPSK", 0)][0, 0, 0] = 42.0
    rml_pickle(path, table)
    os.utime(path, ns=(9, 9))
    again = rml2016_pickle.RML2016a(path=str(path)).load(0)
    assert float(again.x[0, 0, 0]) == 42.0 != float(first.x[0, 0, 0])


# --------------------------------------------------------------------------- 4. splits
def continuous_set(n=1024, classes=4, seed=0) -> SignalSet:
    rng = np.random.default_rng(seed)
    return SignalSet(rng.standard_normal((n, 2, 8)).astype(np.float32), np.arange(n) % classes,
                     rng.uniform(-10, 20, n).astype(np.float32), CLASSES[:classes], name="measured")


def test_continuous_snrs_fall_back_to_class_stratification_with_one_warning(caplog):
    data = continuous_set()
    with caplog.at_level(logging.WARNING, logger="amrbench.data"):
        train, test = stratified_split(data, 0.2, seed=3)
        stratified_split(data, 0.2, seed=3)
    assert len(test) == 4 * 51 and len(train) + len(test) == 1024  # rint(256 * 0.2) per class
    assert (test.class_counts() == 51).all()
    warnings = [r for r in caplog.records if "too small to split" in r.getMessage()]
    assert len(warnings) == 1 and "snr_bins" in warnings[0].getMessage()


def old_rule_is_test(y, snr, test_fraction, seed):
    """The class x SNR rule every committed record was split by."""
    groups, rank = random_rank_in_groups(y, np.nan_to_num(snr, nan=-9999.0), np.random.default_rng(seed))
    return rank < np.rint(np.bincount(groups) * test_fraction).astype(np.int64)[groups]


def test_splittable_groups_split_exactly_as_before():
    rng = np.random.default_rng(1)
    y = np.concatenate([np.repeat(np.arange(4), 30), np.arange(4).repeat(3)])
    snr = np.concatenate([np.tile([0.0, 10.0, np.nan], 40), rng.uniform(0, 1, 12)]).astype(np.float32)
    data = SignalSet(rng.standard_normal((len(y), 2, 4)), y, snr, CLASSES)
    train, test = stratified_split(data, 0.2, seed=7)
    before = old_rule_is_test(y, snr, 0.2, 7)
    is_test = np.isin(np.arange(len(y)), [int(np.flatnonzero((data.x == row).all(dim=(1, 2)))[0]) for row in test.x])
    assert np.array_equal(is_test[:120], before[:120])  # the splittable groups: untouched
    assert is_test[120:].sum() > 0 == before[120:].sum()  # the singletons: no longer all train


def test_snr_bins_group_measured_snrs_for_stratification_only():
    snr = np.array([-0.5, 0.2, 1.9, 2.0, 3.9, np.nan], dtype=np.float32)
    assert np.array_equal(snr_strata(snr, 2.0), [-1, 0, 0, 1, 1, -9999])
    assert np.array_equal(snr_strata(snr, [0.0, 2.0]), [0, 1, 1, 2, 2, -9999])
    data = continuous_set()
    train, test = stratified_split(data, 0.2, seed=0, snr_bins=10.0)
    assert torch.equal(torch.sort(torch.cat([train.snr, test.snr])).values, torch.sort(data.snr).values)


def test_snr_bins_enter_the_key_only_when_set(tmp_path, write_suite):
    plain = write_suite()
    binned = write_suite(open(plain).read().replace("snr_values: [10, 18], length: 64}",
                                                    "snr_values: [10, 18], length: 64}\n    snr_bins: 4"),
                         name="binned.yaml")
    assert "snr_bins" not in dataset_config(load_suite(plain).datasets[0])
    assert dataset_config(load_suite(binned).datasets[0])["snr_bins"] == 4.0
    assert set(keys(plain)).isdisjoint(keys(binned))
    bad = write_suite(open(binned).read().replace("snr_bins: 4", "snr_bins: [3, 1]"), name="bad.yaml")
    with pytest.raises(AmrbenchError, match=r"bad.yaml:\d+: datasets.0.snr_bins: must be a non-empty list"):
        load_suite(bad)


def measured_file(tmp_path, n=1024, rare_class=False):
    data = continuous_set(n)
    y = data.y.numpy().copy()
    if rare_class:
        y[y == 3] = 0
        y[5] = 3  # one signal of class D: it cannot be in both splits
    return write_generic(tmp_path / "measured.npz", data.x.numpy(), y, data.snr.numpy())


def test_preflight_refuses_a_class_absent_from_the_test_split(tmp_path):
    suite = load_suite(file_suite(tmp_path, measured_file(tmp_path, rare_class=True)))
    with pytest.raises(AmrbenchError, match=r"fp.yaml: dataset 'file': the test split holds \d+ signals for 4 "
                                            r"classes \(none of class D\).*snr_bins.*test_fraction") as err:
        runner.preflight(suite)
    one_line(err)


def test_preflight_accepts_measured_snrs_thanks_to_the_fallback(tmp_path):
    runner.preflight(load_suite(file_suite(tmp_path, measured_file(tmp_path))))


def test_split_problem_names_an_empty_test_split():
    data = continuous_set(8)
    assert "holds 0 signals for 4 classes" in split_problem(data, data.subset([]))
    assert split_problem(data, data) is None


def test_snr_filter_that_empties_the_set_fails_before_any_cell(tmp_path, capsys):
    x, y, snr = signals()
    mine = write_generic(tmp_path / "mine.npz", x, y, snr)
    suite = file_suite(tmp_path, mine, extra="    snr: [30, 40]\n")
    results = tmp_path / "results"
    assert cli.main(["run", str(suite), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dataset 'file [30, 40] dB'" in err and "no signals left" in err
    assert not (results / "records.jsonl").exists() or not RecordStore(results / "records.jsonl").read()


# --------------------------------------------------------------------------- 5. datasets info
def test_datasets_info_on_an_empty_selection_is_one_line(tmp_path, capsys):
    x, y, snr = signals()
    mine = write_generic(tmp_path / "mine.h5", x, y, snr)
    assert cli.main(["datasets", "info", "file", "--path", str(mine), "--snr", "50", "60"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no signals with SNR in [50, 60] dB" in err


def test_memory_budget_reads_the_environment(monkeypatch):
    monkeypatch.setenv("AMRBENCH_MAX_BYTES", "8e9")
    assert checks.memory_budget() == 8_000_000_000
    monkeypatch.delenv("AMRBENCH_MAX_BYTES")
    assert checks.memory_budget() > 1 << 20
