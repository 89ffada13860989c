"""`amrbench cache info|clean`, the first-write note of the dataset cache, and the
progress reporter: artifact names and epochs while shared work runs, plain lines when
stderr is not a terminal, and a Ctrl-C message on its own line."""
import io
import os
import time

import pytest
import torch

from amrbench import progress
from amrbench.api import SignalSet
from amrbench.cache import human_size
from amrbench.cli import main
from amrbench.data import store as data_store
from amrbench_plugins.reporters import progress as reporter

ONE_CELL_SUITE = """
name: tiny
protocol: select
datasets:
  - name: toy
    params: {per_class_per_snr: 8, snr_values: [10], length: 32}
methods: [herding]
rates: [0.5]
models: [cnn1d]
seeds: [0]
train: {epochs: 1, batch_size: 32}
settings: {scoring: {epochs: 2}}
"""
DATASET = "toy-0123456789abcdef.h5"
ARTIFACT = "0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def no_display():
    """No test leaves a progress display behind for the next one."""
    yield
    progress.set_display(None)
    reporter._view = None


def _file(path, size=0, age_days=0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    stamp = time.time() - age_days * 86400
    os.utime(path, (stamp, stamp))
    return path


def _fill_cache(root):
    """A dataset (3 MB, 10 days old) and two dynamics artifacts, with companions."""
    files = {
        "dataset": _file(root / "datasets" / DATASET, 3_000_000, age_days=10),
        "dataset_lock": _file(root / "datasets" / (DATASET + ".lock"), age_days=10),
        "dataset_tmp": _file(root / "datasets" / (DATASET + ".ab12cd.tmp"), 10, age_days=10),
        "artifact": _file(root / "artifacts" / "dynamics" / f"{ARTIFACT}.pt", 2_000_000, age_days=1),
        "sha": _file(root / "artifacts" / "dynamics" / f"{ARTIFACT}.sha256", 94, age_days=1),
        "log": _file(root / "artifacts" / "dynamics" / f"{ARTIFACT}.log", 50, age_days=1),
        "artifact_lock": _file(root / "artifacts" / "dynamics" / f"{ARTIFACT}.pt.lock", age_days=1),
        "small": _file(root / "artifacts" / "dynamics" / ("f" * 24 + ".pt"), 1000),
        "other": _file(root / "datasets" / "notes.txt", 5),
    }
    return files


# --------------------------------------------------------------------------- cache info / clean
def test_info_shows_where_sizes_by_kind_and_largest_entries(isolated_cache, capsys):
    _fill_cache(isolated_cache)
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"cache root  {isolated_cache} (from AMRBENCH_CACHE)" in out
    assert f"artifacts   {isolated_cache / 'artifacts'}" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert rows["datasets"] == ["1", "3", "MB"]  # data file + lock + tmp: one entry
    assert rows["artifacts/dynamics"] == ["2", "2", "MB"]
    largest = [line.split()[-1] for line in out.split("largest entries")[1].splitlines()[1:4]]
    assert largest == [f"datasets/{DATASET}", f"artifacts/dynamics/{ARTIFACT}.pt", f"artifacts/dynamics/{'f' * 24}.pt"]
    assert "left alone: 1 path(s)" in out  # notes.txt is no cache file


def test_info_follows_an_artifact_cache_elsewhere(isolated_cache, tmp_path, capsys):
    _file(tmp_path / "elsewhere" / "compressor" / f"{ARTIFACT}.pt", 4000)
    assert main(["cache", "info", "--cache", str(tmp_path / "elsewhere")]) == 0
    out = capsys.readouterr().out
    assert f"artifacts   {tmp_path / 'elsewhere'}" in out
    assert "artifacts/compressor        1      4 kB" in out


def test_clean_without_yes_only_lists(isolated_cache, capsys):
    files = _fill_cache(isolated_cache)
    assert main(["cache", "clean"]) == 0
    out = capsys.readouterr().out
    assert "would remove 3 entries (5 MB)" in out and "rerun with --yes" in out
    assert all(path.exists() for path in files.values())


def test_clean_by_age_removes_entries_with_their_companions(isolated_cache, capsys):
    files = _fill_cache(isolated_cache)
    assert main(["cache", "clean", "--older-than", "5", "--yes"]) == 0
    assert "removed 1 entry (3 MB)" in capsys.readouterr().out
    gone = {"dataset", "dataset_lock", "dataset_tmp"}
    assert {name for name, path in files.items() if not path.exists()} == gone


def test_clean_by_kind(isolated_cache, capsys):
    files = _fill_cache(isolated_cache)
    assert main(["cache", "clean", "--kind", "dynamics", "--yes"]) == 0
    assert "removed 2 entries" in capsys.readouterr().out
    assert files["dataset"].exists() and files["other"].exists()
    assert sorted(os.listdir(isolated_cache / "artifacts" / "dynamics")) == []


def test_clean_refuses_an_unknown_kind_in_one_line(isolated_cache, capsys):
    _fill_cache(isolated_cache)
    assert main(["cache", "clean", "--kind", "dynamcs", "--yes"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'dynamics'" in err
    assert main(["cache", "clean", "--older-than", "-1"]) == 2


def test_clean_never_removes_anything_outside_the_cache(isolated_cache, tmp_path, capsys):
    """Links to outside: the datasets folder itself, an artifact kind folder, one file."""
    outside = tmp_path / "precious"
    precious = [_file(outside / "ds" / DATASET, 100, age_days=30),
                _file(outside / "dynamics" / f"{ARTIFACT}.pt", 100, age_days=30),
                _file(outside / "model.pt", 100, age_days=30)]
    isolated_cache.mkdir()
    (isolated_cache / "datasets").symlink_to(outside / "ds", target_is_directory=True)
    (isolated_cache / "artifacts" / "compressor").mkdir(parents=True)
    (isolated_cache / "artifacts" / "dynamics").symlink_to(outside / "dynamics", target_is_directory=True)
    (isolated_cache / "artifacts" / "compressor" / f"{ARTIFACT}.pt").symlink_to(precious[2])
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert "the cache is empty" in out and "left alone: 3 path(s)" in out
    assert main(["cache", "clean", "--yes"]) == 0
    assert "nothing to remove" in capsys.readouterr().out
    assert all(path.exists() for path in precious)
    assert (isolated_cache / "artifacts" / "compressor" / f"{ARTIFACT}.pt").is_symlink()


def test_an_entry_whose_lock_is_held_is_left(isolated_cache, capsys):
    from filelock import FileLock

    files = _fill_cache(isolated_cache)
    with FileLock(str(files["artifact_lock"])):
        assert main(["cache", "clean", "--kind", "dynamics", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 entry" in out and f"left artifacts/dynamics/{ARTIFACT}.pt: in use" in out
    assert files["artifact"].exists() and not files["small"].exists()


# --------------------------------------------------------------------------- first-write note
def _set(name):
    return SignalSet(x=torch.zeros(10, 2, 16), y=torch.zeros(10, dtype=torch.int64), snr=torch.zeros(10),
                     classes=["a"], name=name)


def test_the_first_dataset_written_is_announced_once(isolated_cache, monkeypatch, capsys):
    monkeypatch.setattr(data_store, "_noted_write", False)
    data_store.cached_signalset(data_store.cache_path("first", {"k": 1}), lambda: _set("first"))
    data_store.cached_signalset(data_store.cache_path("second", {"k": 2}), lambda: _set("second"))
    data_store.cached_signalset(data_store.cache_path("first", {"k": 1}), lambda: _set("first"))
    err = capsys.readouterr().err
    size = os.path.getsize(data_store.cache_path("first", {"k": 1}))
    assert err.splitlines() == [f"amrbench: cached first ({human_size(size)}) in {isolated_cache / 'datasets'}; "
                                "`amrbench cache info` shows the cache"]


# --------------------------------------------------------------------------- progress
def test_a_log_gets_one_line_per_cell_and_names_the_shared_artifact(write_suite, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reporter, "LOG_EPOCH_INTERVAL_S", 0.0)
    assert main(["run", str(write_suite(ONE_CELL_SUITE)), "--results", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert "amrbench: tiny: 1 cell, 0 already done" in lines
    start = lines.index("amrbench: computing scoring run cnn1d seed 0 (toy)")
    assert lines[start + 1:start + 3] == ["amrbench: scoring run cnn1d seed 0 (toy): epoch 1/2",
                                          "amrbench: scoring run cnn1d seed 0 (toy): epoch 2/2"]
    assert lines[start + 3].startswith("amrbench: scoring run cnn1d seed 0 (toy) done in ")
    assert sum(line.startswith("[1/1] toy | cnn1d | herding 50% | seed 0: ok in ") for line in lines) == 1


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_the_bar_names_the_artifact_and_its_epoch(write_suite, tmp_path, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["run", str(write_suite(ONE_CELL_SUITE)), "--results", str(tmp_path / "out")]) == 0
    text = terminal.getvalue()
    assert "scoring run cnn1d seed 0 (toy): epoch 1/2" in text and "scoring run cnn1d seed 0 (toy): epoch 2/2" in text
    assert "toy | cnn1d | herding 50% | seed 0: epoch 1/1" in text  # the cell's own training, in-process
    assert "1/1" in text.split("\r")[-1]


def test_ctrl_c_message_starts_its_own_line(write_suite, monkeypatch):
    from amrbench import cli

    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)

    def interrupted_run(args):
        reporter.amrbench_suite_start(suite=type("S", (), {"name": "tiny"}), cells=[{"key": "a"}], done=set())
        reporter.amrbench_artifact_start(label="scoring run cnn1d seed 0 (toy)")
        progress.epoch_done(3, 50)
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "run", interrupted_run)
    assert main(["run", "x.yaml"]) == 130
    before, message, after = terminal.getvalue().rpartition("amrbench: interrupted;")
    assert "scoring run cnn1d seed 0 (toy): epoch 3/50" in before and before.endswith("\n")
    assert progress._display is None


def test_a_failing_display_never_fails_the_training():
    class Broken:
        def epoch(self, done, total):
            raise ValueError("I/O operation on closed file")

    progress.set_display(Broken())
    progress.epoch_done(1, 2)
    assert progress._display is None


@pytest.mark.slow
def test_pool_workers_artifacts_are_named_on_the_driver(write_suite, tmp_path, capsys):
    assert main(["run", str(write_suite(ONE_CELL_SUITE)), "--results", str(tmp_path / "out"), "--jobs", "2"]) == 0
    lines = capsys.readouterr().err.splitlines()
    start = lines.index("amrbench: computing scoring run cnn1d seed 0 (toy)")
    assert lines[start + 1].startswith("amrbench: scoring run cnn1d seed 0 (toy) done in ")
