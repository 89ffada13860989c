"""The select protocol's validation holdout (``settings.validation_fraction``) and the
tables' choice of a row on it (``table: {choose_by: val_accuracy}``)."""
import json
from collections import Counter

import pytest
import torch
from torch import nn

from amrbench import resources
from amrbench.api import AmrbenchError, Model
from amrbench.registry import default_registry
from amrbench.render import render
from amrbench.runner import RunOptions, make_context
from amrbench.suite import expand, load_suite
from amrbench_plugins.select import dynamics
from tests.conftest import REPO, TINY_SUITE

HOLDOUT = TINY_SUITE.replace("settings: {scoring: {epochs: 1}}",
                             "settings: {scoring: {epochs: 1}, validation_fraction: 0.25}")


def fingerprints(data) -> list:
    """One hashable identity per signal (the toy generator's signals are all distinct)."""
    return [row.numpy().tobytes() for row in data.x]


def first_cell(write_suite, text, **replace):
    suite = load_suite(write_suite(text))
    config = expand(suite)[0]["config"]
    for key, value in replace.items():
        config[key] = value
    return config


def test_validation_is_stratified_disjoint_and_shared_by_every_cell(write_suite):
    cells = [c["config"] for c in expand(load_suite(write_suite(HOLDOUT)))]
    full_train, test = resources.load_splits(default_registry(), cells[0]["dataset"])
    train, test_too, validation = resources.validation_splits(default_registry(), cells[0])
    assert test_too is test
    pool, held, tested = set(fingerprints(train)), set(fingerprints(validation)), set(fingerprints(test))
    assert not pool & held and not held & tested and not pool & tested
    assert pool | held == set(fingerprints(full_train)) and len(train) + len(validation) == len(full_train)
    # 24 per (class, SNR) in the data, 19 or 20 of them in the training split: 25 % of each group held out
    groups = Counter(zip(full_train.y.tolist(), full_train.snr.tolist()))
    held_groups = Counter(zip(validation.y.tolist(), validation.snr.tolist()))
    assert held_groups == {g: round(n * 0.25) for g, n in groups.items()}
    # the dataset's seed decides it, not the cell's: every method, rate and seed shares it
    for cell in cells[1:]:
        assert set(fingerprints(resources.validation_splits(default_registry(), cell)[2])) == held


def test_default_off_leaves_settings_keys_and_data_unchanged(write_suite):
    config = first_cell(write_suite, TINY_SUITE)
    assert config["settings"] == {"scoring": {"epochs": 1}}  # no validation_fraction in the key
    train, test, validation = resources.validation_splits(default_registry(), config)
    assert validation is None
    assert (train, test) == resources.load_splits(default_registry(), config["dataset"])
    ctx = make_context(config, RunOptions().as_dict())
    assert "validation_fraction" not in resources.artifact_config(ctx, "dynamics")


def test_committed_records_of_the_tiers_suite_keep_their_keys():
    stored = {json.loads(line)["key"] for line in (REPO / "results/foqus_tiers-quick/records.jsonl").open()}
    quick = {c["key"] for c in expand(load_suite(REPO / "suites/foqus_tiers.yaml", profile="quick"))}
    assert stored and stored <= quick


def test_the_evidence_profile_holds_out_a_tenth_and_chooses_on_it():
    suite = load_suite(REPO / "suites/foqus_tiers.yaml", profile="evidence")
    cells = expand(suite)
    assert len(cells) == 96 and suite.seeds == [0, 1, 2] and suite.table["choose_by"] == "val_accuracy"
    assert {c["config"]["settings"]["validation_fraction"] for c in cells} == {0.1}
    # the generator's full size (1,000 per class and SNR: 44,000 training signals at [10, 18] dB)
    assert {c["config"]["dataset"]["params"]["per_class_per_snr"] for c in cells} == {1000}


@pytest.mark.parametrize("value", [0.9, -0.1, "tenth", True])
def test_a_bad_fraction_is_one_line_naming_the_setting(write_suite, value):
    path = write_suite(TINY_SUITE.replace("settings: {scoring: {epochs: 1}}",
                                          f"settings: {{validation_fraction: {json.dumps(value)}}}"))
    with pytest.raises(AmrbenchError, match=r"suite\.yaml.*validation_fraction") as info:
        load_suite(path)
    assert "\n" not in str(info.value)


def test_the_holdout_keys_the_shared_scoring_run_apart(write_suite):
    plain = make_context(first_cell(write_suite, TINY_SUITE), RunOptions().as_dict())
    held = make_context(first_cell(write_suite, HOLDOUT), RunOptions().as_dict())
    config = resources.artifact_config(held, "dynamics")
    assert config.pop("validation_fraction") == 0.25
    assert config == resources.artifact_config(plain, "dynamics")


