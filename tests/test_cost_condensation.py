"""The cost of condensation: a synthetic condensation costs its iterations (and its lr
search) times the work of one iteration, which depends on the real batch, the SPC, the
classes and the network's FLOPs, not on the size of the training split; the per-condenser
factor is fitted on the records' seconds per iteration; the estimate of a committed run
is checked against what it took."""
import copy
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

from amrbench import cost
from amrbench.basics import metric_seconds, record_seconds
from amrbench.cli import main
from amrbench.store import RecordStore, read_suite_meta
from amrbench.suite import expand, load_suite, resolve_suite_path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results"


@pytest.fixture(scope="module")
def evidence_cells():
    """method name -> one cell of mdm-table1's evidence profile at SPC 10 (seed 0)."""
    suite = load_suite(resolve_suite_path("table1"), profile="evidence", seeds=[0])
    return {c["config"]["method"]["name"]: c for c in expand(suite)
            if c["config"]["budget"]["spc"] == 10 and c["config"]["method"]["name"] != "coreset"}


def _with(cell: dict, **params) -> dict:
    """The cell with its condenser's parameters changed (and a key of its own)."""
    cell = copy.deepcopy(cell)
    cell["config"]["method"]["params"].update(params)
    cell["key"] = cell["key"] + "-" + "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    return cell


def _seconds(model: cost.CostModel, cell: dict, shape=None) -> float:
    config = cell["config"]
    return model.artifact_seconds(config, "condensed", shape or model._shape(config))


def _record(cell: dict, seconds_per_iteration: float) -> dict:
    return {"key": cell["key"], "status": "ok", "config": cell["config"], "wall_time_s": 1.0,
            "metrics": {"seconds_per_iteration": seconds_per_iteration}}


def test_a_condensation_costs_its_iterations_not_the_size_of_the_training_split(evidence_cells):
    model = cost.CostModel([])
    dm = _with(evidence_cells["dm"], lr=0.1)
    shape = model._shape(dm["config"])
    ten_times = cost.DataShape(10 * shape.n_train, shape.n_classes, shape.length)
    assert _seconds(model, dm, ten_times) == pytest.approx(_seconds(model, dm, shape))
    assert _seconds(model, _with(dm, iterations=800)) == pytest.approx(2 * _seconds(model, dm))
    spc50 = copy.deepcopy(dm)
    spc50["config"]["budget"] = {"spc": 50}
    assert all(_seconds(model, c) > 1.5 * _seconds(model, dm) for c in (_with(dm, batch_real=256), spc50))


def test_the_fitted_factor_gives_back_the_stored_seconds_per_iteration(evidence_cells):
    dm = _with(evidence_cells["dm"], lr=0.1)  # a fixed lr: no search, only the 400 iterations
    model = cost.CostModel([_record(dm, 2.0)])
    assert _seconds(model, dm) == pytest.approx(400 * 2.0)
    searched = _seconds(model, evidence_cells["dm"])  # lr: search, 5 candidates x 10 probe iterations
    assert 400 * 2.0 + 50 * 2.0 <= searched <= 400 * 2.0 + 80 * 2.0


def test_a_condenser_without_records_borrows_the_others_factor_then_the_training_rate(evidence_cells):
    dm, mdm = _with(evidence_cells["dm"], lr=0.1), _with(evidence_cells["mdm"], lr=0.1, fd_scale="none")
    fitted = cost.CostModel([_record(dm, 2.0)])
    assert _seconds(fitted, mdm) == pytest.approx(2 * _seconds(fitted, dm))  # two domains, same factor
    assert fitted.condensation_factors.keys() == {"dm", None}
    analytic = cost.CostModel([])
    rate = analytic.rate("alexnet", analytic._shape(dm["config"]))
    per_unit = rate / cost.FORWARD_TO_TRAINING  # a training signal-epoch: forward and backward
    shape = analytic._shape(dm["config"])
    units = 400 * shape.n_classes * (64 + cost.FORWARD_TO_TRAINING * 10)  # real batch forward, synthetic set both ways
    assert _seconds(analytic, dm) == pytest.approx(per_unit * units)


def test_the_cost_follows_the_networks_flops(evidence_cells):
    dm = _with(evidence_cells["dm"], lr=0.1)
    model = cost.CostModel([_record(dm, 2.0)])
    shape = model._shape(dm["config"])
    ratio = cost.forward_flops("vgg16", shape.n_classes, shape.length) / \
        cost.forward_flops("alexnet", shape.n_classes, shape.length)
    assert _seconds(model, _with(dm, net="vgg16")) == pytest.approx(ratio * 400 * 2.0)


def test_dc_counts_its_matching_steps_and_inner_training(evidence_cells):
    dc = evidence_cells["dc"]
    model = cost.CostModel([])
    one = _seconds(model, _with(dc, loops=[1, 1], lr=0.1))
    reference = _seconds(model, _with(dc, loops="auto", lr=0.1))  # SPC 10: 10 matching steps, 50 inner epochs
    assert reference == pytest.approx(_seconds(model, _with(dc, loops=[10, 50], lr=0.1)))
    assert reference > 10 * one


