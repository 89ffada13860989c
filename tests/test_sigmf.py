"""The `sigmf` dataset plugin, on tiny recordings written by the sigmf package itself."""
import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

from amrbench.api import AmrbenchError
from amrbench.cli import main
from amrbench_plugins.datasets.sigmf_recordings import SigMFRecordings

needs_sigmf = pytest.mark.skipif(importlib.util.find_spec("sigmf") is None,
                                 reason="the sigmf extra is not installed (pip install amrbench[sigmf])")
SNR_KEY = "amrbench:snr_db"
SCALE = 3000  # int16 counts of the ci16 recording per unit of the complex signal


def complex_noise(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)


def write_recording(folder, name, z, datatype, segments):
    """A SigMF recording written by the sigmf package: ``z`` stored as ``datatype``
    (cf32_le or ci16_le), one annotation per (start, count, label, snr) of ``segments``."""
    from sigmf import SigMFFile

    data = folder / f"{name}.sigmf-data"
    if datatype == "ci16_le":
        np.round(np.stack([z.real, z.imag], axis=1) * SCALE).astype("<i2").tofile(data)
    else:
        z.astype("<c8").tofile(data)
    extension = {"name": "amrbench", "version": "1.0.0", "optional": True}  # declares the SNR key's namespace
    meta = SigMFFile(data_file=str(data), global_info={"core:datatype": datatype, "core:sample_rate": 1e6,
                                                       "core:extensions": [extension]})
    meta.add_capture(0)
    for start, count, label, snr in segments:
        extra = {} if snr is None else {SNR_KEY: snr}
        meta.add_annotation(start, count, metadata={"core:label": label, **extra})
    meta.tofile(str(folder / f"{name}.sigmf-meta"))
    return folder / f"{name}.sigmf-meta"


@pytest.fixture
def captures(tmp_path):
    """Two recordings, two classes: a cf32 one (BPSK 0..1000 at 10 dB, QPSK 1000..2000 at
    4 dB) and a ci16 one (QPSK 0..600 at 10 dB)."""
    folder = tmp_path / "captures"
    folder.mkdir()
    a, b = complex_noise(2000, 1), complex_noise(600, 2)
    write_recording(folder, "a", a, "cf32_le", [(0, 1000, "BPSK", 10), (1000, 1000, "QPSK", 4)])
    write_recording(folder, "b", b, "ci16_le", [(0, 600, "QPSK", 10)])
    return folder, a, b


def windows_of(z, starts, window):
    return np.stack([np.stack([z[s:s + window].real, z[s:s + window].imag]) for s in starts])


@needs_sigmf
def test_two_classes_from_cf32_and_ci16_recordings(captures):
    folder, a, b = captures
    data = SigMFRecordings(path=str(folder), window=256, snr_key=SNR_KEY, norm="none").load(seed=0)
    assert data.classes == ["BPSK", "QPSK"] and data.x.shape == (3 + 3 + 2, 2, 256)
    assert data.y.tolist() == [0] * 3 + [1] * 3 + [1] * 2
    assert data.snr.tolist() == [10.0] * 3 + [4.0] * 3 + [10.0] * 2
    assert np.array_equal(data.x[:6].numpy(), windows_of(a, [0, 256, 512, 1000, 1256, 1512], 256))
    ci16 = windows_of(np.round(b.real * SCALE) + 1j * np.round(b.imag * SCALE), [0, 256], 256) / 32768
    assert np.allclose(data.x[6:].numpy(), ci16, atol=1e-7)  # fixed-point scaled to [-1, 1)


