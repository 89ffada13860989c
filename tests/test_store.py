import errno
import hashlib
import json
import multiprocessing
import os
import pickle
import resource
import signal
import time
import warnings
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from amrbench.api import AmrbenchError, SignalSet
from amrbench.cli import main
from amrbench.store import STALE_TMP_SECONDS, ArtifactCache, RecordStore, read_suite_meta, write_text_file
from tests.store_worker import append_keys


def rec(key, status="ok", value=0.5):
    return {"key": key, "status": status, "metrics": {"accuracy": value}}


def test_append_and_read_roundtrip(tmp_path):
    store = RecordStore(tmp_path / "r" / "records.jsonl")
    store.append(rec("a"))
    store.append(rec("b", "failed"))
    store.append(rec("b"))
    store.append(rec("c", "failed"))
    assert [r["key"] for r in store.read()] == ["a", "b", "b", "c"]
    assert store.done_keys() == {"a", "b"}
    assert store.latest()["c"]["status"] == "failed"


def test_ok_record_is_not_shadowed_by_a_later_failure(tmp_path):
    store = RecordStore(tmp_path / "records.jsonl")
    store.append(rec("a", value=0.7))
    store.append(rec("a", "failed"))
    assert store.latest()["a"]["metrics"]["accuracy"] == 0.7


def test_torn_last_line_is_ignored_then_repaired(tmp_path):
    path = tmp_path / "records.jsonl"
    store = RecordStore(path)
    store.append(rec("a"))
    with open(path, "a") as f:
        f.write('{"key": "b", "status": "o')  # a crash mid-write
    with pytest.warns(UserWarning, match="truncated last record"):
        assert [r["key"] for r in store.read()] == ["a"]
    with pytest.warns(UserWarning, match="moved it to"):
        store.append(rec("c"))
    assert [r["key"] for r in store.read()] == ["a", "c"]
    assert path.read_text().count("\n") == 2
    assert '"key": "b"' in (tmp_path / "records.jsonl.torn").read_text()


def test_corrupt_line_in_the_middle_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(rec("a")) + "\nnot json\n" + json.dumps(rec("b")) + "\n")
    with pytest.raises(AmrbenchError, match=r"records.jsonl:2: corrupt record"):
        RecordStore(path).read()


def _append_many(path, worker, count):
    store = RecordStore(path)
    for i in range(count):
        store.append({"key": f"{worker}-{i}", "status": "ok", "metrics": {"pad": "x" * 5000}})


def test_concurrent_appends_from_a_process_pool(tmp_path):
    path = tmp_path / "records.jsonl"
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(4, mp_context=ctx) as pool:
        list(pool.map(_append_many, [path] * 4, range(4), [40] * 4))
    records = RecordStore(path).read()
    assert len(records) == 160
    assert len({r["key"] for r in records}) == 160


def _compute_shared(root):
    import time

    def compute():
        time.sleep(0.5)
        return {"value": 42}

    return ArtifactCache(root).get_or_compute("dynamics", {"dataset": "x", "seed": 0}, compute)["value"]


