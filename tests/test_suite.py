import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from amrbench.api import AmrbenchError, Budget, Param, Plugin
from amrbench.cli import main
from amrbench.suite import expand, load_suite

BAD_SUITES = sorted((Path(__file__).parent / "bad_suites").glob("*.yaml"))


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


# --------------------------------------------------------------------------- malformed suites
def expectation(path: Path) -> tuple:
    """The ``# expect:`` text and ``# line:`` number a bad suite's header comment states."""
    header = path.read_bytes().decode("utf-8", "replace").splitlines()
    expect = next(line.split(":", 1)[1].strip() for line in header if line.startswith("# expect:"))
    line = next((int(line.split(":", 1)[1]) for line in header if line.startswith("# line:")), None)
    return expect, line


@pytest.mark.parametrize("path", BAD_SUITES, ids=lambda p: p.stem)
def test_a_bad_suite_is_one_line_naming_file_and_line_and_nothing_is_written(path, tmp_path, capsys):
    expect, line = expectation(path)
    with pytest.raises(AmrbenchError) as info:
        load_suite(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: " if line else str(path)), message
    assert expect in message and "\n" not in message
    out = tmp_path / "out"
    assert main(["run", str(path), "--results", str(out)]) == 2
    assert capsys.readouterr().err == f"amrbench: error: {message}\n"
    assert not out.exists()


def test_the_corpus_covers_every_kind_of_bad_suite():
    assert len(BAD_SUITES) >= 20 and all(expectation(p)[0] for p in BAD_SUITES)


def test_billion_laughs_stops_early_in_small_memory(monkeypatch):
    """The bound is found by counting each shared alias once (a few dozen visits, not
    the expansion's billions) and nothing is built: counted and measured, not timed."""
    from amrbench import suite as suite_module

    visits = []
    check = suite_module.SuiteSource._check_size
    monkeypatch.setattr(suite_module.SuiteSource, "_check_size",
                        lambda self, node, depth, seen: visits.append(1) or check(self, node, depth, seen))
    path = next(p for p in BAD_SUITES if p.stem == "billion_laughs")
    tracemalloc.start()
    try:
        with pytest.raises(AmrbenchError, match="expands to more than"):
            load_suite(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(visits) < 1_000 and peak < 20e6


def test_shared_aliases_within_the_bound_still_load(write_suite):
    from tests.conftest import TINY_SUITE

    text = TINY_SUITE.replace("train: {epochs: 1, batch_size: 32}", "train: &t {epochs: 1, batch_size: 32}")
    text = text.replace("settings: {scoring: {epochs: 1}}", "settings: {scoring: *t}")
    suite = load_suite(write_suite(text))
    assert suite.settings["scoring"] == {"epochs": 1, "batch_size": 32}


def test_very_deep_nesting_is_a_one_line_error(write_suite, monkeypatch):
    """Rejected at the bound, before the scanner reads the rest of the 200,000 brackets
    (deep nesting costs it quadratic time): counted in tokens, not timed."""
    from amrbench import suite as suite_module

    fetched = []
    fetch = suite_module._Loader.fetch_more_tokens
    monkeypatch.setattr(suite_module._Loader, "fetch_more_tokens", lambda self: fetched.append(1) or fetch(self))
    path = write_suite("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(AmrbenchError, match=r"suite.yaml:1: the YAML nests deeper than 64 levels"):
        load_suite(path)
    assert 64 <= len(fetched) < 10_000  # reading every bracket takes 200,000 and more


# --------------------------------------------------------------------------- results stay inside their roots
AUDITED_RUN = r"""
import json, os, sys

writes = []
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
PATH_EVENTS = {"os.mkdir": 1, "os.rename": 2, "os.remove": 1, "os.rmdir": 1, "os.symlink": 2, "os.link": 2,
               "os.truncate": 1, "os.chmod": 1, "os.utime": 1, "shutil.copyfile": 2, "shutil.rmtree": 1,
               "tempfile.mkstemp": 1, "tempfile.mkdtemp": 1}


def audit(event, args):
    paths = []
    if event == "open" and not isinstance(args[0], int) and args[2] & WRITE:
        paths = [args[0]]
    elif event in PATH_EVENTS:
        paths = args[:PATH_EVENTS[event]]
    writes.extend(os.path.realpath(os.fsdecode(p)) for p in paths
                  if isinstance(p, (str, bytes, os.PathLike)) and os.fsdecode(p) != os.devnull)


sys.addaudithook(audit)
from amrbench.cli import main

code = main(sys.argv[1:])
print("AUDIT " + json.dumps({"code": code, "writes": writes}))
"""


@pytest.mark.parametrize("name,own_results", [pytest.param("tiny", True, marks=pytest.mark.slow),
                                              ("../../escaped", False)])
def test_a_run_writes_only_under_its_results_cache_and_home(tmp_path, name, own_results):
    """Every file the CLI creates, renames or removes (Python's audit events) lies under
    the results folder, the artifact and dataset caches, HOME or TMPDIR (torch and
    tempfile use it): never beside the suite, in the working directory or above results/
    (a suite name such as ../../x)."""
    from tests.conftest import TINY_SUITE

    work, home, cache, artifacts, temp = (tmp_path / d for d in ("work", "home", "cache", "artifacts", "tmp"))
    for folder in (work, home, temp):
        folder.mkdir()
    text = TINY_SUITE.replace("name: tiny", f"name: {name}").replace("[uniform, herding]", "[uniform]")
    suite = tmp_path / "suites" / "tiny.yaml"
    suite.parent.mkdir()
    suite.write_text(text.replace("rates: [0.25, 0.5]", "rates: [0.5]").replace("seeds: [0, 1]", "seeds: [0]"))
    results = tmp_path / "out" if own_results else work / "results"
    args = ["run", str(suite), "--cache", str(artifacts)] + (["--results", str(results)] if own_results else [])
    # torch records its compile caches' folder in the environment once it used them (an
    # earlier test in this process may have): let the child choose its own, under TMPDIR
    inherited = {k: v for k, v in os.environ.items() if k not in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")}
    env = {**inherited, "HOME": str(home), "AMRBENCH_CACHE": str(cache), "TMPDIR": str(temp),
           "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", AUDITED_RUN, *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300)
    report = json.loads(next(line[6:] for line in done.stdout.splitlines() if line.startswith("AUDIT ")))
    roots = [os.path.realpath(p) for p in (results, artifacts, cache, home, temp)]
    outside = [p for p in report["writes"] if not any(p == r or p.startswith(r + os.sep) for r in roots)]
    assert outside == [], f"{outside}\n{done.stderr}"
    if own_results:
        assert report["code"] == 0, done.stderr
        assert {"records.jsonl", "table.md", "suite.json"} <= {p.name for p in results.iterdir()}
    else:
        assert report["code"] == 2 and "name: must be a plain folder name" in done.stderr
    assert not (tmp_path / "escaped").exists() and list(work.iterdir()) == []


# --------------------------------------------------------------------------- what the checks accept
def test_the_same_method_with_other_parameters_and_labels_is_fine(write_suite):
    from tests.conftest import TINY_SUITE

    text = TINY_SUITE.replace("[uniform, herding]", "[uniform, {name: uniform, params: {stratify: class_snr}, "
                                                    "label: Uniform (class x SNR)}]")
    assert [m["label"] for m in load_suite(write_suite(text)).methods] == ["uniform", "Uniform (class x SNR)"]


def test_every_profile_is_checked_whichever_is_chosen(write_suite):
    from tests.conftest import TINY_SUITE

    broken = TINY_SUITE + "profiles:\n  quick:\n    seeds: [0]\n  paper:\n    settings: {scoring: {epoch: 5}}\n"
    for profile in (None, "quick", "paper"):
        with pytest.raises(AmrbenchError, match=r"suite.yaml:17: profiles.paper.settings.scoring.epoch: unknown "
                                                r"training setting \(did you mean 'epochs'"):
            load_suite(write_suite(broken), profile=profile)


def test_a_profile_not_chosen_may_name_dataset_files_this_machine_lacks(write_suite, tmp_path):
    from tests.conftest import TINY_SUITE

    missing = tmp_path / "RML2016.10a_dict.pkl"
    text = TINY_SUITE.replace("  - name: toy\n", f"  - name: rml2016a\n    params: {{path: {missing}}}\n  - name: toy\n")
    path = write_suite(text + "profiles:\n  quick:\n    datasets: [{name: toy, params: {length: 64}}]\n")
    assert [d["name"] for d in load_suite(path, profile="quick").datasets] == ["toy"]
    with pytest.raises(AmrbenchError, match=r"suite.yaml:5: datasets.0: .*RML2016.10a_dict.pkl"):
        load_suite(path)


def test_a_profile_seeds_replace_repeats_and_repeats_replace_seeds(write_suite):
    from tests.conftest import TINY_SUITE

    path = write_suite(TINY_SUITE + "profiles:\n  three: {repeats: 3}\n  five: {seeds: [5]}\n")
    assert load_suite(path, profile="three").seeds == [0, 1, 2]
    assert load_suite(path, profile="five").seeds == [5]
    with pytest.raises(AmrbenchError, match=r"b.yaml:14: profiles.bad.repeats: must be a positive integer"):
        load_suite(write_suite(TINY_SUITE + "profiles:\n  bad: {repeats: true}\n", "b.yaml"))


def test_a_bad_seeds_override_is_blamed_on_the_override_not_the_file(write_suite):
    with pytest.raises(AmrbenchError, match=r"^seeds \[3, 3\]: .*distinct"):
        load_suite(write_suite(), seeds=[3, 3])


def test_nested_training_settings_and_the_protocols_own_checks_run_at_load(write_suite):
    from tests.conftest import TINY_SUITE

    with pytest.raises(AmrbenchError, match=r"suite.yaml:12: settings.scoring: training setting 'epochs' must be int"):
        load_suite(write_suite(TINY_SUITE.replace("scoring: {epochs: 1}", "scoring: {epochs: 1.5}")))
    condense = (TINY_SUITE.replace("protocol: select", "protocol: condense").replace("rates: [0.25, 0.5]", "spc: [2]")
                .replace("[uniform, herding]", "[coreset]")
                .replace("settings: {scoring", "settings: {eval_models: 0, scoring"))
    with pytest.raises(AmrbenchError, match=r"c.yaml:12: settings: protocol 'condense': settings.eval_models"):
        load_suite(write_suite(condense, "c.yaml"))


def test_declared_metrics_accept_families_pools_and_extra_rows(write_suite):
    from amrbench.registry import default_registry

    registry = default_registry()
    compress, condense = registry.get("protocol", "compress"), registry.get("protocol", "condense")
    assert compress.produces("accuracy_L3") and compress.produces("cr_eq7_4b") and not compress.produces("accuracy")
    assert condense.produces("accuracies") and condense.produces("whole_accuracy") and condense.produces("spc_ratio")
    assert not registry.get("protocol", "select").produces("accuracy_L1")


@pytest.mark.parametrize("layout,where", [
    ("table:\n  pool: accuracy_list\n", "table.pool"),
    ("table:\n  extra_rows:\n    - {label: x, metric: ratio}\n", "table.extra_rows.0.metric"),
])
def test_unknown_pool_and_extra_row_metrics_are_errors(write_suite, layout, where):
    from tests.conftest import TINY_SUITE

    with pytest.raises(AmrbenchError, match=rf"suite.yaml:1[45]: {where}: protocol 'select' records no metric"):
        load_suite(write_suite(TINY_SUITE + layout))


def test_an_snr_filter_inside_the_grid_loads(write_suite):
    from tests.conftest import TINY_SUITE

    suite = load_suite(write_suite(TINY_SUITE.replace("    params: {per", "    snr: [15, 30]\n    params: {per")))
    assert suite.datasets[0]["snr"] == [15, 30]


# --------------------------------------------------------------------------- declared plugin parameters
class Declared(Plugin):
    kind, name = "dataset", "declared"
    defaults = {"count": 5, "levels": [0.5], "path": None}
    types = {"count": Param(int, 1, 10), "levels": Param(list, 0, 1, items=float, nonempty=True),
             "path": (str, None, None)}


@pytest.mark.parametrize("params,message", [
    ({"count": 0}, "parameter 'count' must be an integer in [1, 10], got 0"),
    ({"count": True}, "parameter 'count' must be an integer in [1, 10], got True"),
    ({"levels": []}, "parameter 'levels' must be a non-empty list, each item a number in [0, 1], got []"),
    ({"levels": [0.5, 2]}, "parameter 'levels' must be a non-empty list, each item a number in [0, 1], got [0.5, 2]"),
    ({"path": 3}, "parameter 'path' must be a string, got 3"),
])
def test_declared_parameter_types_and_ranges_are_checked_on_construction(params, message):
    with pytest.raises(AmrbenchError, match=re_escape(f"dataset 'declared': {message}")):
        Declared(**params)
    assert Declared(count=10, levels=(0, 1), path="x").params["count"] == 10


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


@pytest.mark.parametrize("name,params,message", [
    ("toy", {"snr_values": []}, "'snr_values' must be a non-empty list"),
    ("toy", {"sps": 0}, "'sps' must be an integer >= 1"),
    ("rml2016a", {"per_class_per_snr": -5}, "'per_class_per_snr' must be an integer >= 1 or null, got -5"),
    ("rml2018", {"class_order": "random"}, "class_order='random' is not allowed"),
    ("rml2018", {"classes": "BPSK"}, "'classes' must be a non-empty list, each item a string or null"),
    ("sig2019", {"labels": 5}, "'labels' must be a string or null"),
    ("file", {"path": ["a"]}, "'path' must be a string or null"),
    ("torchsig6-synth", {"length": 8}, "'length' must be an integer >= 16, got 8"),
])
def test_dataset_plugins_declare_their_parameters(name, params, message):
    from amrbench.registry import default_registry

    with pytest.raises(AmrbenchError, match=re_escape(message)):
        default_registry().create("dataset", name, params)


# --------------------------------------------------------------------------- command-line arguments
@pytest.mark.parametrize("seeds,message", [
    ("5-1", "--seeds 5-1: the range is empty (5 > 1)"),
    ("1,1", "--seeds '1,1': give distinct non-negative integers"),
    (",", "--seeds ',': give distinct"),
    ("a-b", "--seeds 'a-b': give distinct"),
])
def test_bad_seeds_are_blamed_on_the_option(write_suite, tmp_path, capsys, seeds, message):
    with pytest.raises(SystemExit) as info:
        main(["run", str(write_suite()), "--seeds", seeds, "--results", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err and "suite.yaml" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", ["--jobs", "--threads"])
def test_zero_workers_or_threads_are_refused_before_anything_is_written(write_suite, tmp_path, capsys, option):
    out = tmp_path / "out"
    assert main(["run", str(write_suite()), "--results", str(out), option, "0"]) == 2
    assert capsys.readouterr().err == f"amrbench: error: {option} must be at least 1\n"
    assert not out.exists()
