"""Coreset selection protocol (FoQuS paper, section IV): select a subset of the training
split with a selector (reading the shared full-data scoring run of the *source* model
when it needs one), train a fresh *target* model on it, test on the real test split.

Settings (suite ``settings:``):
- ``scoring``: training-setting overrides for the full-data scoring run (e.g. its
  epochs T); by default it uses the suite's ``train`` settings.
Metrics: accuracy, per-SNR and per-class accuracy, confusion matrix, selected count,
selection and training wall time.
"""
from __future__ import annotations

import time

import torch

from amrbench.api import Budget, Protocol, derive_seed
from amrbench.hookspecs import hookimpl
from amrbench.selection import check_selection
from amrbench.train import evaluate, fit


class SelectProtocol(Protocol):
    """Coreset selection: select with the source model, train and test the target model."""

    name = "select"
    method_kind = "selector"
    budget_axis = "rates"
    defaults = {"scoring": {}}
    train_settings = ("scoring",)
    metrics = ("accuracy", "per_snr", "per_class", "confusion", "n_test", "selected", "n_train", "selection_time_s",
               "train_time_s")

    def needs(self, registry, cell):
        selector = registry.get("selector", cell["method"]["name"])
        return list(selector.needs)

    def run_cell(self, ctx, cell):
        train, test = ctx.resource("dataset")
        budget = Budget(**cell["budget"])
        selector = ctx.registry.create("selector", cell["method"]["name"], cell["method"]["params"])
        started = time.perf_counter()
        selection = selector.select(ctx, train, budget)
        selection_time = time.perf_counter() - started
        indices = check_selection(selection.indices, train, budget)
        subset = train.subset(indices)
        if selection.weights is not None:
            subset = subset.with_weights(torch.as_tensor(selection.weights, dtype=torch.float32))
        model = ctx.registry.create("model", cell["model"]["target"])
        torch.manual_seed(derive_seed(ctx.seed, "target", "init"))
        net = model.build(train.num_classes, train.length)
        started = time.perf_counter()
        fit(net, model.input_format, subset, cell["train"], ctx.torch_generator("target", "order"), ctx.device)
        train_time = time.perf_counter() - started
        metrics = evaluate(net, model.input_format, test, cell["train"], ctx.device)
        metrics.update(selected=len(indices), n_train=len(train), selection_time_s=round(selection_time, 4),
                       train_time_s=round(train_time, 3))
        return metrics


@hookimpl
def amrbench_register(registry):
    registry.add(SelectProtocol)
