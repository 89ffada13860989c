"""Compression protocol (HQARF paper, section V): fit a compressor on the training split,
reconstruct the test split at every level, and measure rate, distortion and the accuracy
of a classifier trained on clean data on the reconstructions.

Shared artifacts (computed once, cached):
- ``clean-classifier``: the suite's ``models:`` entry trained on the clean training split
  (per dataset, model and seed; settings = the suite's ``train:`` with
  ``settings.classifier`` overrides). The paper used a pretrained EfficientNet-B4.
- ``compressor``: the fitted compressor (per dataset, method and parameters, seed).
  HAE and HQA additionally share the trained HAE stack (``hae-stack``).

Settings (suite ``settings:``):
- ``classifier``: training-setting overrides of the clean-data classifier;
- ``fit``: compressor-parameter overrides applied to every method that has the parameter
  (e.g. ``{epochs: 2, hqa_epochs: 2}`` in a quick profile, without restating methods);
- ``repeats``: reconstructions per level of a stochastic compressor (code sampling);
  accuracy and distortion are then means, with ``accuracy_std`` over repeats;
- ``batch_size``: signals per encode/decode call.

Metrics: ``levels`` (one entry per level: ``level``, ``label``, ``bits`` per signal,
``bits_per_sample`` per complex sample, ``cr_float32`` (vs float32 I/Q), ``cr_eq7``
(the paper's Eq. 7), ``mse``, ``nmse_db``, ``accuracy``, ``per_snr``, ``per_class``,
``confusion``, ``codebook`` usage (alphabet, used, unused, perplexity, entropy bits per
symbol and per complex sample, counts) for discrete codes, encode/decode ms per
signal); flat per-level copies for tables, keyed by the level label (``L0``.., ``4b``,
``k8``): ``accuracy_<label>``, ``nmse_db_<label>``, ``mse_<label>``, ``bps_<label>``,
``cr_<label>``, ``cr_eq7_<label>``, ``entropy_bps_<label>``, ``perplexity_<label>``,
``unused_<label>``; and ``clean_accuracy`` (the classifier on the original test split),
``clean_per_snr``, ``n_test``, ``n_train``, ``fit_time_s``, ``fit_history``.
"""
from __future__ import annotations

import re
import time

import numpy as np
import torch

from amrbench.api import AmrbenchError, Protocol, Stopwatch, copy_timings
from amrbench.cost import full_data_epochs
from amrbench.hookspecs import hookimpl
from amrbench.train import classification_metrics, fit, predict, validate_train_settings
from amrbench_plugins.compress import accounting as compress


# --------------------------------------------------------------------------- helpers
def method_params(registry, cell: dict) -> dict:
    """The method's parameters with the protocol's ``fit`` overrides applied."""
    cls = registry.get("compressor", cell["method"]["name"])
    params = dict(cell["method"]["params"] or {})
    for key, value in (cell["settings"].get("fit") or {}).items():
        if key in cls.defaults:
            params[key] = value
    return params


def make_compressor(ctx, cell: dict):
    return ctx.registry.create("compressor", cell["method"]["name"], method_params(ctx.registry, cell))


def classifier_settings(cell: dict) -> dict:
    return validate_train_settings({**cell["train"], **(cell["settings"].get("classifier") or {})})


