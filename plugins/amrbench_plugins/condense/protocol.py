"""Dataset condensation protocol (MDM paper, §III-B/C): condense the training split to
``spc`` signals per class with a condenser, train ``eval_models`` freshly initialised
*target* models on the condensed set, and test them on the real test split.

The condensed set is a shared artifact (resource ``condensed``): computed once per
(dataset, method and parameters, SPC, condensation network, seed, and the resources the
condenser reads) and reused by every target model of the grid (Table II evaluates one
condensed set on five architectures). The condensation network is the cell's *source*
model unless the condenser's ``net`` parameter names another. Coreset baselines run as
the ``coreset`` condenser (a selector at the same SPC).

Settings (suite ``settings:``):
- ``eval_models``: number of target models trained from scratch on the condensed set
  (5 in the paper); seeds ``derive_seed(seed, "target", "init", i)``.
- ``whole_dataset``: also train ``eval_models`` target models on the whole training set
  (a shared ``whole-dataset`` artifact per dataset, target model and seed) and report
  their accuracy in every record as ``whole_accuracy`` (the "Whole dataset" row).
- ``scoring``: training-setting overrides of the full-data scoring run that selectors
  such as Forgetting read (as in the select protocol).

Training follows the suite's ``train:`` (the paper: SGD lr 0.001, momentum 0.9, batch 128,
300 epochs). Metrics: ``accuracy`` (mean over the target models), ``accuracies`` (per
model), ``accuracy_std`` (sample std over them), ``per_snr`` / ``per_class`` (means over
the models), ``confusion`` (summed), ``spc``, ``n_condensed``, ``n_train``, ``spc_ratio``
(condensed size as % of the training set: the paper's "Ratio (%)"), ``condense_time_s``
(of the artifact's computation), ``eval_time_s``, ``condense_net``, ``condense_lr``, and
``whole_*`` with ``whole_dataset``.

Convergence (synthetic condensers, amrbench_plugins.condense.synthetic.convergence_summary):
``first_loss`` / ``final_loss`` (the matching loss averaged over the first / last
``loss_window`` iterations: 5 % of ``condense_iterations``, at least 1), ``loss_drop``
(1 - final/first), ``movement`` (||S_final - S_0|| / ||S_0||), ``loss_curve`` (at most 50
[iteration, mean loss] points), ``converged`` (movement >= 1 % and loss_drop >= 10 %)
and ``condense_details`` (the lr search's candidates and held-out losses, MDM's domain
weight). ``converged: false`` is the protocol's table mark (``table_marks``): the cell
gets a † and is never bold; `amrbench run` warns about such cells.
"""
from __future__ import annotations

import numpy as np

from amrbench import resources
from amrbench.api import AmrbenchError, Budget, Protocol, SignalSet, Stopwatch, copy_timings
from amrbench.hookspecs import hookimpl
from amrbench.train import evaluate, fit
from amrbench_plugins.condense.synthetic import UNCONVERGED_TEXT
from amrbench_plugins.select import dynamics


# --------------------------------------------------------------------------- helpers
def condenser_needs(registry, method: dict) -> list:
    cls = registry.get("condenser", method["name"])
    return list(cls.needs_for(registry, method.get("params") or {}))


def _condensed_config(ctx) -> dict:
    cell = ctx.cell
    if not cell.get("budget") or cell["budget"].get("spc") is None:
        raise AmrbenchError("the condense protocol needs an 'spc:' budget axis")
    condenser = ctx.registry.create("condenser", cell["method"]["name"], cell["method"]["params"])
    net = condenser.net_name(ctx)
    return {
        "dataset": cell["dataset"],
        "method": _network_keyed_once(cell["method"]),
        "method_version": cell["versions"]["method"],
        "spc": cell["budget"]["spc"],
        "net": net,
        "net_version": ctx.registry.version_of("model", net) if net else None,
        "seed": cell["seed"],
        "depends": {kind: resources.artifact_config(ctx, kind) for kind in condenser_needs(ctx.registry, cell["method"])},
    }


def _network_keyed_once(method: dict) -> dict:
    """The method as its condensed set is keyed: without its ``net`` parameter, whose
    resolved network is the config's ``net``. ``net: source`` on an AlexNet-source cell
    and ``net: alexnet`` on any cell are then one condensation (MDM Table II's AlexNet
    row reuses Table I's SPC 50 sets)."""
    params = {k: v for k, v in (method.get("params") or {}).items() if k != "net"}
    return {**method, "params": params}


