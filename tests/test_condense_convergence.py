"""Every condensation reports its convergence: the figures (first/last loss windows,
relative movement, loss curve) against hand-made cases, the protocol record built from
them, the † mark in tables (never bold) and the run warning, and the default lr policy
moving each synthetic condenser."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from amrbench import resources
from amrbench.api import Context
from amrbench.registry import Registry
from amrbench.claims import claim_line, evaluate_claims
from amrbench.render import render
from amrbench.store import ArtifactCache
from amrbench.suite import expand, load_suite
from amrbench.tables import mark_warnings
from amrbench_plugins.condense import synthetic as cz
from tests.test_condensers import condenser, toy_context
from tests.test_tables import check_golden, table_lines


# --------------------------------------------------------------------------- the figures
def test_convergence_summary_of_a_hand_made_case():
    history = [10.0, 8.0] + [5.0] * 36 + [3.0, 1.0]  # 40 iterations: windows of 2
    x0 = torch.tensor([[[3.0, 0.0]], [[0.0, 4.0]]])  # ||x0|| = 5
    x = x0 + torch.tensor([[[0.0, 0.3]], [[0.4, 0.0]]])  # ||x - x0|| = 0.5
    s = cz.convergence_summary(history, x0, x)
    assert s["iterations"] == 40 and s["loss_window"] == 2
    assert s["first_loss"] == 9.0 and s["final_loss"] == 2.0
    assert s["loss_drop"] == pytest.approx(1 - 2.0 / 9.0)
    assert s["movement"] == pytest.approx(0.1)
    assert s["converged"] is True
    assert s["loss_curve"][0] == [1, 10.0] and s["loss_curve"][-1] == [40, 1.0] and len(s["loss_curve"]) == 40


@pytest.mark.parametrize("history,moved,converged", [
    ([1.0] * 20, 0.5, False),            # the loss did not fall
    ([2.0] * 10 + [1.0] * 10, 0.005, False),  # fell by half but moved 0.5 %
    ([2.0] * 10 + [1.0] * 10, 0.02, True),
])
def test_unconverged_when_it_barely_moves_or_the_loss_barely_falls(history, moved, converged):
    x0 = torch.ones(2, 2, 4)
    assert cz.convergence_summary(history, x0, x0 * (1 + moved))["converged"] is converged


def test_loss_curve_has_at_most_50_bin_means():
    history = list(range(200))
    curve = cz.loss_curve(history)
    assert len(curve) == 50
    assert curve[0] == [4, 1.5] and curve[-1] == [200, 197.5]  # bins of 4 iterations
    assert cz.convergence_summary(history, torch.ones(1, 2, 2), torch.ones(1, 2, 2))["loss_window"] == 10


class Scripted(cz.SyntheticCondenser):
    """Grows the synthetic set by 1 % per iteration and reports a scripted loss."""

    name = "scripted"
    losses = [8.0, 6.0] + [4.0] * 36 + [2.0, 2.0]

    def step(self, iteration):
        with torch.no_grad():
            self.syn_x.mul_(1.01)
        return self.losses[iteration]


def test_the_record_holds_the_hand_made_figures():
    from amrbench_plugins.condense.protocol import _compute_condensed, convergence_metrics

    registry = Registry().load_entry_points()
    registry.add(Scripted)
    ctx, _, _ = toy_context(source="alexnet")
    ctx.cell["method"] = {"name": "scripted", "params": {"iterations": 40, "lr": 0.0}}
    ctx = Context(seed=0, device=ctx.device, cell=ctx.cell, cache=ArtifactCache(), registry=registry, resolver=resources.get)
    artifact = _compute_condensed(ctx)
    metrics = convergence_metrics(artifact)
    assert artifact["seconds_per_iteration"] > 0 and 0 < artifact["cpu_seconds_per_iteration"] < 1
    assert metrics["condense_iterations"] == 40 and metrics["loss_window"] == 2
    assert metrics["first_loss"] == 7.0 and metrics["final_loss"] == 2.0
    assert metrics["loss_drop"] == pytest.approx(1 - 2 / 7)
    assert metrics["movement"] == pytest.approx(1.01 ** 40 - 1, rel=1e-4)
    assert metrics["converged"] is True and len(metrics["loss_curve"]) == 40
    # a selector run as a condenser has no iterations: no figures, no mark
    assert convergence_metrics({"convergence": None}) == {}


# --------------------------------------------------------------------------- tables
MARK_SUITE = """
name: marks
protocol: condense
datasets:
  - name: toy
    params: {per_class_per_snr: 24, length: 64}
methods:
  - {name: coreset, params: {selector: uniform}, label: Random}
  - {name: dm, params: {iterations: 2}, label: DM}