@needs_sigmf
def test_hop_snr_filter_and_class_choice(captures):
    folder, a, _ = captures
    meta = str(folder / "a.sigmf-meta")
    overlapping = SigMFRecordings(path=meta, window=256, hop=128, norm="none").load(seed=0)
    assert len(overlapping) == 2 * ((1000 - 256) // 128 + 1)
    assert np.array_equal(overlapping.x[1].numpy(), windows_of(a, [128], 256)[0])
    assert torch.isnan(overlapping.snr).all()  # no snr_key: unknown
    high = SigMFRecordings(path=str(folder), window=256, snr_key=SNR_KEY).load(seed=0, snr=(8, 12))
    assert high.classes == ["BPSK", "QPSK"] and high.y.tolist() == [0] * 3 + [1] * 2
    only = SigMFRecordings(path=str(folder / "*.sigmf-data"), window=256, classes=["QPSK", "BPSK"]).load(seed=0)
    assert only.classes == ["QPSK", "BPSK"] and only.y.tolist() == [1] * 3 + [0] * 5
    with pytest.raises(AmrbenchError, match="class 'FM' labels no segment"):
        SigMFRecordings(path=str(folder), window=256, classes=["FM"]).load(seed=0)


@needs_sigmf
def test_windows_get_unit_power_by_default(captures):
    folder, _, _ = captures
    data = SigMFRecordings(path=str(folder / "b"), window=256).load(seed=0)
    power = data.x.double().square().sum(dim=1).mean(dim=1)
    assert torch.allclose(power, torch.ones(2, dtype=torch.float64), atol=1e-5)


def bad_recording(folder, kind):
    """A recording broken in one way; returns (its metadata file, expected error text)."""
    meta = write_recording(folder, kind, complex_noise(512, 3), "cf32_le", [(0, 512, "BPSK", None)])
    content = json.loads(meta.read_text())
    if kind == "missing":
        (folder / "missing.sigmf-data").unlink()
        return meta, "missing data file missing.sigmf-data"
    if kind == "real":
        content["global"]["core:datatype"] = "rf32_le"
        expected = r"real-valued samples \(rf32_le\)"
    elif kind == "unknown":
        content["global"]["core:datatype"] = "ci12_le"
        expected = "unknown sample format 'ci12_le'"
    elif kind == "unannotated":
        content["annotations"] = []
        expected = "no annotations"
    elif kind == "unlabelled":
        content["annotations"][0].pop("core:label")
        expected = "none of its 1 annotations has the label key 'core:label'"
    else:  # short
        content["annotations"][0]["core:sample_count"] = 32
        expected = "segment of 32 samples is shorter than a window"
    meta.write_text(json.dumps(content))
    return meta, expected


@needs_sigmf
@pytest.mark.parametrize("kind", ["missing", "real", "unknown", "unannotated", "unlabelled", "short"])
def test_bad_recordings_are_one_line_naming_the_file(tmp_path, kind):
    meta, expected = bad_recording(tmp_path, kind)
    with pytest.raises(AmrbenchError, match=expected) as err:
        SigMFRecordings(path=str(meta), window=256).fingerprint()  # checked when a suite loads
    assert str(meta) in str(err.value) and "\n" not in str(err.value)


SUITE = """
name: captures
protocol: select
datasets: [{{name: sigmf, params: {{path: "{path}", window: 64, snr_key: {snr_key}}}}}]
methods: [uniform]
rates: [0.5]
models: [cnn1d]
train: {{epochs: 1, batch_size: 16}}
settings: {{scoring: {{epochs: 1}}}}
"""


@needs_sigmf
def test_bad_recording_in_a_suite_exits_2_and_writes_nothing(tmp_path, write_suite, capsys):
    meta, expected = bad_recording(tmp_path, "short")
    out = tmp_path / "out"
    assert main(["run", str(write_suite(SUITE.format(path=meta, snr_key="null"))), "--results", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "shorter than a window" in err and str(meta) in err
    assert not out.exists()


@needs_sigmf
def test_suite_on_captures_runs_and_keys_cells_by_the_recordings(captures, write_suite, capsys):
    folder, _, _ = captures
    suite = write_suite(SUITE.format(path=folder, snr_key=json.dumps(SNR_KEY)))
    out = folder.parent / "out"
    assert main(["run", str(suite), "--results", str(out)]) == 0
    record = json.loads((out / "records.jsonl").read_text().splitlines()[0])
    assert record["status"] == "ok" and record["config"]["dataset"]["fingerprint"]["recordings"] == 2
    key = record["key"]
    data = folder / "b.sigmf-data"
    data.write_bytes(data.read_bytes()[::-1])  # same size, other samples
    capsys.readouterr()
    assert main(["run", str(suite), "--results", str(out), "--dry-run"]) == 0
    assert key[:12] not in capsys.readouterr().out  # a changed recording gives a new cell


def test_without_the_extra_one_line_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "sigmf", None)  # `import sigmf` raises ImportError
    (tmp_path / "a.sigmf-meta").write_text("{}")
    with pytest.raises(AmrbenchError, match=r"pip install amrbench\[sigmf\]") as err:
        SigMFRecordings(path=str(tmp_path / "a.sigmf-meta")).fingerprint()
    assert "\n" not in str(err.value)


def test_no_recording_at_the_path(tmp_path):
    pytest.importorskip("sigmf", reason="the sigmf extra is not installed (pip install amrbench[sigmf])")
    with pytest.raises(AmrbenchError, match="no SigMF recording found"):
        SigMFRecordings(path=str(tmp_path / "nothing*.sigmf-meta")).fingerprint()