def test_the_whole_dataset_row_trains_eval_models_target_models(evidence_cells):
    model = cost.CostModel([])
    config = copy.deepcopy(evidence_cells["dm"]["config"])
    shape = model._shape(config)
    three = model.artifact_seconds(config, "whole-dataset", shape)
    config["settings"]["eval_models"] = 1
    assert three == pytest.approx(3 * model.artifact_seconds(config, "whole-dataset", shape))
    assert three == pytest.approx(3 * model.rate("alexnet", shape, "condense") * shape.n_train * 30)


# --------------------------------------------------------------------------- the committed runs
def _measured_seconds(model: cost.CostModel, cells: list, latest: dict) -> float:
    """The CPU time a run took: its cells' times and every shared artifact once (the
    mean of the times its records report: an artifact computed again in a rerun reports
    its new time), each read as the cost model reads it (CPU time first)."""
    artifacts = defaultdict(set)
    for cell in cells:
        record = latest[cell["key"]]
        for kind, metric in model.artifact_times().items():
            seconds = metric_seconds(record, metric)
            if seconds is not None and kind in model._needs(cell["config"]):
                artifacts[model._artifact_id(cell["config"], kind)].add(seconds)
    return sum(record_seconds(latest[c["key"]]) for c in cells) + sum(statistics.mean(v) for v in artifacts.values())


def _leave_suite_out(folder: Path) -> tuple:
    """(estimated, measured) CPU seconds of a committed run, cells and shared artifacts,
    the model fitted on the records of every other suite's folders (none of any profile
    of this suite, so its own condensations teach it nothing)."""
    meta = read_suite_meta(folder)
    suite = load_suite(REPO / meta["suite"], profile=meta.get("profile"))
    latest = RecordStore(folder / "records.jsonl").latest()
    cells = [c for c in expand(suite) if latest.get(c["key"], {}).get("status") == "ok"]
    others = [r for p in RESULTS.glob("*/records.jsonl")
              if read_suite_meta(p.parent).get("suite") != meta["suite"] for r in RecordStore(p).read()]
    model = cost.CostModel(others)
    estimate = model.estimate(cells)
    return estimate.cells_s + estimate.artifacts_s, _measured_seconds(model, cells, latest)


def test_the_mdm_table1_quick_estimate_is_within_a_factor_2_of_its_measured_cpu_time():
    estimated, measured = _leave_suite_out(RESULTS / "mdm-table1-quick")
    assert measured > 2 * 3600  # 27 condensations, 45 cells: hours, not the minutes of the cells alone
    assert measured / 2 <= estimated <= 2 * measured


def test_fitted_on_its_own_records_the_condensations_come_back_to_their_measured_time():
    folder = RESULTS / "mdm-table1-quick"
    suite = load_suite(REPO / read_suite_meta(folder)["suite"], profile="quick")
    latest = RecordStore(folder / "records.jsonl").latest()
    model = cost.CostModel(list(latest.values()))
    cells = [c for c in expand(suite) if c["config"]["method"]["name"] != "coreset"]
    estimated = sum(model.artifact_seconds(c["config"], "condensed", model._shape(c["config"])) for c in cells)
    measured = sum(metric_seconds(latest[c["key"]], "condense_time_s") for c in cells)
    assert measured / 1.25 <= estimated <= 1.25 * measured  # the search's probes and scores are counted


def test_the_evidence_estimate_agrees_with_the_suites_measured_arithmetic(capsys):
    """suites/table1.yaml's header: 8.8 CPU-hours for 3 seeds from measured seconds per
    iteration, 2.9 per seed (the size-scaled model said 15 for one seed)."""
    assert main(["run", "table1", "--profile", "evidence", "--seeds", "0", "--dry-run"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    hours = float(last.split("estimated ")[1].split(" CPU-hours")[0])
    assert 2.9 / 2 <= hours <= 2 * 2.9


def test_gradnorms_cost_its_repeats_of_grands_epochs():
    """GraNd's gradient norms come from ``repeats`` short trainings (the resource declares
    it, ``scoring.gradnorms_training``): the estimate scales with repeats and epochs."""
    suite = load_suite(resolve_suite_path("foqus_table1"), profile="quick", seeds=[0])
    config = next(c["config"] for c in expand(suite) if c["config"]["method"]["name"] == "grand")
    model = cost.CostModel([])
    shape = model._shape(config)

    def seconds(**params):
        changed = copy.deepcopy(config)
        changed["method"]["params"].update(params)
        return model.artifact_seconds(changed, "gradnorms", shape)

    assert seconds(repeats=4, epochs=3) == pytest.approx(2 * seconds(repeats=2, epochs=3))
    assert seconds(repeats=2, epochs=9) > 2.5 * seconds(repeats=2, epochs=3)
    dynamics = model.artifact_seconds(config, "dynamics", shape)  # one full scoring run
    scoring_epochs = cost.full_data_epochs(config, model.registry)
    assert seconds(repeats=1, epochs=scoring_epochs) == pytest.approx(dynamics * (scoring_epochs + 1 / 3) / scoring_epochs)