class _Lookup(nn.Module):
    """Knows every signal's label; answers it on the ``right`` signals, label + 1 on the others."""

    def __init__(self, labels: dict, right: set, num_classes: int):
        super().__init__()
        self.labels, self.right, self.k = labels, right, num_classes
        self.anchor = nn.Linear(1, 1)

    def forward(self, x):
        keys = [row.numpy().tobytes() for row in x]
        answer = [self.labels[fp] if fp in self.right else (self.labels[fp] + 1) % self.k for fp in keys]
        return nn.functional.one_hot(torch.tensor(answer), self.k).float()


def test_val_accuracy_is_measured_on_exactly_the_held_out_signals(write_suite, monkeypatch):
    """Known answer: a model that knows only the validation signals scores 1 there and 0
    on the test split; any other set in its place would score below 1."""
    import amrbench_plugins.select.protocol as select

    config = first_cell(write_suite, HOLDOUT)
    train, test, validation = resources.validation_splits(default_registry(), config)
    labels = {fp: y for data in (train, test, validation) for fp, y in zip(fingerprints(data), data.y.tolist())}

    class LookupModel(Model):
        name = "lookup-test"

        def build(self, num_classes, length):
            return _Lookup(labels, set(fingerprints(validation)), num_classes)

    default_registry().add(LookupModel)
    monkeypatch.setattr(select, "fit", lambda *args, **kwargs: None)
    config["model"] = {"source": "cnn1d", "target": "lookup-test"}
    metrics = select.SelectProtocol(**config["settings"]).run_cell(make_context(config, RunOptions().as_dict()), config)
    assert metrics["val_accuracy"] == 1.0 and metrics["accuracy"] == 0.0
    assert metrics["n_val"] == len(validation) and metrics["n_train"] + len(validation) == 4 * 2 * 24 - metrics["n_test"]


def test_scoring_selection_and_training_never_see_the_validation_signals(write_suite, monkeypatch):
    import amrbench_plugins.select.protocol as select
    from amrbench import train as train_module

    text = HOLDOUT.replace("methods: [uniform, herding]", "methods: [forgetting]")
    config = first_cell(write_suite, text)
    _, _, validation = resources.validation_splits(default_registry(), config)
    held = set(fingerprints(validation))
    trained_on, selected_from = [], []

    def recording_fit(net, fmt, data, *args, **kwargs):
        trained_on.append(set(fingerprints(data)))
        return train_module.fit(net, fmt, data, *args, **kwargs)

    real_select = default_registry().get("selector", "forgetting").select

    def recording_select(self, ctx, train, budget):
        selected_from.append(set(fingerprints(train)))
        return real_select(self, ctx, train, budget)

    monkeypatch.setattr(select, "fit", recording_fit)
    monkeypatch.setattr(dynamics, "fit", recording_fit)
    monkeypatch.setattr(default_registry().get("selector", "forgetting"), "select", recording_select)
    ctx = make_context(config, RunOptions().as_dict())
    metrics = select.SelectProtocol(**config["settings"]).run_cell(ctx, config)
    assert len(trained_on) == 2 and len(selected_from) == 1  # the scoring run and the target model
    assert all(not seen & held for seen in trained_on + selected_from)
    assert ctx.resource("dynamics")["pred"].shape[1] == metrics["n_train"] == len(selected_from[0])


# --------------------------------------------------------------------------- choose_by
# per (method, budget): (test accuracies, validation accuracies) over seeds 0 and 1; the
# best test cell at 25 % is uniform's, validation picks herding there and over both columns
CHOICE = {
    ("uniform", "25%"): ([0.70, 0.72], [0.50, 0.52]), ("herding", "25%"): ([0.60, 0.62], [0.60, 0.64]),
    ("uniform", "50%"): ([0.80, 0.82], [0.80, 0.84]), ("herding", "50%"): ([0.70, 0.70], [0.74, 0.78]),
}


def choice_records(suite):
    out = []
    for cell in expand(suite):
        test, val = CHOICE[(cell["labels"]["method"], cell["labels"]["budget"])]
        seed = cell["labels"]["seed"]
        out.append({"key": cell["key"], "status": "ok", "labels": cell["labels"],
                    "metrics": {"accuracy": test[seed], "val_accuracy": val[seed]}})
    return out


def test_choose_by_names_the_validation_best_row_with_its_test_accuracy(write_suite):
    suite = load_suite(write_suite(TINY_SUITE + "table: {choose_by: val_accuracy}\n"))
    text = render(suite, choice_records(suite))
    line = next(x for x in text.splitlines() if x.startswith("- toy · cnn1d:"))
    assert "25%: herding (val_accuracy 62.00, test 61.00±1.41)" in line
    assert "50%: uniform (val_accuracy 82.00, test 81.00±1.41)" in line
    # means over the columns: uniform (51 + 82) / 2 = 66.5, herding (62 + 76) / 2 = 69; test Avg (61 + 70) / 2
    assert "all columns: herding (mean val_accuracy 69.00, test Avg 65.50)" in line
    assert "## Chosen on validation" in text
    for fmt in ("latex", "csv", "html"):
        assert "25%: herding (val_accuracy 62.00" in render(suite, choice_records(suite), fmt)


