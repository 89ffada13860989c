"""A lean child-process entry for tests/test_store.py: spawned processes import only
this module and the record store, not the test module's dependencies."""
from amrbench.store import RecordStore


def append_keys(path, keys, barrier) -> None:
    """Append an ok record for each key, starting when every sibling process is ready."""
    store = RecordStore(path)
    barrier.wait()
    for key in keys:
        store.append({"key": key, "status": "ok", "metrics": {"pad": "x" * 500}})
