import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from amrbench.api import AmrbenchError
from amrbench.store import ArtifactCache, RecordStore


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