def key_label(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", str(label)).strip("_") or "level"


def jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value


# --------------------------------------------------------------------------- artifacts
def _classifier_config(ctx) -> dict:
    cell = ctx.cell
    return {"dataset": cell["dataset"], "model": cell["model"]["source"], "model_version": cell["versions"]["source"],
            "seed": cell["seed"], "train": classifier_settings(cell)}


def _compute_classifier(ctx) -> dict:
    train, test = ctx.resource("dataset")
    model = ctx.registry.create("model", ctx.cell["model"]["source"])
    settings = classifier_settings(ctx.cell)
    ctx.seed_torch("classifier", "init")
    net = model.build(train.num_classes, train.length)
    with Stopwatch() as training:
        fit(net, model.input_format, train, settings, ctx.torch_generator("classifier", "order"), ctx.device)
    logits = predict(net, model.input_format, test.x, settings["eval_batch_size"], ctx.device)
    return {"state_dict": {k: v.cpu() for k, v in net.state_dict().items()},
            "clean": classification_metrics(logits, test), **training.timings("train_time_s", 6)}


def _compressor_config(ctx) -> dict:
    cell = ctx.cell
    return {"dataset": cell["dataset"], "method": cell["method"]["name"],
            "params": method_params(ctx.registry, cell), "method_version": cell["versions"]["method"],
            "seed": cell["seed"]}


def _compute_compressor(ctx) -> dict:
    train, _ = ctx.resource("dataset")
    compressor = make_compressor(ctx, ctx.cell)
    ctx.seed_torch("compressor", "fit")
    with Stopwatch() as fitting:
        compressor.fit(ctx, train)
    state = compressor.get_state()
    return {"state": state, "object": compressor if state is None else None, **fitting.timings("fit_time_s", 6),
            "history": jsonable(compressor.history)}


def _fit_training(cell: dict, n_train: int, registry) -> tuple:
    """For cost estimates: a full-data run of the source model per training run of the
    fit (``Compressor.fit_runs``: HQA trains several HAE stacks)."""
    try:
        runs = registry.get("compressor", cell["method"]["name"]).fit_runs(cell["method"].get("params") or {})
    except (AmrbenchError, KeyError):
        runs = 1.0
    return "source", n_train * full_data_epochs(cell, registry) * float(runs)


def fitted_compressor(ctx, cell: dict):
    """The cell's compressor, fitted (from the artifact cache), on ``ctx.device``."""
    artifact = ctx.resource("compressor")
    if artifact.get("object") is not None:
        return artifact["object"], artifact
    compressor = make_compressor(ctx, cell)
    compressor.device = ctx.device
    compressor.set_state(artifact["state"])
    return compressor, artifact


def reconstruct(compressor, x: torch.Tensor, level, batch_size: int, device) -> tuple:
    """Encode and decode ``x`` at ``level`` in batches: (x_hat on CPU, symbol counts or
    None, symbols per signal or None, encode seconds, decode seconds)."""
    alphabet = compressor.alphabet(level)
    counts = np.zeros(alphabet, dtype=np.int64) if alphabet else None
    per_signal, outs, t_enc, t_dec = None, [], 0.0, 0.0
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size].to(device)
        t0 = time.perf_counter()
        code = compressor.encode(xb, level)
        t1 = time.perf_counter()
        xhat = compressor.decode(code, level)
        t2 = time.perf_counter()
        t_enc, t_dec = t_enc + t1 - t0, t_dec + t2 - t1
        if counts is not None:
            symbols = compressor.symbols(code, level)
            if symbols is not None:
                counts += compress.symbol_counts(symbols, alphabet)
                per_signal = symbols.numel() // xb.shape[0]
        xhat = torch.as_tensor(xhat).detach().float().cpu()
        if xhat.shape != xb.shape:
            raise AmrbenchError(f"compressor decoded shape {tuple(xhat.shape)} at level {level!r}, "
                                f"expected {tuple(xb.shape)}")
        outs.append(xhat)
    xhat = torch.cat(outs) if outs else x[:0].clone()
    return xhat, (counts if per_signal is not None else None), per_signal, t_enc, t_dec


