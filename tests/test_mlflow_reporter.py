"""The opt-in MLflow reporter (``amrbench run --reporter mlflow``, extra amrbench[mlflow]):
each finished cell becomes an MLflow run with the cell's config, metrics and tags; an
unreachable server costs one warning line, never the run; without MLflow installed the
run stops before it starts, naming the extra."""
import importlib.util
import json
import sys
import time

import pytest

from amrbench.cli import main
from amrbench_plugins.reporters import mlflow_tracking as reporter

HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None
needs_mlflow = pytest.mark.skipif(not HAS_MLFLOW, reason="the mlflow reporter needs the extra: "
                                  "pip install amrbench[mlflow]")

SUITE = """
name: tiny-mlflow
protocol: select
datasets:
  - name: toy
    params: {per_class_per_snr: 16, snr_values: [10, 18], length: 32}
methods: [uniform]
rates: [0.5]
models: [cnn1d]
seeds: [0, 1]
train: {epochs: 1, batch_size: 32}
settings: {scoring: {epochs: 1}}
profiles:
  small: {seeds: [0, 1]}
"""


@pytest.fixture(autouse=True)
def reporter_off():
    """No test leaves the reporter enabled for the next run in this process."""
    yield
    reporter._settings = reporter._logger = None


def _records(folder):
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


def _runs(store, experiment):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=reporter.resolve_tracking_uri(str(store)))
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r} in {store}"
    return client.search_runs([found.experiment_id])


def _warnings(err: str) -> list:
    return [line for line in err.splitlines() if "warning: mlflow" in line]