def test_artifact_is_computed_once_by_concurrent_workers(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(3, mp_context=ctx) as pool:
        assert list(pool.map(_compute_shared, [tmp_path] * 3)) == [42, 42, 42]
    assert ArtifactCache(tmp_path).computations("dynamics") == 1


# --------------------------------------------------------------------------- one record per key
def test_two_concurrent_runs_store_each_key_once(tmp_path):
    path = tmp_path / "records.jsonl"
    keys = [f"cell-{i}" for i in range(25)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    runs = [ctx.Process(target=append_keys, args=(path, keys, barrier)) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(60)
    assert [run.exitcode for run in runs] == [0, 0]
    assert sorted(r["key"] for r in RecordStore(path).read()) == sorted(keys)


def test_append_skips_a_key_another_writer_stored_ok_but_keeps_failures_then_ok(tmp_path):
    path = tmp_path / "records.jsonl"
    mine, other = RecordStore(path), RecordStore(path)
    assert mine.append(rec("a", "failed"))
    assert mine.append(rec("a"))                 # an ok record after a failure is stored
    assert other.append(rec("b"))                # written by another run after mine last looked
    assert not mine.append(rec("b"))             # seen in the bytes appended since
    assert not mine.append(rec("a", "failed"))  # nothing more for a finished cell
    assert mine.append(rec("c"))
    assert [(r["key"], r["status"]) for r in RecordStore(path).read()] == [
        ("a", "failed"), ("a", "ok"), ("b", "ok"), ("c", "ok")]


def test_a_whole_last_record_without_newline_is_kept(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(rec("a")))  # e.g. edited by hand
    store = RecordStore(path)
    store.append(rec("b"))
    assert [r["key"] for r in store.read()] == ["a", "b"]
    assert not (tmp_path / "records.jsonl.torn").exists()


# --------------------------------------------------------------------------- bad records files
@pytest.mark.parametrize("line, kind", [("[1, 2]", "an array"), ('"ok"', "a string"), ("3", "a number"),
                                        ("null", "null")])
def test_a_json_line_that_is_not_an_object_is_an_error_naming_the_line(tmp_path, line, kind):
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(rec("a")) + "\n" + line + "\n")
    with pytest.raises(AmrbenchError, match=rf"records.jsonl:2: corrupt record \({kind}, not a JSON object\)"):
        RecordStore(path).latest()
    with pytest.raises(AmrbenchError, match=r"records.jsonl:2: "):
        RecordStore(path).append(rec("b"))


def test_a_non_utf8_byte_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_bytes(json.dumps(rec("a")).encode() + b'\n{"key": "b\xff"}\n')
    with pytest.raises(AmrbenchError, match=r"records.jsonl:2: corrupt record \(byte 0xff at column 11 is not UTF-8\)"):
        RecordStore(path).read()


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("amrbench: error: ") and err.count("\n") == 1, err
    return err


def test_records_file_that_is_a_directory_is_one_line(write_suite, tmp_path, capsys):
    (tmp_path / "out" / "records.jsonl").mkdir(parents=True)
    with pytest.raises(AmrbenchError, match="is a directory"):
        RecordStore(tmp_path / "out" / "records.jsonl").append(rec("a"))
    assert main(["table", str(write_suite()), "--results", "out"]) == 2
    assert "records.jsonl: is a directory, not a records file" in _one_line_error(capsys)


def _make_read_only(folder, monkeypatch):
    """chmod a folder read-only; root ignores modes, so for root opening a file in it
    for writing fails as on a read-only file system."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        real_open = os.open

        def read_only_open(path, flags, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and Path(path).resolve().parent == folder.resolve():
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only_open)


def test_read_only_results_folder_is_one_line_before_any_cell_runs(write_suite, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    _make_read_only(out, monkeypatch)
    try:
        assert main(["run", str(write_suite()), "--results", str(out)]) == 2
        assert "suite.json: cannot write (" in _one_line_error(capsys)
        with pytest.raises(AmrbenchError, match=r"records.jsonl: cannot append the record of cell a \("):
            RecordStore(out / "records.jsonl").append(rec("a"))
    finally:
        out.chmod(0o755)
    assert sorted(p.name for p in out.iterdir()) == []


def test_results_path_blocked_by_a_file_is_one_line(write_suite, tmp_path, capsys):
    (tmp_path / "out").write_text("not a folder")
    assert main(["run", str(write_suite()), "--results", "out"]) == 2
    assert "suite.json: cannot write" in _one_line_error(capsys)
    with pytest.raises(AmrbenchError, match=r"out/table.md: cannot write \(.*\); choose a writable --out path"):
        write_text_file(tmp_path / "out" / "table.md", "| table |", "choose a writable --out path")  # table --out


def _append_past_a_file_size_limit(path, report) -> None:
    """In a child process: one record, then a file-size limit 100 bytes further and a
    5 kB record (SIGXFSZ ignored, as `amrbench run` does, so the write fails with EFBIG)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    store = RecordStore(path)
    store.append({"key": "small", "status": "ok"})
    resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 100, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        store.append({"key": "big", "status": "ok", "pad": "x" * 5000})
        report.put("stored")
    except AmrbenchError as exc:
        report.put(str(exc))


def test_file_size_limit_fails_the_append_whole(tmp_path):
    path = tmp_path / "records.jsonl"
    ctx = multiprocessing.get_context("fork")
    report = ctx.SimpleQueue()
    child = ctx.Process(target=_append_past_a_file_size_limit, args=(path, report))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert f"{path}: cannot append the record of cell big (File too large)" in report.get()
    assert path.read_text() == '{"key":"small","status":"ok"}\n'  # nothing half-written
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r["key"] for r in RecordStore(path).read()] == ["small"]


@pytest.mark.parametrize("content, problem", [(b'{"suite": "s.yaml",', r"suite.json:1: malformed suite.json \("),
                                              (b'["s.yaml"]', "not a JSON object"),
                                              (b'{"suite": 3}', "must be strings or null"),
                                              (b'{"suite": "s\xff"}', "not UTF-8")])
def test_malformed_suite_json_is_one_line(tmp_path, capsys, content, problem):
    folder = tmp_path / "results" / "tiny"
    RecordStore(folder / "records.jsonl").append(rec("a"))
    (folder / "suite.json").write_bytes(content)
    with pytest.raises(AmrbenchError, match=problem):
        read_suite_meta(folder)
    assert main(["leaderboard", "--check", "--results-root", str(tmp_path / "results")]) == 2
    assert "suite.json" in _one_line_error(capsys)


# --------------------------------------------------------------------------- artifacts are data
class _PlantedCode:
    """Unpickling this calls open(marker, "w"): proof that a file's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
@pytest.mark.parametrize("with_checksum", [False, True])
def test_a_planted_pickle_is_not_executed_and_is_recomputed(tmp_path, writer, with_checksum):
    cache = ArtifactCache(tmp_path / "cache")
    config = {"dataset": "toy", "seed": 0}
    path = cache.path("dynamics", config)
    path.parent.mkdir(parents=True)
    marker = tmp_path / "code-ran"
    if writer == "pickle":
        path.write_bytes(pickle.dumps({"state_dict": _PlantedCode(marker)}))
    else:
        torch.save({"state_dict": _PlantedCode(marker)}, path)
    if with_checksum:  # a checksum matching the planted file does not make it trusted
        cache.checksum_path(path).write_text(hashlib.sha256(path.read_bytes()).hexdigest() + "\n")
    with pytest.warns(UserWarning, match=rf"{path}: cached artifact is not plain data, not loaded"):
        value = cache.get_or_compute("dynamics", config, lambda: {"epochs": 3})
    assert value == {"epochs": 3} and not marker.exists()
    assert cache.computations("dynamics") == 1
    assert torch.load(path, weights_only=True)["value"] == {"epochs": 3}  # replaced by plain data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ArtifactCache(tmp_path / "cache").get_or_compute("dynamics", config, pytest.fail) == {"epochs": 3}


def test_a_flipped_byte_is_detected_and_recomputed(tmp_path):
    cache = ArtifactCache(tmp_path)
    cache.get_or_compute("gradnorms", {"k": 1}, lambda: {"norms": torch.zeros(1000)})
    path = cache.path("gradnorms", {"k": 1})
    data = bytearray(path.read_bytes())
    data[data.index(bytes(4000)) + 2001] ^= 0x01  # inside the tensor's bytes: it would still load
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=rf"{path}: cached artifact does not match its sha256"):
        value = cache.get_or_compute("gradnorms", {"k": 1}, lambda: {"norms": torch.ones(1000)})
    assert torch.equal(value["norms"], torch.ones(1000))
    assert cache.computations("gradnorms") == 2
    assert torch.equal(cache.read_file(path)["norms"], torch.ones(1000))


def _same(a, b) -> bool:
    """Equal values of exactly the same types (tensors: dtype, shape and bits)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        bits = a.detach().numpy().tobytes() == b.detach().numpy().tobytes()
        return a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad and bits
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, (dict, OrderedDict)):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, SignalSet):
        return all(_same(getattr(a, f), getattr(b, f)) for f in ("x", "y", "snr", "classes", "name", "weights"))
    if isinstance(a, (float, np.floating)) and a != a:
        return b != b
    return a == b and (not isinstance(a, np.generic) or a.dtype == b.dtype)


