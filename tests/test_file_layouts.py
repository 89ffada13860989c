"""Your own files without conversion: the layouts the `file` loader detects, rml2018's
own class list, the per-window ``norm`` of every loader, and exact split sizes."""
import argparse
import pickle

import h5py
import numpy as np
import pytest
import torch

from amrbench.api import AmrbenchError, SignalSet
from amrbench.data import commands, windows
from amrbench.data.splits import stratified_split
from amrbench.suite import dataset_config, expand, load_suite
from amrbench_plugins.datasets import generic_file, rml2016_pickle, rml2018_hdf5, sig2019_file

N, L, C = 12, 32, 3


def reference():
    """x (N, 2, L) float32, labels, SNRs and class names the layouts below all encode."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((N, 2, L)) * 5).astype(np.float32)
    return x, np.arange(N) % C, np.repeat([0.0, 10.0], N // 2).astype(np.float32), ["A", "B", "C"]


def load_file(path, **params):
    plugin = generic_file.GenericFile(path=str(path), **params)
    return plugin.load(seed=0), plugin.notes


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_common_layouts_load_as_the_native_one_and_are_said(tmp_path, suffix):
    x, y, snr, classes = reference()
    layouts = {
        "channel-last": ({"x": x.transpose(0, 2, 1), "y": y, "snr": snr}, "x: channel-last"),
        "complex": ({"x": x[:, 0] + 1j * x[:, 1], "y": y, "snr": snr}, "x: complex (N, L)"),
        "one-hot": ({"x": x, "y": np.eye(C, dtype=np.uint8)[y], "snr": snr}, "y: one-hot (N, C)"),
        "column": ({"x": x, "y": y.reshape(-1, 1), "snr": snr}, "y: (N, 1) column"),
        "snr-column": ({"x": x, "y": y, "snr": snr.reshape(-1, 1)}, "snr: (N, 1) column"),
    }
    for name, (arrays, said) in layouts.items():
        path = tmp_path / f"{name}{suffix}"
        write(path, {**arrays, "classes": np.array(classes)})
        data, notes = load_file(path)
        assert np.array_equal(data.x.numpy(), x), name
        assert data.y.tolist() == y.tolist() and data.snr.tolist() == snr.tolist() and data.classes == classes
        assert any(note.startswith(said) for note in notes), (name, notes)
    native = tmp_path / f"native{suffix}"
    write(native, {"x": x, "y": y, "snr": snr, "classes": np.array(classes)})
    assert load_file(native)[1] == []  # amrbench's own layout needs no word


def write(path, arrays):
    if path.suffix == ".npz":
        np.savez(path, **arrays)
        return
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f[key] = value.astype("S") if key == "classes" else value


def test_missing_snr_is_nan_and_object_classes_are_read_without_code(tmp_path):
    x, y, _, classes = reference()
    np.savez(tmp_path / "torchsig.npz", x=x.transpose(0, 2, 1), y=y, classes=np.array(classes, dtype=object))
    data, notes = load_file(tmp_path / "torchsig.npz")
    assert torch.isnan(data.snr).all() and data.classes == classes
    assert any("snr: absent" in n for n in notes) and any("classes: an object array" in n for n in notes)
    high = generic_file.GenericFile(path=str(tmp_path / "torchsig.npz")).load(seed=0, snr=(0, 30))
    assert len(high) == 0  # an unknown SNR is in no SNR range

    class Hostile:
        def __reduce__(self):
            return (print, ("ran",))

    np.savez(tmp_path / "hostile.npz", x=x, y=y, snr=np.zeros(N), classes=np.array([Hostile()], dtype=object))
    with pytest.raises(AmrbenchError, match="hostile.npz.*refusing pickle global builtins.print"):
        load_file(tmp_path / "hostile.npz")


def test_layouts_that_stay_refused(tmp_path):
    x, y, snr, classes = reference()
    cases = {
        "width3": ({"x": np.zeros((N, L, 3), np.float32), "y": y, "snr": snr}, r"x must be \(N, 2, L\)"),
        "softmax": ({"x": x, "y": np.full((N, C), 1 / C), "snr": snr}, "y row 0 is not one-hot"),
        "columns": ({"x": x, "y": np.eye(C + 1)[y], "snr": snr}, "one-hot y has 4 columns but the file names 3"),
        "snr-rows": ({"x": x, "y": y, "snr": snr[:5]}, r"snr must be numbers \(N,\) or \(N, 1\)"),
    }
    for name, (arrays, expected) in cases.items():
        np.savez(tmp_path / f"{name}.npz", **arrays, classes=np.array(classes))
        with pytest.raises(AmrbenchError, match=f"{name}.npz.*{expected}") as err:
            load_file(tmp_path / f"{name}.npz")
        assert "\n" not in str(err.value)


def test_datasets_info_says_what_it_converted(tmp_path, capsys):
    from amrbench.registry import default_registry

    x, y, _, classes = reference()
    np.savez(tmp_path / "mine.npz", x=x[:, 0] + 1j * x[:, 1], y=np.eye(C)[y], classes=np.array(classes))
    parser = argparse.ArgumentParser()
    commands.add_parser(parser.add_subparsers())
    args = parser.parse_args(["datasets", "info", "file", "--path", str(tmp_path / "mine.npz")])
    assert args.handler(args, default_registry()) == 0
    out = capsys.readouterr().out
    assert "read: x: complex (N, L)" in out and "read: y: one-hot" in out and "read: snr: absent" in out
    assert "every (class, SNR) group: 4" in out  # unknown SNRs (NaN) are counted as one group


# --------------------------------------------------------------------------- rml2018 class list
def write_rml2018_like(path, classes_where):
    rng = np.random.default_rng(3)
    labels = np.arange(16) % 8
    with h5py.File(path, "w") as f:
        f["X"] = rng.standard_normal((16, 64, 2)).astype(np.float32)
        f["Y"] = np.eye(8, dtype=np.int64)[labels]
        f["Z"] = np.full((16, 1), 10)
        names = [f"mod{i}" for i in range(8)]
        if classes_where == "dataset":
            f["classes"] = np.array(names, dtype="S")
        elif classes_where == "attribute":
            f.attrs["classes"] = names
    return labels, names


@pytest.mark.parametrize("where", ["dataset", "attribute"])
def test_rml2018_reads_the_class_count_from_the_files_own_list(tmp_path, where):
    labels, names = write_rml2018_like(tmp_path / "own.hdf5", where)
    plugin = rml2018_hdf5.RML2018(path=str(tmp_path / "own.hdf5"))
    data = plugin.load(seed=0)
    assert data.classes == names and data.y.tolist() == labels.tolist() and data.x.shape == (16, 2, 64)
    assert any("the file's own list of 8" in n for n in plugin.notes)
    picked = rml2018_hdf5.RML2018(path=str(tmp_path / "own.hdf5"), classes=["mod5", "mod1"]).load(seed=0)
    assert picked.classes == ["mod1", "mod5"] and len(picked) == 4


def test_rml2018_without_a_class_list_still_needs_24(tmp_path):
    write_rml2018_like(tmp_path / "plain.hdf5", None)
    with pytest.raises(AmrbenchError, match=r"plain.hdf5.*Y \(N, 24\)"):
        rml2018_hdf5.RML2018(path=str(tmp_path / "plain.hdf5")).load(seed=0)


# --------------------------------------------------------------------------- norm
def power(data):
    return data.x.double().square().sum(dim=1)  # |z|^2, (N, L)


def test_norm_of_every_file_loader(tmp_path):
    x, y, snr, classes = reference()
    np.savez(tmp_path / "g.npz", x=x, y=y, snr=snr, classes=np.array(classes))
    np.savez(tmp_path / "s.npz", X=x.transpose(0, 2, 1), Y=np.stack([y, snr], axis=1))
    with h5py.File(tmp_path / "r.hdf5", "w") as f:
        f["X"], f["Y"], f["Z"] = x.transpose(0, 2, 1), np.eye(24)[y], snr.reshape(-1, 1)
    with open(tmp_path / "p.pkl", "wb") as f:
        pickle.dump({(c, 0): x[y == i] for i, c in enumerate(classes)}, f, protocol=2)
    loaders_ = [(generic_file.GenericFile, "g.npz"), (sig2019_file.Sig2019, "s.npz"),
                (rml2018_hdf5.RML2018, "r.hdf5"), (rml2016_pickle.RML2016a, "p.pkl")]
    for cls, name in loaders_:
        plain = cls(path=str(tmp_path / name)).load(seed=0)
        assert float(power(plain).mean()) > 10, cls.name  # the file's scale (25 per sample)
        rms = cls(path=str(tmp_path / name), norm="rms").load(seed=0)
        assert torch.allclose(power(rms).mean(dim=1), torch.ones(N, dtype=torch.float64), atol=1e-5), cls.name
        peak = cls(path=str(tmp_path / name), norm="max").load(seed=0)
        assert torch.allclose(power(peak).amax(dim=1), torch.ones(N, dtype=torch.float64), atol=1e-5), cls.name
        l1 = cls(path=str(tmp_path / name), norm="l1").load(seed=0)
        assert torch.allclose(power(l1).sqrt().sum(dim=1), torch.ones(N, dtype=torch.float64), atol=1e-5)
        assert torch.allclose(rms.x / rms.x.norm(dim=(1, 2), keepdim=True),
                              plain.x / plain.x.norm(dim=(1, 2), keepdim=True), atol=1e-6)  # a scale per window
    with pytest.raises(AmrbenchError, match="norm='unit' is not allowed"):
        generic_file.GenericFile(path="x.npz", norm="unit")


def test_norm_none_leaves_the_parameters_and_cell_keys_as_they_were(tmp_path, write_suite):
    x, y, snr, classes = reference()
    np.savez(tmp_path / "g.npz", x=x, y=y, snr=snr, classes=np.array(classes))
    for cls in (generic_file.GenericFile, sig2019_file.Sig2019, rml2018_hdf5.RML2018, rml2016_pickle.RML2016a):
        plain = cls(path="f")
        assert "norm" not in plain.params and cls(path="f", norm="none").params == plain.params
        assert cls(path="f", norm="rms").params == {**plain.params, "norm": "rms"}
    suite = """
    name: mine
    protocol: select
    datasets: [{{name: file, params: {{path: "{path}"{norm}}}}}]
    methods: [uniform]
    rates: [0.5]
    models: [cnn1d]
    """
    keys = {norm: expand(load_suite(write_suite(suite.format(path=tmp_path / "g.npz", norm=norm))))[0]
            for norm in ("", ", norm: none", ", norm: rms")}
    assert set(keys[""]["config"]["dataset"]["params"]) == {"path", "allow_nonfinite"}  # the parameters before norm
    assert keys[""]["key"] == keys[", norm: none"]["key"] != keys[", norm: rms"]["key"]


def test_an_all_zero_window_stays_zero():
    data = SignalSet(torch.zeros(2, 2, 8), torch.zeros(2), torch.zeros(2), ["A"])
    for norm in windows.NORMS:
        assert torch.equal(windows.normalise_windows(data, norm).x, data.x)


# --------------------------------------------------------------------------- exact splits
def grouped(per_group=8, snrs=26, classes=3):
    y = np.repeat(np.arange(classes), per_group * snrs)
    snr = np.tile(np.repeat(np.arange(snrs, dtype=np.float32) * 2, per_group), classes)
    return SignalSet(torch.zeros(len(y), 2, 4), torch.from_numpy(y), torch.from_numpy(snr), ["A", "B", "C"][:classes])


def test_exact_split_sizes_per_class_over_snr_groups():
    data = grouped()  # groups of 8: rounding each group gives 2 of 8 = 25 %
    _, rounded = stratified_split(data, 0.2, seed=1)
    assert rounded.class_counts().tolist() == [52, 52, 52]
    train, test = stratified_split(data, 0.2, seed=1, exact=True)
    assert test.class_counts().tolist() == [42, 42, 42]  # round(208 x 0.2)
    assert len(train) + len(test) == len(data)
    per_group = np.unique(np.stack([test.y.numpy(), test.snr.numpy()]), axis=1, return_counts=True)[1]
    assert set(per_group.tolist()) <= {1, 2}  # spread over the SNR groups, floor or floor + 1 each
    again = stratified_split(data, 0.2, seed=1, exact=True)[1]
    other = stratified_split(data, 0.2, seed=2, exact=True)[1]
    assert torch.equal(again.snr, test.snr) and not torch.equal(other.snr, test.snr)


def test_exact_split_equals_the_rounded_one_when_groups_divide_evenly():
    data = grouped(per_group=10, snrs=4)
    data.x[:, 0, 0] = torch.arange(len(data), dtype=torch.float32)
    for seed in (0, 5):
        old, new = stratified_split(data, 0.2, seed), stratified_split(data, 0.2, seed, exact=True)
        assert torch.equal(old[1].x, new[1].x) and torch.equal(old[0].x, new[0].x)


def test_exact_split_needs_no_pooling_for_single_signal_groups():
    y = np.repeat(np.arange(2), 50)
    snr = np.random.default_rng(0).uniform(-10, 20, 100).astype(np.float32)  # measured: every SNR its own group
    data = SignalSet(torch.zeros(100, 2, 4), torch.from_numpy(y), torch.from_numpy(snr), ["A", "B"])
    assert stratified_split(data, 0.2, seed=0, exact=True)[1].class_counts().tolist() == [10, 10]


def test_split_exact_enters_the_cell_key_only_when_set(write_suite):
    base = """
    name: s
    protocol: select
    datasets: [{{name: toy, params: {{per_class_per_snr: 8}}{split}}}]
    methods: [uniform]
    rates: [0.5]
    models: [cnn1d]
    """
    cells = {split: expand(load_suite(write_suite(base.format(split=split))))[0]
             for split in ("", ", split: per_group", ", split: exact")}
    assert "split" not in cells[""]["config"]["dataset"]
    assert cells[""]["key"] == cells[", split: per_group"]["key"] != cells[", split: exact"]["key"]
    assert cells[", split: exact"]["config"]["dataset"]["split"] == "exact"
    assert dataset_config({"name": "toy", "split": None}) == dataset_config({"name": "toy"})
    with pytest.raises(AmrbenchError, match="split.*must be per_group .* or exact"):
        load_suite(write_suite(base.format(split=", split: exactly")))