def _compute_condensed(ctx) -> dict:
    cell = ctx.cell
    train, _ = ctx.resource("dataset")
    spc = Budget.from_dict(cell["budget"]).spc
    condenser = ctx.registry.create("condenser", cell["method"]["name"], cell["method"]["params"])
    with Stopwatch() as condensing:
        out = condenser.condense(ctx, train, spc)
    check_condensed(out, train, spc, cell["method"]["name"])
    history = condenser.history or []
    convergence = condenser.convergence
    iterating = (condenser.seconds, condenser.cpu_seconds) if condenser.seconds is not None else \
        (condensing.seconds, condensing.cpu_seconds)
    per_iteration = [None if t is None or not history else t / len(history) for t in iterating]
    return {
        "x": out.x.detach().cpu(), "y": out.y.cpu(), "snr": out.snr.cpu(), "classes": list(out.classes),
        "weights": None if out.weights is None else out.weights.cpu(), "name": out.name,
        "condense_time_s": condensing.seconds, "cpu_condense_time_s": condensing.cpu_seconds,
        "net": condenser.net_name(ctx), "lr": condenser.lr, "history": [float(v) for v in history],
        "seconds_per_iteration": per_iteration[0], "cpu_seconds_per_iteration": per_iteration[1],
        "convergence": dict(convergence) if convergence else None,
        "details": dict(condenser.details or {}) or None,
    }


def convergence_metrics(artifact: dict) -> dict:
    """The record's convergence figures (none for condensers without iterations, e.g. coreset)."""
    summary = artifact.get("convergence")
    if not summary:
        return {}
    out = {k: summary[k] for k in ("first_loss", "final_loss", "loss_window", "loss_drop", "movement", "loss_curve",
                                   "converged")}
    out["condense_iterations"] = summary["iterations"]
    if artifact.get("details"):
        out["condense_details"] = artifact["details"]
    return out


def check_condensed(out: SignalSet, train: SignalSet, spc: int, method: str) -> None:
    if not isinstance(out, SignalSet):
        raise AmrbenchError(f"condenser {method!r} must return a SignalSet, got {type(out).__name__}")
    if list(out.classes) != list(train.classes) or out.length != train.length:
        raise AmrbenchError(f"condenser {method!r}: the condensed set must keep the classes and signal length "
                            f"({train.num_classes} classes, length {train.length})")
    counts = out.class_counts()
    if (counts > spc).any():
        raise AmrbenchError(f"condenser {method!r} returned more than spc={spc} signals for some class: {counts.tolist()}")


def condensed_set(artifact: dict) -> SignalSet:
    return SignalSet(artifact["x"], artifact["y"], artifact["snr"], list(artifact["classes"]), artifact.get("name", ""),
                     artifact.get("weights"))


def evaluate_models(ctx, data: SignalSet, test: SignalSet, target: str, count: int, settings: dict, tag: str) -> dict:
    """Train ``count`` fresh ``target`` models on ``data``, test each on ``test``, and
    aggregate: mean accuracy, per-model list, sample std, mean per-SNR/per-class."""
    model = ctx.registry.create("model", target)
    runs = []
    with Stopwatch() as training:
        for i in range(count):
            ctx.seed_torch(tag, "init", i)
            net = model.build(test.num_classes, test.length)
            fit(net, model.input_format, data, settings, ctx.torch_generator(tag, "order", i), ctx.device)
            runs.append(evaluate(net, model.input_format, test, settings, ctx.device))
    accuracies = [r["accuracy"] for r in runs]
    return {
        "accuracy": float(np.mean(accuracies)),
        "accuracies": accuracies,
        "accuracy_std": float(np.std(accuracies, ddof=1)) if count > 1 else 0.0,
        "per_snr": {k: float(np.mean([r["per_snr"][k] for r in runs])) for k in runs[0]["per_snr"]},
        "per_class": {k: float(np.mean([r["per_class"][k] for r in runs])) for k in runs[0]["per_class"]},
        "confusion": np.sum([r["confusion"] for r in runs], axis=0).tolist(),
        "n_test": runs[0]["n_test"],
        "time_s": training.seconds, "cpu_time_s": training.cpu_seconds,
    }


def _whole_config(ctx) -> dict:
    cell = ctx.cell
    return {"dataset": cell["dataset"], "target": cell["model"]["target"], "target_version": cell["versions"]["target"],
            "seed": cell["seed"], "train": cell["train"], "eval_models": int(cell["settings"]["eval_models"])}


