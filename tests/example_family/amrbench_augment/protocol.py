"""The augment protocol: train the target model on the training split plus the copies an
augmenter makes, and test it on the real test split."""
import abc

import torch

from amrbench.api import Plugin, Protocol, SignalSet
from amrbench.hookspecs import hookimpl
from amrbench.train import evaluate, fit


class Augmenter(Plugin):
    """Makes transformed copies of training signals (a new plugin kind: its base class
    declares it)."""

    kind = "augmenter"

    @abc.abstractmethod
    def augment(self, ctx, train: SignalSet) -> SignalSet:
        """The extra signals (same classes) to train on beside ``train``."""


class AugmentProtocol(Protocol):
    """Accuracy of the target model trained on the training split and its augmentation."""

    name = "augment"
    method_kind = "augmenter"
    metrics = ("accuracy", "n_train", "train_power")

    def needs(self, registry, cell):
        return ["train-power"]

    def run_cell(self, ctx, cell):
        train, test = ctx.resource("dataset")
        augmenter = ctx.registry.create("augmenter", cell["method"]["name"], cell["method"]["params"])
        extra = augmenter.augment(ctx, train)
        both = SignalSet(x=torch.cat([train.x, extra.x]), y=torch.cat([train.y, extra.y]),
                         snr=torch.cat([train.snr, extra.snr]), classes=train.classes)
        model = ctx.registry.create("model", cell["model"]["target"])
        ctx.seed_torch("augment", "init")
        net = model.build(train.num_classes, train.length)
        fit(net, model.input_format, both, cell["train"], ctx.torch_generator("augment", "order"), ctx.device)
        metrics = evaluate(net, model.input_format, test, cell["train"], ctx.device)
        return {"accuracy": metrics["accuracy"], "n_train": len(both), "train_power": ctx.resource("train-power")}


def train_power_config(ctx) -> dict:
    return {"dataset": ctx.cell["dataset"]}


def train_power(ctx) -> float:
    """Mean power of the training signals: a (tiny) shared resource, computed once."""
    train, _ = ctx.resource("dataset")
    return float((train.x ** 2).sum(1).mean())


@hookimpl
def amrbench_register(registry):
    registry.add(AugmentProtocol)
    registry.add_resource("train-power", train_power_config, train_power, words="training power")