def _signals(weights):
    return SignalSet(torch.randn(4, 2, 8), torch.tensor([0, 1, 0, 1]), torch.tensor([0.0, float("nan"), 2, 4]),
                     ["bpsk", "qpsk"], "toy", torch.rand(4) if weights else None)


PLAIN_VALUES = {
    "dynamics": {"pred": torch.zeros(2, 5, dtype=torch.int16), "loss": torch.rand(2, 5), "correct": torch.ones(2, 5) > 0,
                 "state_dict": OrderedDict(w=torch.randn(3, 3), b=torch.zeros(3)), "epochs": 2},
    "compressor": {"state": {"layers": [{"encoder": {"w": torch.randn(2)}}], "bottom_activation": "tanh"},
                   "object": None, "fit_time_s": 1.5, "history": {"loss": [1.0, 0.5]}},
    "metrics": {"per_snr": {"-2": 0.5}, "confusion": [[1, 0], [0, 1]], "n_test": 2, "accuracy": float("nan"),
                "inf": float("inf"), "flag": True, "z": 1 + 2j, "raw": b"\x00\xff"},
    "containers": ([1, (2, 3)], {4, 5}, torch.Size([2, 3]), torch.float16, {1: "int key", 2.5: None}),
    "numpy": {"array": np.arange(6, dtype=np.float64).reshape(2, 3), "ints": np.array([1, 2], dtype=np.int64),
              "0-d": np.array(2.5, dtype=np.float32), "big-endian": np.arange(3, dtype=">i4"),
              "strided": np.arange(12, dtype=np.uint8).reshape(3, 4)[:, ::2],
              "f32": np.float32(0.1), "i64": np.int64(7), "flag": np.bool_(True)},
    "signals": [_signals(weights=True), _signals(weights=False)],
    "tag-key": {"__amrbench__": "not a tag", "x": torch.ones(1)},
    "grad": {"w": torch.ones(2, requires_grad=True)},
}


