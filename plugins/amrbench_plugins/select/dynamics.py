"""The ``dynamics`` resource: a full-data training run of the cell's source model (the
scoring run of coreset selection), shared by every selector, rate and method of a
(dataset, model, seed, scoring settings).

It holds per-epoch predictions, losses and correctness of every training signal,
recorded from the training batches as the FoQuS and Forgetting references do, and the
final embeddings, probabilities and trained weights. Stored in the artifact cache.
``register`` adds it and GraNd's ``gradnorms`` (``scoring.py``) to a registry.
"""
from __future__ import annotations

import torch

from amrbench.api import Context
from amrbench.train import fit, predict, validate_train_settings


def scoring_settings(cell: dict) -> dict:
    """Training settings of the full-data scoring run: the suite's ``train`` with the
    protocol's ``settings.scoring`` overrides."""
    return validate_train_settings({**cell["train"], **(cell["settings"].get("scoring") or {})})


def dynamics_config(ctx: Context) -> dict:
    cell = ctx.cell
    return {"dataset": cell["dataset"], "model": cell["model"]["source"], "model_version": cell["versions"]["source"],
            "seed": cell["seed"], "train": scoring_settings(cell)}


def compute_dynamics(ctx: Context) -> dict:
    train, _ = ctx.resource("dataset")
    model = ctx.registry.create("model", ctx.cell["model"]["source"])
    settings = scoring_settings(ctx.cell)
    ctx.seed_torch("dynamics", "init")
    net = model.build(train.num_classes, train.length)
    epochs, n = settings["epochs"], len(train)
    pred = torch.zeros(epochs, n, dtype=torch.int16)
    loss = torch.zeros(epochs, n, dtype=torch.float32)

    def record(epoch, index, logits, losses):
        index = index.cpu()
        pred[epoch, index] = logits.argmax(1).cpu().to(torch.int16)
        loss[epoch, index] = losses.float().cpu()

    fit(net, model.input_format, train, settings, ctx.torch_generator("dynamics", "order"), ctx.device, on_batch=record)
    logits = predict(net, model.input_format, train.x, settings["eval_batch_size"], ctx.device)
    embeddings = predict(net, model.input_format, train.x, settings["eval_batch_size"], ctx.device, embed=True)
    return {
        "pred": pred,
        "loss": loss,
        "correct": pred == train.y.to(torch.int16).unsqueeze(0),
        "probs": torch.softmax(logits, 1),
        "embeddings": embeddings,
        "state_dict": {k: v.cpu() for k, v in net.state_dict().items()},
        "epochs": epochs,
    }


def register(registry) -> None:
    """Add the select family's shared resources (from every hook that needs them)."""
    from amrbench_plugins.select import scoring

    registry.add_resource("dynamics", dynamics_config, compute_dynamics, words="scoring run")
    registry.add_resource("gradnorms", scoring.gradnorms_config, scoring.compute_gradnorms, words="gradient norms",
                          training=scoring.gradnorms_training)