# --------------------------------------------------------------------------- without MLflow
def test_without_mlflow_the_run_names_the_extra_and_writes_nothing(write_suite, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` finds where it is not installed
    out = tmp_path / "out"
    assert main(["run", str(write_suite(SUITE)), "--results", str(out), "--reporter", "mlflow"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install amrbench[mlflow]" in err[0] and err[0].startswith("amrbench: error:")
    assert not out.exists()


def test_an_unknown_reporter_is_one_line_with_the_names_there_are(write_suite, tmp_path, capsys):
    assert main(["run", str(write_suite(SUITE)), "--results", str(tmp_path / "out"), "--reporter", "mlfow"]) == 2
    err = capsys.readouterr().err
    assert "--reporter 'mlfow'" in err and "did you mean 'mlflow'" in err


def test_the_reporter_is_off_unless_asked_for(write_suite, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["run", str(write_suite(SUITE)), "--results", str(tmp_path / "out")]) == 0
    assert not (tmp_path / "mlruns").exists()  # the tests run in tmp_path


# --------------------------------------------------------------------------- what is logged
def test_params_are_flat_and_within_mlflow_limits():
    config = {"train": {"lr": 0.1, "amp": False}, "dataset": {"snr": None, "range": [-20, 18, 2]},
              "method": {"params": {"weird key!": "x" * 10_000}}}
    params = reporter.params_of(config)
    assert params["train.lr"] == "0.1" and params["train.amp"] == "false" and params["dataset.snr"] == "null"
    assert params["dataset.range"] == "[-20,18,2]"
    long = params["method.params.weird key_"]
    assert len(long) == reporter.MAX_PARAM_VALUE_LENGTH and long.endswith("...")


def test_metrics_are_the_numeric_ones_and_tags_name_the_cell():
    record = {"key": "abc", "status": "failed", "error": "boom", "wall_time_s": 1.5, "labels": {"method": "Uniform"},
              "metrics": {"accuracy": 0.5, "per_snr": {"-2": 0.25}, "confusion": [[1, 0], [0, 1]], "ok": True}}
    assert reporter.metrics_of(record) == {"accuracy": 0.5, "per_snr.-2": 0.25, "wall_time_s": 1.5}
    tags = reporter.tags_of(record, "quick", None)
    assert tags["amrbench.key"] == "abc" and tags["amrbench.suite"] == "quick"
    assert tags["amrbench.profile"] == "default" and tags["amrbench.status"] == "failed"
    assert tags["amrbench.error"] == "boom" and tags["amrbench.label.method"] == "Uniform"


def test_batches_keep_to_mlflow_limits_and_lose_nothing():
    metrics, params, tags = list(range(2000)), list(range(250)), list(range(30))
    parts = list(reporter.batches(metrics, params, tags))
    assert all(len(p) <= 100 and len(t) <= 100 and len(m) + len(p) + len(t) <= 1000 for m, p, t in parts)
    assert [x for m, _, _ in parts for x in m] == metrics and [x for _, p, _ in parts for x in p] == params
    assert [x for _, _, t in parts for x in t] == tags


def test_tracking_uri_default_env_and_paths(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert reporter.resolve_tracking_uri(None) == (tmp_path.resolve() / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert reporter.resolve_tracking_uri(None) == "http://127.0.0.1:5000"
    assert reporter.resolve_tracking_uri("sub/store") == (tmp_path.resolve() / "sub" / "store").as_uri()
    assert reporter.resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"


# --------------------------------------------------------------------------- end to end
@needs_mlflow
def test_each_finished_cell_becomes_an_mlflow_run(write_suite, tmp_path, capsys):
    out, store = tmp_path / "out", tmp_path / "store"
    argv = ["run", str(write_suite(SUITE)), "--profile", "small", "--results", str(out), "--tracking-uri", str(store)]
    assert main(argv) == 0
    assert not _warnings(capsys.readouterr().err)
    records = {r["key"]: r for r in _records(out)}
    runs = _runs(store, "tiny-mlflow-small")
    assert sorted(run.data.tags["amrbench.key"] for run in runs) == sorted(records)
    for run in runs:
        record = records[run.data.tags["amrbench.key"]]
        assert run.info.status == "FINISHED"
        assert run.data.tags["amrbench.suite"] == "tiny-mlflow" and run.data.tags["amrbench.profile"] == "small"
        assert run.data.tags["amrbench.status"] == "ok"
        assert run.data.metrics["accuracy"] == pytest.approx(record["metrics"]["accuracy"])
        assert run.data.params == reporter.params_of(record["config"])
        assert run.data.params["seed"] == str(record["config"]["seed"])
    assert main(argv) == 0  # a rerun skips the stored cells: nothing new is logged
    assert len(_runs(store, "tiny-mlflow-small")) == len(records)


@needs_mlflow
def test_an_unreachable_server_is_one_warning_and_the_run_goes_on(write_suite, tmp_path, capsys):
    out = tmp_path / "out"
    start = time.monotonic()
    assert main(["run", str(write_suite(SUITE)), "--results", str(out), "--tracking-uri", "http://127.0.0.1:9"]) == 0
    took = time.monotonic() - start
    warnings = _warnings(capsys.readouterr().err)
    assert len(warnings) == 1 and "http://127.0.0.1:9 cannot be reached" in warnings[0]
    assert len(_records(out)) == 2 and all(r["status"] == "ok" for r in _records(out))
    assert took < 30, f"the run waited {took:.0f} s on the tracking server"


@needs_mlflow
def test_a_failure_while_logging_is_one_warning_and_the_rest_is_dropped(tmp_path, capsys, monkeypatch):
    calls = []

    def failing(self, client, experiment_id, record):
        calls.append(record["key"])
        raise OSError("disk full")

    monkeypatch.setattr(reporter.CellLogger, "_log", failing)
    logger = reporter.CellLogger(reporter.resolve_tracking_uri(str(tmp_path / "store")), "x", "x", None)
    for key in "abc":
        logger.submit({"key": key})
    logger.finish(timeout=30)
    warnings = _warnings(capsys.readouterr().err)
    assert calls == ["a"] and len(warnings) == 1 and "OSError: disk full" in warnings[0]
