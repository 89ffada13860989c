"""MLflow reporter: each finished cell becomes one MLflow run (opt-in: ``amrbench run
--reporter mlflow``; needs the extra ``amrbench[mlflow]``).

A run's params are the cell's resolved configuration, flattened to dotted keys; its
metrics the record's numeric metrics (nested ones dotted, e.g. ``per_snr.10``) and the
cell's wall time; its tags the cell key, suite, profile, status and labels. The
experiment is named after the suite (and profile), like its results folder. The tracking
URI is ``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else ``./mlruns`` (MLflow's
file store, which MLflow 3 keeps only behind ``MLFLOW_ALLOW_FILE_STORE``: set here).

The records in the results folder stay the truth: MLflow is a copy, written by a
background thread so that a slow tracking server never holds the run up. A server that
cannot be reached, or any MLflow failure, gives one warning line, and the run goes on
without MLflow. MLflow's HTTP retries would otherwise take minutes, so unless the user
set them, requests get one retry and a 10 s timeout; an HTTP server gets a quick TCP
check first. MLflow's usage telemetry is off unless the user turned it on.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import queue
import re
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from amrbench import progress
from amrbench.basics import AmrbenchError
from amrbench.hookspecs import hookimpl

NAME = "mlflow"
INSTALL_HINT = "pip install amrbench[mlflow]"
CONNECT_TIMEOUT_S = 3.0  # the TCP check of an http(s) tracking server
FLUSH_TIMEOUT_S = 60.0  # how long the end of a run waits for cells still being logged
MLFLOW_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
# MLflow's limits (mlflow.utils.validation), fixed here so that building a run's
# contents never waits for the MLflow import
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_PARAMS_TAGS_PER_BATCH = 100  # each, in one log_batch call
MAX_ENTITIES_PER_BATCH = 1000  # params, metrics and tags of one log_batch call together
_BAD_KEY_CHARACTERS = re.compile(r"[^\w./\- :]")
_STOP = object()

_settings: Optional[dict] = None  # set by enable(): this process logs the next run
_logger: Optional["CellLogger"] = None  # the run being logged


# --------------------------------------------------------------------------- settings
def enable(settings: dict) -> None:
    """``--reporter mlflow``: log the next run; MLflow must be installed."""
    global _settings
    if importlib.util.find_spec("mlflow") is None:
        raise AmrbenchError(f"--reporter mlflow needs MLflow, which is not installed: {INSTALL_HINT}")
    _settings = {"tracking_uri": resolve_tracking_uri(settings.get("tracking_uri"))}


def resolve_tracking_uri(given: Optional[str]) -> str:
    """``given``, else ``$MLFLOW_TRACKING_URI``, else ``./mlruns``; a plain path becomes
    an absolute ``file:`` URI, so a later change of folder does not move the store."""
    uri = given or os.environ.get("MLFLOW_TRACKING_URI") or "mlruns"
    if uri == "databricks" or re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", uri):
        return uri
    return Path(uri).expanduser().resolve().as_uri()


def unreachable(uri: str) -> Optional[str]:
    """Why the http(s) tracking server ``uri`` cannot be reached, or None (it answers
    TCP, or ``uri`` is not an HTTP server)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return None
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        with socket.create_connection((parsed.hostname, port), timeout=CONNECT_TIMEOUT_S):
            return None
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- contents
def flatten(mapping: dict, prefix: str = "") -> dict:
    """Nested dicts as one level of dotted keys: ``{"train": {"lr": 0.1}}`` ->
    ``{"train.lr": 0.1}``."""
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def entity_key(name: str) -> str:
    """A param/metric/tag key MLflow accepts: other characters become ``_``."""
    return _BAD_KEY_CHARACTERS.sub("_", name)[:MAX_KEY_LENGTH]