@pytest.mark.parametrize("name", sorted(PLAIN_VALUES))
def test_plain_data_round_trips_exactly(tmp_path, name):
    value = PLAIN_VALUES[name]
    ArtifactCache(tmp_path).get_or_compute(name, {}, lambda: value)
    path = ArtifactCache(tmp_path).path(name, {})
    torch.load(path, weights_only=True)  # no allow-list needed: plain data only
    loaded = ArtifactCache(tmp_path).get_or_compute(name, {}, pytest.fail)
    assert _same(loaded, value)


def test_a_value_that_is_not_plain_data_is_not_written(tmp_path):
    module = torch.nn.Linear(2, 2)
    with pytest.warns(UserWarning, match=r"not cached on disk \(value\['object'\] is a torch.nn.modules.linear.Linear"):
        value = ArtifactCache(tmp_path).get_or_compute("compressor", {}, lambda: {"object": module})
    assert value["object"] is module
    assert not ArtifactCache(tmp_path).path("compressor", {}).exists()


def test_errors_of_the_computation_pass_unchanged(tmp_path):
    def compute():
        raise FileNotFoundError("dataset file missing")

    with pytest.raises(FileNotFoundError, match="dataset file missing"):
        ArtifactCache(tmp_path).get_or_compute("dynamics", {}, compute)


def test_a_full_disk_keeps_the_computed_value_uncached(tmp_path, monkeypatch):
    real_save = torch.save

    def save_until_the_disk_is_full(value, f):
        real_save(value, f)
        os.truncate(f, 3)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save_until_the_disk_is_full)
    cache = ArtifactCache(tmp_path)
    with pytest.warns(UserWarning, match=r"could not store the computed artifact \(No space left on device\)"):
        assert cache.get_or_compute("dynamics", {}, lambda: {"x": 1}) == {"x": 1}
    lock = cache.path("dynamics", {}).name + ".lock"
    assert [p.name for p in (tmp_path / "dynamics").iterdir()] == [lock]  # no partial file left


def test_a_read_only_cache_is_one_line(tmp_path, monkeypatch):
    _make_read_only(tmp_path / "dynamics", monkeypatch)
    try:
        with pytest.raises(AmrbenchError, match=r"cannot use the artifact cache \(.*pass --cache"):
            ArtifactCache(tmp_path).get_or_compute("dynamics", {}, pytest.fail)
    finally:
        (tmp_path / "dynamics").chmod(0o755)


def test_an_artifact_written_before_checksums_is_adopted(tmp_path):
    cache = ArtifactCache(tmp_path)
    path = cache.path("condensed", {"spc": 1})
    path.parent.mkdir(parents=True)
    torch.save({"x": torch.ones(2), "name": "old"}, path)  # the format of earlier versions
    value = cache.get_or_compute("condensed", {"spc": 1}, pytest.fail)
    assert value["name"] == "old" and torch.equal(value["x"], torch.ones(2))
    assert cache.checksum_path(path).read_text().split()[0] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_stale_tmp_files_are_removed(tmp_path):
    cache = ArtifactCache(tmp_path)
    target = cache.path("dynamics", {"seed": 1})
    folder = target.parent
    folder.mkdir(parents=True)
    hour_ago = time.time() - 2 * STALE_TMP_SECONDS
    stale = [folder / "aaaa.pt.tmp999999", folder / "bbbb.tmp12"]  # untouched for hours (new and old naming)
    own = [target.with_name(target.name + f".tmp{os.getpid()}"), target.with_name(target.stem + ".sha256.tmp1")]
    recent = folder / f"cccc.pt.tmp{os.getpid()}"  # another artifact being written right now
    for path in stale + own + [recent]:
        path.write_bytes(b"partial")
    for path in stale:
        os.utime(path, (hour_ago, hour_ago))
    cache.get_or_compute("dynamics", {"seed": 1}, lambda: {"epochs": 1})
    assert sorted(p.name for p in folder.iterdir() if ".tmp" in p.name) == [recent.name]


def test_a_superseding_record_is_stored_after_the_one_it_replaces_and_read_as_latest(tmp_path):
    store = RecordStore(tmp_path / "records.jsonl")
    assert store.append({"key": "k", "status": "ok", "metrics": {"accuracy": 0.1}})
    assert not store.append({"key": "k", "status": "ok", "metrics": {"accuracy": 0.2}})  # a second run's copy
    assert store.append({"key": "k", "status": "ok", "metrics": {"accuracy": 0.3}}, supersede=True)
    assert store.append({"key": "k", "status": "failed", "error": "x"}, supersede=True)
    assert [r["metrics"]["accuracy"] for r in store.read() if r["status"] == "ok"] == [0.1, 0.3]
    assert store.latest()["k"]["metrics"]["accuracy"] == 0.3  # the last ok one, not the later failure
