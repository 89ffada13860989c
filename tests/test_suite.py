import subprocess
import sys

import pytest

from amrbench.api import AmrbenchError, Budget
from amrbench.suite import expand, load_suite


def keys(path, **kw):
    return [c["key"] for c in expand(load_suite(path, **kw))]


def test_grid_expansion_covers_every_combination(write_suite):
    cells = expand(load_suite(write_suite()))
    assert len(cells) == 1 * 1 * 2 * 2 * 2
    combos = {(c["labels"]["method"], c["labels"]["budget"], c["labels"]["seed"]) for c in cells}
    assert combos == {(m, b, s) for m in ("uniform", "herding") for b in ("25%", "50%") for s in (0, 1)}
    assert len({c["key"] for c in cells}) == len(cells)
    # parameters are resolved with the plugin's defaults
    herding = next(c for c in cells if c["labels"]["method"] == "herding")
    assert herding["config"]["method"]["params"] == {"embedding": "model", "stratify": "class"}


def test_keys_are_stable_across_processes(write_suite):
    path = write_suite()
    here = keys(path)
    code = f"from amrbench.suite import expand, load_suite; print(','.join(c['key'] for c in expand(load_suite({str(path)!r}))))"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert there.split(",") == here


@pytest.mark.parametrize("old,new", [
    ("epochs: 1, batch_size: 32", "epochs: 2, batch_size: 32"),
    ("seeds: [0, 1]", "seeds: [0, 2]"),
    ("length: 64", "length: 32"),
    ("rates: [0.25, 0.5]", "rates: [0.25, 0.4]"),
    ("scoring: {epochs: 1}", "scoring: {epochs: 3}"),
])
def test_keys_change_when_anything_relevant_changes(write_suite, old, new):
    from tests.conftest import TINY_SUITE

    assert old in TINY_SUITE
    before = set(keys(write_suite(TINY_SUITE, "a.yaml")))
    after = set(keys(write_suite(TINY_SUITE.replace(old, new), "b.yaml")))
    assert before != after


def test_keys_ignore_presentation_and_number_spelling(write_suite):
    from tests.conftest import TINY_SUITE

    base = keys(write_suite(TINY_SUITE, "a.yaml"))
    same = TINY_SUITE.replace("methods: [uniform, herding]", "methods: [{name: uniform, label: U}, herding]")
    same = same.replace("train: {epochs: 1, batch_size: 32}", "train: {epochs: 1, batch_size: 32, lr: 1e-3}")
    same += "table: {format: '{mean:.1f}±{std:.1f}'}\n"
    assert keys(write_suite(same, "b.yaml")) == base


def test_profile_overrides_and_seeds_option(write_suite):
    from tests.conftest import TINY_SUITE

    path = write_suite(TINY_SUITE + "profiles:\n  quick:\n    seeds: [5]\n    train: {epochs: 3}\n")
    suite = load_suite(path, profile="quick")
    assert suite.seeds == [5] and suite.train["epochs"] == 3 and suite.train["batch_size"] == 32
    assert load_suite(path, seeds=[7, 8]).seeds == [7, 8]
    with pytest.raises(AmrbenchError, match="unknown profile 'quik'.*did you mean 'quick'"):
        load_suite(path, profile="quik")


@pytest.mark.parametrize("mutate,message", [
    (lambda s: s + "methods: [uniform\n", r"suite.yaml:\d+: malformed YAML"),
    (lambda s: s + "seed: [1]\n", r"suite.yaml:\d+: seed: unknown key \(did you mean 'seeds'"),
    (lambda s: s.replace("epochs: 1, batch", "epoch: 1, batch"), r"suite.yaml:11: train: unknown training setting 'epoch' \(did you mean 'epochs'"),
    (lambda s: s.replace("[uniform, herding]", "[uniform, hearding]"), r"suite.yaml:7: methods.1: unknown selector 'hearding' \(did you mean 'herding'.*allowed: .*uniform"),
    (lambda s: s.replace("name: toy", "name: toyy"), r"suite.yaml:5: datasets.0: unknown dataset 'toyy'"),
    (lambda s: s.replace("[0.25, 0.5]", "[0.25, 1.5]"), r"suite.yaml:8: rates.1: rate 1.5 must lie in \(0, 1\]"),
    (lambda s: s.replace("[0.25, 0.5]", "[0, 0.5]"), r"rates.0: rate 0 must lie in \(0, 1\]"),
    (lambda s: s.replace("models: [cnn1d]", "models: [{source: cnn1d, target: cnn9d}]"), r"models.0: unknown model 'cnn9d'"),
    (lambda s: s.replace("length: 64}", "length: 64, lenght: 3}"), r"datasets.0: dataset 'toy': unknown parameter 'lenght' \(did you mean 'length'"),
    (lambda s: s.replace("settings: {scoring", "settings: {scorin"), r"settings.scorin: unknown setting of protocol 'select'"),
    (lambda s: s.replace("rates: [0.25, 0.5]", "rates: [0.25]\nspc: [3]"), r"give either rates or spc"),
    (lambda s: s.replace("seeds: [0, 1]", "seeds: [0, 0]"), r"seeds must be distinct"),
    (lambda s: s.replace("    params: {per", "    standardize: yes please\n    params: {per"),
     r"datasets.0.standardize: must be true or false"),
])
def test_validation_errors_name_file_line_and_fix(write_suite, mutate, message):
    from tests.conftest import TINY_SUITE

    with pytest.raises(AmrbenchError, match=message):
        load_suite(write_suite(mutate(TINY_SUITE)))


def test_budget_per_class_split():
    assert Budget(rate=0.1).per_class([100, 100, 100]).tolist() == [10, 10, 10]
    # largest remainder keeps the total, every non-empty class keeps at least one
    quota = Budget(rate=0.01).per_class([250, 250, 250, 250])
    assert quota.sum() == 10 and quota.min() >= 2
    assert Budget(spc=50).per_class([40, 60]).tolist() == [40, 50]
    assert Budget(rate=0.05).label() == "5%" and Budget(spc=10).label() == "SPC 10"


def test_standardize_changes_keys_only_when_on(write_suite):
    from tests.conftest import TINY_SUITE

    base = write_suite(TINY_SUITE, "a.yaml")
    off = write_suite(TINY_SUITE.replace("    params: {per", "    standardize: false\n    params: {per"), "b.yaml")
    on = write_suite(TINY_SUITE.replace("    params: {per", "    standardize: true\n    params: {per"), "c.yaml")
    assert keys(off) == keys(base)
    assert "standardize" not in expand(load_suite(base))[0]["config"]["dataset"]
    assert not set(keys(on)) & set(keys(base))
    assert expand(load_suite(on))[0]["config"]["dataset"]["standardize"] is True