# --------------------------------------------------------------------------- protocol
class CompressProtocol(Protocol):
    """Compression: fit a compressor, reconstruct the test split per level, classify with a clean-data model."""

    name = "compress"
    method_kind = "compressor"
    training_time = ("classifier_train_time_s", "source", None)
    budget_axis = None
    defaults = {"classifier": {}, "fit": {}, "repeats": 1, "batch_size": 256}
    train_settings = ("classifier",)
    param_overrides = ("fit",)
    # the per-level families are keyed by the level label (key_label: letters, digits, _)
    metrics = (r"(accuracy|nmse_db|mse|bps|cr|cr_eq7|perplexity|unused|entropy_bps)_\w+", "levels", "clean_accuracy",
               "clean_per_snr", "n_test", "n_train", "length", "fit_time_s", "fit_history", "classifier_train_time_s",
               "cpu_fit_time_s", "cpu_classifier_train_time_s")

    def __init__(self, **params):
        super().__init__(**params)
        for key in ("classifier", "fit"):
            if not isinstance(self.params[key] or {}, dict):
                raise AmrbenchError(f"protocol 'compress': settings.{key} must be a mapping")
        for key in ("repeats", "batch_size"):
            value = self.params[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AmrbenchError(f"protocol 'compress': settings.{key} must be a positive integer, got {value!r}")
        validate_train_settings(self.params["classifier"] or {})

    def needs(self, registry, cell):
        return ["clean-classifier", "compressor"]

    def run_cell(self, ctx, cell):
        train, test = ctx.resource("dataset")
        classifier = ctx.resource("clean-classifier")
        compressor, artifact = fitted_compressor(ctx, cell)
        model = ctx.registry.create("model", cell["model"]["source"])
        net = model.build(train.num_classes, train.length)
        net.load_state_dict(classifier["state_dict"])
        net.to(ctx.device).eval()
        eval_batch = classifier_settings(cell)["eval_batch_size"]
        batch = int(cell["settings"]["batch_size"])
        repeats = int(cell["settings"]["repeats"]) if compressor.stochastic else 1
        length, n = test.length, len(test)
        levels, flat = [], {}
        for level in compressor.levels():
            label = str(compressor.level_label(level))
            runs = []
            for r in range(repeats):
                ctx.seed_torch("reconstruct", str(level), r)
                xhat, counts, per_signal, t_enc, t_dec = reconstruct(compressor, test.x, level, batch, ctx.device)
                logits = predict(net, model.input_format, xhat, eval_batch, ctx.device)
                runs.append({"xhat_mse": compress.mse(test.x, xhat), "nmse_db": compress.nmse_db(test.x, xhat),
                             "cls": classification_metrics(logits, test), "counts": counts, "per_signal": per_signal,
                             "t_enc": t_enc, "t_dec": t_dec})
            bits = float(compressor.bits(level, length))
            accuracies = [run["cls"]["accuracy"] for run in runs]
            first = runs[0]["cls"]
            entry = {
                "level": jsonable(level), "label": label, **compress.rate_summary(bits, length),
                "mse": float(np.mean([run["xhat_mse"] for run in runs])),
                "nmse_db": float(np.mean([run["nmse_db"] for run in runs])),
                "accuracy": float(np.mean(accuracies)),
                "accuracy_std": float(np.std(accuracies, ddof=1)) if repeats > 1 else 0.0,
                "repeats": repeats,
                "per_snr": {k: float(np.mean([run["cls"]["per_snr"][k] for run in runs])) for k in first["per_snr"]},
                "per_class": {k: float(np.mean([run["cls"]["per_class"][k] for run in runs]))
                              for k in first["per_class"]},
                "confusion": np.sum([run["cls"]["confusion"] for run in runs], axis=0).tolist(),
                "encode_ms_per_signal": 1e3 * np.mean([run["t_enc"] for run in runs]) / max(1, n),
                "decode_ms_per_signal": 1e3 * np.mean([run["t_dec"] for run in runs]) / max(1, n),
                "codebook": None,
            }
            if repeats > 1:
                entry["accuracies"] = accuracies
            if runs[0]["counts"] is not None:
                entry["codebook"] = compress.usage(runs[0]["counts"], runs[0]["per_signal"], length)
            levels.append(jsonable(entry))
            k = key_label(label)
            flat.update({f"accuracy_{k}": entry["accuracy"], f"nmse_db_{k}": entry["nmse_db"], f"mse_{k}": entry["mse"],
                         f"bps_{k}": entry["bits_per_sample"], f"cr_{k}": entry["cr_float32"],
                         f"cr_eq7_{k}": entry["cr_eq7"]})
            if entry["codebook"] is not None:
                flat.update({f"perplexity_{k}": entry["codebook"]["perplexity"],
                             f"unused_{k}": entry["codebook"]["unused"],
                             f"entropy_bps_{k}": entry["codebook"]["entropy_bits_per_sample"]})
        clean = classifier["clean"]
        return {
            **flat,
            "levels": levels,
            "clean_accuracy": clean["accuracy"],
            "clean_per_snr": clean["per_snr"],
            "n_test": n,
            "n_train": len(train),
            "length": length,
            "fit_history": artifact.get("history"),
            **copy_timings(artifact, fit_time_s="fit_time_s"),
            **copy_timings(classifier, classifier_train_time_s="train_time_s"),
        }


@hookimpl
def amrbench_register(registry):
    registry.add(CompressProtocol)
    registry.add_resource("clean-classifier", _classifier_config, _compute_classifier, words="classifier",
                          time_metric="classifier_train_time_s")
    registry.add_resource("compressor", _compressor_config, _compute_compressor, words="compressor fit",
                          subject="method", time_metric="fit_time_s", training=_fit_training)
