"""Coreset selection protocol (FoQuS paper, section IV): select a subset of the training
split with a selector (reading the shared full-data scoring run of the *source* model
when it needs one), train a fresh *target* model on it, test on the real test split.

Settings (suite ``settings:``):
- ``scoring``: training-setting overrides for the full-data scoring run (e.g. its
  epochs T); by default it uses the suite's ``train`` settings.
- ``validation_fraction`` (off unless written; it then enters the cell's key): hold out
  this share of every (class, SNR) group of the training split before anything else
  (``amrbench.resources.validation_splits``). The held-out signals are never scored,
  selected nor trained on; the cell also records ``val_accuracy`` (and ``n_val``), the
  target model's accuracy on them, for choosing a method's parameters without reading
  test accuracy (``table: {choose_by: val_accuracy}``).
Metrics: accuracy (on the test split), per-SNR and per-class accuracy, confusion matrix,
selected count, training-pool size ``n_train``, selection and training wall time (and their
CPU time, ``cpu_selection_time_s``, ``cpu_train_time_s``); with a
validation holdout also ``val_accuracy`` and ``n_val``.
"""
from __future__ import annotations

import torch

from amrbench.api import Budget, Param, Protocol, Stopwatch
from amrbench.hookspecs import hookimpl
from amrbench.resources import validation_splits
from amrbench.train import evaluate, fit
from amrbench_plugins.select import dynamics
from amrbench_plugins.select.selection import check_selection


class SelectProtocol(Protocol):
    """Coreset selection: select with the source model, train and test the target model."""

    name = "select"
    method_kind = "selector"
    training_time = ("train_time_s", "target", "selected")
    budget_axis = "rates"
    defaults = {"scoring": {}, "validation_fraction": 0.0}
    optional_settings = ("validation_fraction",)  # cells without it keep their keys
    types = {"validation_fraction": Param(float, 0.0, 0.5)}
    train_settings = ("scoring",)
    metrics = ("accuracy", "per_snr", "per_class", "confusion", "n_test", "selected", "n_train", "selection_time_s",
               "train_time_s", "cpu_selection_time_s", "cpu_train_time_s", "val_accuracy", "n_val")

    def needs(self, registry, cell):
        selector = registry.get("selector", cell["method"]["name"])
        return list(selector.needs)

    def run_cell(self, ctx, cell):
        train, test, validation = validation_splits(ctx.registry, cell)  # train excludes the validation signals
        budget = Budget.from_dict(cell["budget"])
        selector = ctx.registry.create("selector", cell["method"]["name"], cell["method"]["params"])
        with Stopwatch() as selecting:
            selection = selector.select(ctx, train, budget)
        indices = check_selection(selection.indices, train, budget)
        subset = train.subset(indices)
        if selection.weights is not None:
            subset = subset.with_weights(torch.as_tensor(selection.weights, dtype=torch.float32))
        model = ctx.registry.create("model", cell["model"]["target"])
        ctx.seed_torch("target", "init")
        net = model.build(train.num_classes, train.length)
        with Stopwatch() as training:
            fit(net, model.input_format, subset, cell["train"], ctx.torch_generator("target", "order"), ctx.device)
        metrics = evaluate(net, model.input_format, test, cell["train"], ctx.device)
        metrics.update(selected=len(indices), n_train=len(train), **selecting.timings("selection_time_s", 4),
                       **training.timings("train_time_s"))
        if validation is not None:
            val = evaluate(net, model.input_format, validation, cell["train"], ctx.device)
            metrics.update(val_accuracy=val["accuracy"], n_val=len(validation))
        return metrics


@hookimpl
def amrbench_register(registry):
    registry.add(SelectProtocol)
    dynamics.register(registry)