def _compute_whole(ctx) -> dict:
    train, test = ctx.resource("dataset")
    cell = ctx.cell
    return evaluate_models(ctx, train, test, cell["model"]["target"], int(cell["settings"]["eval_models"]), cell["train"],
                           "whole")


def _whole_training(cell: dict, n_train: int, registry) -> tuple:
    """For cost estimates: ``eval_models`` target models trained for the suite's epochs."""
    models = cell["settings"].get("eval_models", 1)
    models = models if isinstance(models, int) and models > 0 else 1
    return "target", n_train * int(cell["train"]["epochs"]) * models


# --------------------------------------------------------------------------- protocol
class CondenseProtocol(Protocol):
    """Dataset condensation: condense with the source model, train N target models, test on real data."""

    name = "condense"
    method_kind = "condenser"
    training_time = ("eval_time_s", "target", "n_condensed")
    budget_axis = "spc"
    defaults = {"eval_models": 5, "whole_dataset": False, "scoring": {}}
    train_settings = ("scoring",)
    #: per-record flags amrbench.tables marks on every cell (and never bolds)
    table_marks = ({"metric": "converged", "when": False, "sign": "†",
                    "text": f"unconverged condensation: {UNCONVERGED_TEXT}"},)
    metrics = ("accuracy", "accuracies", "accuracy_std", "per_snr", "per_class", "confusion", "n_test", "spc",
               "n_condensed", "n_train", "spc_ratio", "condense_time_s", "eval_time_s", "condense_net", "condense_lr",
               "seconds_per_iteration", "final_loss", "first_loss", "loss_window", "loss_drop", "movement",
               "loss_curve", "condense_iterations", "converged", "condense_details", "whole_accuracy", "whole_accuracies",
               "whole_accuracy_std", "whole_per_snr", "whole_time_s", "cpu_condense_time_s", "cpu_eval_time_s",
               "cpu_seconds_per_iteration", "cpu_whole_time_s")

    def __init__(self, **params):
        super().__init__(**params)
        n = self.params["eval_models"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise AmrbenchError(f"protocol 'condense': settings.eval_models must be a positive integer, got {n!r}")
        if not isinstance(self.params["whole_dataset"], bool):
            raise AmrbenchError("protocol 'condense': settings.whole_dataset must be true or false")
        if not isinstance(self.params["scoring"] or {}, dict):
            raise AmrbenchError("protocol 'condense': settings.scoring must be a mapping of training settings")

    def needs(self, registry, cell):
        needs = condenser_needs(registry, cell["method"]) + ["condensed"]
        if cell["settings"].get("whole_dataset"):
            needs.append("whole-dataset")
        return needs

    def run_cell(self, ctx, cell):
        train, test = ctx.resource("dataset")
        artifact = ctx.resource("condensed")
        condensed = condensed_set(artifact)
        settings = cell["train"]
        n_models = int(cell["settings"]["eval_models"])
        result = evaluate_models(ctx, condensed, test, cell["model"]["target"], n_models, settings, "target")
        metrics = {k: v for k, v in result.items() if k not in ("time_s", "cpu_time_s")}
        spc = Budget.from_dict(cell["budget"]).spc
        metrics.update(
            spc=spc, n_condensed=len(condensed), n_train=len(train),
            spc_ratio=100.0 * len(condensed) / len(train),
            condense_net=artifact.get("net"), condense_lr=artifact.get("lr"),
            **copy_timings(artifact, condense_time_s="condense_time_s", seconds_per_iteration="seconds_per_iteration"),
            **copy_timings(result, eval_time_s="time_s"),
        )
        metrics.update(convergence_metrics(artifact))
        if cell["settings"].get("whole_dataset"):
            whole = ctx.resource("whole-dataset")
            metrics.update(whole_accuracy=whole["accuracy"], whole_accuracies=whole["accuracies"],
                           whole_accuracy_std=whole["accuracy_std"], whole_per_snr=whole["per_snr"],
                           **copy_timings(whole, whole_time_s="time_s"))
        return metrics


@hookimpl
def amrbench_register(registry):
    registry.add(CondenseProtocol)
    registry.add_resource("condensed", _condensed_config, _compute_condensed, words="condensing",
                          subject="method budget", time_metric="condense_time_s")
    registry.add_resource("whole-dataset", _whole_config, _compute_whole, words="whole-data training",
                          subject="target", time_metric="whole_time_s", training=_whole_training)
    dynamics.register(registry)  # coreset condensation runs the selectors