spc: [2, 4]
models: [cnn1d]
seeds: [0, 1, 2]
train: {epochs: 1}
settings: {eval_models: 1}
"""
# DM is best at SPC 2 but one of its condensations there did not converge
MARK_VALUES = {("Random", "SPC 2"): [0.50, 0.52, 0.54], ("DM", "SPC 2"): [0.70, 0.72, 0.74],
               ("Random", "SPC 4"): [0.60, 0.62, 0.64], ("DM", "SPC 4"): [0.70, 0.73, 0.75]}


def marked_records(suite):
    records = []
    for cell in expand(suite):
        labels = cell["labels"]
        metrics = {"accuracy": MARK_VALUES[(labels["method"], labels["budget"])][labels["seed"]]}
        if labels["method"] == "DM":
            metrics["converged"] = not (labels["budget"] == "SPC 2" and labels["seed"] == 1)
        records.append({"key": cell["key"], "status": "ok", "labels": labels, "metrics": metrics})
    return records


def test_unconverged_cell_marked_never_bold_golden(write_suite):
    suite = load_suite(write_suite(MARK_SUITE))
    text = render(suite, marked_records(suite), "markdown")
    check_golden("condense_marks.md", text)
    rows = table_lines(text)
    dm = next(r for r in rows if r.startswith("| DM"))
    random_row = next(r for r in rows if r.startswith("| Random"))
    assert "72.00±2.00†" in dm and "**72.00" not in dm  # best at SPC 2, unconverged: not bold
    assert "**52.00±2.00**" in random_row  # the best converged cell is
    assert "**72.67±2.52**" in dm  # SPC 4 converged: bold as usual
    assert "† unconverged condensation: the synthetic set moved < 1%" in text
    assert mark_warnings(suite, marked_records(suite)) == [
        f"marks: 1 of 12 cells marked † (unconverged condensation: {cz.UNCONVERGED_TEXT}); never bold in the tables"]


def test_a_claim_against_an_unconverged_cell_is_undecided_whatever_its_interval(write_suite):
    claims = ("claims:\n  - {label: DM beats Random, better: DM, than: [Random]}\n")
    suite = load_suite(write_suite(MARK_SUITE + claims))
    (result,) = evaluate_claims(suite, marked_records(suite))
    spc2, spc4 = result.comparisons
    assert spc2.difference.low > 0 and spc2.verdict == "undecided" and spc2.marks == "†"  # +20 points, but DM†
    assert spc4.verdict == "holds" and spc4.marks == ""
    assert result.verdict == "undecided" and "vs Random +20.00" in claim_line(result) and "(a † cell)" in claim_line(result)


def test_no_mark_without_the_flag(write_suite):
    suite = load_suite(write_suite(MARK_SUITE))
    records = marked_records(suite)
    for r in records:
        r["metrics"].pop("converged", None)
    text = render(suite, records, "markdown")
    assert "†" not in text and mark_warnings(suite, records) == []


# --------------------------------------------------------------------------- the default lr policy
def test_lr_search_picks_a_candidate_by_the_heldout_loss():
    ctx, train, _ = toy_context(source="alexnet")
    c = condenser("dm", iterations=3, batch_real=8, search_iterations=3, search_nets=2)
    c.condense(ctx, train, 3)
    search = c.details["lr_search"]
    scores = [math.inf if v is None else v for v in search["heldout_loss"]]
    assert c.lr == search["chosen"] == search["lrs"][int(np.argmin(scores))]
    assert np.allclose(np.array(search["lrs"]) / search["lrs"][0], np.array(search["steps"]) / search["steps"][0])
    # held-out signals are neither in the fit part nor among the initial synthetic signals
    assert search["n_fit"] + search["n_heldout"] == len(train)


def test_condense_command_says_when_the_search_chose_an_end_of_its_grid():
    from amrbench_plugins.condense.commands import convergence_lines

    summary = cz.convergence_summary([10.0, 8.0, 5.0, 3.0], torch.ones(2, 1, 2), torch.full((2, 1, 2), 1.5))
    search = {"steps": [0.01, 0.1, 1.0], "lrs": [0.2, 2.0, 20.0], "heldout_loss": [9.0, 7.0, 6.0],
              "initial_heldout_loss": 10.0, "iterations": 5}
    for chosen, edge in [(20.0, "largest"), (0.2, "smallest"), (2.0, None)]:
        artifact = {"lr": chosen, "convergence": summary, "details": {"lr_search": {**search, "chosen": chosen}}}
        lines = convergence_lines(artifact)
        assert cz.search_edge(artifact["details"]["lr_search"]) == edge
        assert any(f"chose its {edge} candidate" in line for line in lines) == (edge is not None), lines
    assert cz.search_edge(None) is None and cz.search_edge({"lrs": [1.0], "chosen": 1.0}) is None


def test_holdout_split_excludes_the_initial_signals():
    _, train, _ = toy_context()
    x0, _, picks = cz.init_synthetic(train, 3, np.random.default_rng(0))
    fit, held = cz.holdout_split(train, 0.2, np.random.default_rng(1), picks)
    assert not set(held.tolist()) & set(picks.tolist())
    assert sorted(fit.tolist() + held.tolist()) == list(range(len(train)))
    assert all(int((train.y[held] == c).sum()) >= 1 for c in range(train.num_classes))


def test_mdm_weighs_both_domains_alike_at_initialisation():
    ctx, train, _ = toy_context(source="alexnet")
    c = condenser("mdm", iterations=0, lr=0.1, batch_real=8, search_nets=2)
    c.condense(ctx, train, 3)
    assert c.fd_weight == c.details["fd_weight"] and 0 < c.fd_weight < 1  # |DFT| losses are the larger here
    raw = condenser("mdm", iterations=0, lr=0.1, batch_real=8, fd_scale="none")
    raw.condense(ctx, train, 3)
    assert raw.fd_weight == 1.0 and "fd_weight" not in raw.details


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dm", "mdm", "dc"])
def test_each_condenser_moves_more_than_1_percent_in_20_iterations_at_its_default(name):
    ctx, train, _ = toy_context(source="alexnet")
    c = condenser(name, iterations=20)
    c.condense(ctx, train, 3)
    assert c.params["lr"] == "search"
    assert c.convergence["movement"] > 0.01, c.convergence