def _text(value, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def params_of(config: dict) -> dict:
    """The resolved configuration as MLflow params: dotted keys, JSON values (lists, null),
    each cut to MLflow's value length."""
    return {entity_key(k): _text(v, MAX_PARAM_VALUE_LENGTH) for k, v in flatten(config).items()}


def metrics_of(record: dict) -> dict:
    """The record's numeric metrics (nested ones dotted; lists such as the confusion
    matrix left out), its wall time and its CPU time."""
    flat = flatten(record.get("metrics") or {})
    for name in ("wall_time_s", "cpu_time_s"):
        if isinstance(record.get(name), (int, float)):
            flat[name] = record[name]
    return {entity_key(k): float(v) for k, v in flat.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def tags_of(record: dict, suite: str, profile: Optional[str]) -> dict:
    """Cell key, suite, profile, status, the error of a failed cell and the labels."""
    tags = {"amrbench.key": record.get("key"), "amrbench.suite": suite, "amrbench.profile": profile or "default",
            "amrbench.status": record.get("status"), "amrbench.error": record.get("error"),
            "amrbench.device": record.get("device"), "amrbench.git": (record.get("env") or {}).get("git")}
    tags.update({f"amrbench.label.{k}": v for k, v in (record.get("labels") or {}).items()})
    return {entity_key(k): _text(v, MAX_TAG_VALUE_LENGTH) for k, v in tags.items() if v is not None}


def batches(metrics: list, params: list, tags: list):
    """(metrics, params, tags) triples within MLflow's limits on one ``log_batch`` call:
    at most 100 params, 100 tags and 1000 entities in all."""
    per_batch = MAX_PARAMS_TAGS_PER_BATCH
    metrics_per_batch = MAX_ENTITIES_PER_BATCH - 2 * per_batch
    count = max(math.ceil(len(params) / per_batch), math.ceil(len(tags) / per_batch),
                math.ceil(len(metrics) / metrics_per_batch), 1)
    for i in range(count):
        yield (metrics[i * metrics_per_batch:(i + 1) * metrics_per_batch],
               params[i * per_batch:(i + 1) * per_batch], tags[i * per_batch:(i + 1) * per_batch])


def run_name(record: dict) -> str:
    labels = record.get("labels") or {}
    parts = [f"{labels.get('method', '')} {labels.get('budget', '')}".strip(), labels.get("model"),
             labels.get("dataset"), f"seed {labels['seed']}" if "seed" in labels else None]
    return " | ".join(str(p) for p in parts if p) or str(record.get("key"))


def start_ms(record: dict) -> int:
    """When the cell started, in ms since the epoch (now minus its wall time when the
    record does not say)."""
    try:
        return int(datetime.strptime(record["started_at"], "%Y-%m-%dT%H:%M:%S%z").timestamp() * 1000)
    except (KeyError, TypeError, ValueError):
        wall = record.get("wall_time_s")
        return int((time.time() - (wall if isinstance(wall, (int, float)) else 0.0)) * 1000)


def experiment_name(suite) -> str:
    profile = getattr(suite, "profile", None)
    return f"{suite.name}-{profile}" if profile else suite.name


# --------------------------------------------------------------------------- logging
class Unreachable(ConnectionError):
    """The tracking server does not answer."""


class CellLogger:
    """Logs records to MLflow from a background thread; on the first failure it warns
    once and drops the rest, so the run never waits on MLflow nor fails through it."""

    def __init__(self, uri: str, experiment: str, suite: str, profile: Optional[str]):
        self.uri, self.experiment, self.suite, self.profile = uri, experiment, suite, profile
        self.queue: queue.Queue = queue.Queue()
        self.failed = False
        self.logged = 0
        self.thread = threading.Thread(target=self._work, name="amrbench-mlflow", daemon=True)
        self.thread.start()

    def submit(self, record: dict) -> None:
        self.queue.put(record)

    def finish(self, timeout: float = FLUSH_TIMEOUT_S) -> None:
        """Log what is queued, waiting at most ``timeout`` seconds."""
        self.queue.put(_STOP)
        self.thread.join(timeout)
        if self.thread.is_alive():
            self._give_up(f"{self.queue.qsize()} cell(s) still not logged to {self.uri} after {timeout:.0f} s")

    def _give_up(self, reason: str) -> None:
        if not self.failed:
            self.failed = True
            progress.note(f"amrbench: warning: mlflow: {reason}; the run goes on without MLflow "
                          f"(its records are stored as usual)")

    def _work(self) -> None:
        client = experiment_id = None
        try:
            client, experiment_id = self._connect()
        except Unreachable as exc:
            self._give_up(f"tracking server {self.uri} cannot be reached ({exc})")
        except Exception as exc:  # noqa: BLE001 - any MLflow failure only loses the copy
            self._give_up(f"cannot log to {self.uri}: {_one_line(exc)}")
        while (record := self.queue.get()) is not _STOP:
            if self.failed:
                continue
            try:
                self._log(client, experiment_id, record)
                self.logged += 1
            except Exception as exc:  # noqa: BLE001
                self._give_up(f"logging to {self.uri} failed: {_one_line(exc)}")

    def _connect(self):
        reason = unreachable(self.uri)
        if reason:
            raise Unreachable(reason)
        for name, value in MLFLOW_ENV_DEFAULTS.items():
            os.environ.setdefault(name, value)
        if self.uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.uri)
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return client, found.experiment_id
        try:
            return client, client.create_experiment(self.experiment)
        except MlflowException:  # another process created it meanwhile
            return client, client.get_experiment_by_name(self.experiment).experiment_id

    def _log(self, client, experiment_id: str, record: dict) -> None:
        from mlflow.entities import Metric, Param, RunTag

        begin = start_ms(record)
        run_id = client.create_run(experiment_id, start_time=begin, run_name=run_name(record)).info.run_id
        metrics = [Metric(k, v, begin, 0) for k, v in metrics_of(record).items()]
        params = [Param(k, v) for k, v in params_of(record.get("config") or {}).items()]
        tags = [RunTag(k, v) for k, v in tags_of(record, self.suite, self.profile).items()]
        for metric_batch, param_batch, tag_batch in batches(metrics, params, tags):
            client.log_batch(run_id, metrics=metric_batch, params=param_batch, tags=tag_batch)
        wall = record.get("wall_time_s")
        end = begin + int(1000 * wall) if isinstance(wall, (int, float)) and math.isfinite(wall) else None
        client.set_terminated(run_id, status="FINISHED" if record.get("status") == "ok" else "FAILED", end_time=end)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text if len(text) <= 300 else text[:297] + '...'}"


# --------------------------------------------------------------------------- hooks
@hookimpl
def amrbench_optional_reporters():
    return {NAME: enable}


@hookimpl
def amrbench_suite_start(suite, cells, done):
    global _logger
    if _settings is not None and any(cell["key"] not in done for cell in cells):
        _logger = CellLogger(_settings["tracking_uri"], experiment_name(suite), suite.name,
                             getattr(suite, "profile", None))


@hookimpl
def amrbench_cell_done(record):
    if _logger is not None:
        _logger.submit(record)


@hookimpl
def amrbench_suite_done(suite, records):
    """Log what is still queued; the next run logs only if enabled again."""
    global _logger, _settings
    logger, _logger, _settings = _logger, None, None
    if logger is not None:
        logger.finish()