def test_without_choose_by_nothing_is_chosen(write_suite):
    suite = load_suite(write_suite(TINY_SUITE))
    assert "Chosen on validation" not in render(suite, choice_records(suite))


def test_choose_by_a_metric_the_protocol_lacks_names_the_key(write_suite):
    with pytest.raises(AmrbenchError, match=r"table\.choose_by.*records no metric 'val_acc'"):
        load_suite(write_suite(TINY_SUITE + "table: {choose_by: val_acc}\n"))


def test_choose_against_gives_the_paired_difference_over_seeds_on_validation_and_on_test(write_suite):
    suite = load_suite(write_suite(TINY_SUITE + "table: {choose_by: val_accuracy, choose_against: uniform}\n"))
    line = next(x for x in render(suite, choice_records(suite)).splitlines() if x.startswith("- toy · cnn1d:"))
    # herding - uniform per seed, the mean over both budgets: validation seed 0 (10 - 6) / 2 = 2,
    # seed 1 (12 - 6) / 2 = 3: mean 2.5, sd 0.707, t(1) 12.706 -> +-6.35; test -10 and -11: -10.5 +- 6.35
    assert ("herding − uniform: val_accuracy +2.50 [-3.85, +8.85] (n = 2), test -10.50 [-16.85, -4.15] (n = 2) "
            "(95 % CI of the paired difference over seeds; positive: herding better)") in line
    ninety = load_suite(write_suite(TINY_SUITE + "table: {choose_by: val_accuracy, choose_against: uniform, ci: 90}\n"))
    assert "(90 % CI of the paired difference over seeds" in render(ninety, choice_records(ninety))


def test_choose_against_pairs_within_the_table_and_works_with_one_column(write_suite):
    """Two models make two tables; the second model's records (all shifted) must not leak
    into the first table's pairs. With one rate the column's choice is compared."""
    text = TINY_SUITE.replace("models: [cnn1d]", "models: [cnn1d, cnn2d]").replace("rates: [0.25, 0.5]", "rates: [0.25]")
    suite = load_suite(write_suite(text + "table: {choose_by: val_accuracy, choose_against: uniform}\n"))
    records = choice_records(suite)
    for r in records:
        if r["labels"]["model"] == "cnn2d" and r["labels"]["method"] == "herding":
            r["metrics"] = {"accuracy": 0.99, "val_accuracy": 0.99}
    lines = [x for x in render(suite, records).splitlines() if x.startswith("- toy · ")]
    # cnn1d at 25 %: herding - uniform validation +10, +12 (mean 11, t(1) 12.706 x 0.707 x 2 / 2 = 12.71)
    assert "herding − uniform: val_accuracy +11.00 [-1.71, +23.71] (n = 2), test -10.00" in lines[0]
    assert "val_accuracy +48.00" in lines[1] and "all columns" not in lines[0]


def test_choose_against_the_chosen_row_says_there_is_nothing_to_compare(write_suite):
    suite = load_suite(write_suite(TINY_SUITE + "table: {choose_by: val_accuracy, choose_against: herding}\n"))
    assert "the chosen row is herding (choose_against): nothing to compare" in render(suite, choice_records(suite))


@pytest.mark.parametrize("table, message", [
    ("{choose_by: val_accuracy, choose_against: herdin}", r"table\.choose_against.*'herdin' is not a row.*herding"),
    ("{choose_against: uniform}", r"table\.choose_against.*needs table\.choose_by"),
])
def test_a_bad_choose_against_is_one_line_naming_the_key(write_suite, table, message):
    with pytest.raises(AmrbenchError, match=message) as info:
        load_suite(write_suite(TINY_SUITE + f"table: {table}\n"))
    assert "\n" not in str(info.value)


def test_choose_from_limits_the_choice_to_the_listed_rows(write_suite):
    suite = load_suite(write_suite(TINY_SUITE + "table: {choose_by: val_accuracy, choose_from: [herding], "
                                                "choose_against: uniform}\n"))
    line = next(x for x in render(suite, choice_records(suite)).splitlines() if x.startswith("- toy · cnn1d:"))
    # uniform has the better validation accuracy at 50 % (82 against 76) but is not a candidate
    assert "50%: herding (val_accuracy 76.00, test 70.00±0.00)" in line and "herding − uniform" in line
    with pytest.raises(AmrbenchError, match=r"table\.choose_from\.0.*'kcenter' is not a row") as info:
        load_suite(write_suite(TINY_SUITE + "table: {choose_by: val_accuracy, choose_from: [kcenter]}\n"))
    assert "\n" not in str(info.value)
    with pytest.raises(AmrbenchError, match=r"table\.choose_from.*needs table\.choose_by"):
        load_suite(write_suite(TINY_SUITE + "table: {choose_from: [herding]}\n"))
