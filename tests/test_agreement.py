"""``amrbench agreement``: Kendall τ between two profiles' rankings per table column, set
against the τ between seeds of the first, on records written by hand."""
import math

import pytest

from amrbench import agreement
from amrbench.cli import main
from amrbench.store import RecordStore
from amrbench.suite import expand, load_suite

SUITE = """
name: agree
protocol: select
datasets:
  - name: toy
    params: {per_class_per_snr: 24, snr_values: [10, 18], length: 64}
methods: [uniform, herding, kcenter, entropy]
rates: [0.25, 0.5]
models: [cnn1d]
seeds: [0, 1, 2]
train: {epochs: 1, batch_size: 32}
settings: {scoring: {epochs: 1}}
profiles:
  cut: {}
  uncut: {train: {epochs: 2}, seeds: [0]}
  elsewhere: {train: {epochs: 2}, seeds: [7]}
"""
METHODS = ["uniform", "herding", "kcenter", "entropy"]
IDENTICAL = [0.4, 0.5, 0.6, 0.7]
REVERSED = [0.7, 0.6, 0.5, 0.4]
ONE_SWAP = [0.4, 0.5, 0.7, 0.6]  # kcenter and entropy swapped: 5 concordant, 1 discordant pair: τ = 2/3
# profile cut, accuracy per (budget, seed) in METHODS order
CUT = {("25%", 0): IDENTICAL, ("25%", 1): IDENTICAL, ("25%", 2): ONE_SWAP,
       ("50%", 0): IDENTICAL, ("50%", 1): IDENTICAL, ("50%", 2): ONE_SWAP}


def write_records(path, profile, values, skip=()):
    """Records of ``profile``'s grid with accuracy ``values[(budget, seed)][method]``
    (cells in ``skip``, as (method, budget), left out) in the profile's results folder."""
    suite = load_suite(path, profile=profile)
    store = RecordStore(path.parent / "results" / f"agree-{profile}" / "records.jsonl")
    for cell in expand(suite):
        labels = cell["labels"]
        if (labels["method"], labels["budget"]) in skip or (labels["budget"], labels["seed"]) not in values:
            continue
        accuracy = values[(labels["budget"], labels["seed"])][METHODS.index(labels["method"])]
        store.append({"key": cell["key"], "suite": "agree", "status": "ok", "labels": labels,
                      "metrics": {"accuracy": accuracy, "macro_f1": 1 - accuracy}})
    return suite, store


def checks_of(write_suite, uncut, skip=()):
    path = write_suite(SUITE)
    suite_a, store_a = write_records(path, "cut", CUT)
    suite_b, store_b = write_records(path, "uncut", uncut, skip)
    found = agreement.compare(suite_a, store_a.read(), suite_b, store_b.read())
    return {c.column: c for c in found.checks}, found


# exact two-sided p of n = 4: 2 x (1 of 24 orders) for τ = ±1, 2 x (4 of 24) for τ = 2/3
@pytest.mark.parametrize("uncut, tau, p", [(IDENTICAL, 1.0, 1 / 12), (REVERSED, -1.0, 1 / 12),
                                           (ONE_SWAP, 2 / 3, 1 / 3)])
def test_known_answer_tau(write_suite, uncut, tau, p):
    checks, _ = checks_of(write_suite, {("25%", 0): [v + 0.1 for v in uncut], ("50%", 0): uncut})
    assert set(checks) == {"25%", "50%"}
    for check in checks.values():
        assert check.block == ("toy", "cnn1d", 0) and check.rows == METHODS
        assert check.tau == pytest.approx(tau) and check.p == pytest.approx(p)


def test_seed_baseline_from_the_other_seeds_and_the_verdict_rule(write_suite):
    # seed baseline per column: τ(seed 0, seed 1) = 1, τ(seed 0, seed 2) = 2/3: mean 5/6, min 2/3
    checks, found = checks_of(write_suite, {("25%", 0): IDENTICAL, ("50%", 0): ONE_SWAP})
    for check in checks.values():
        assert check.seed_taus == {1: pytest.approx(1.0), 2: pytest.approx(2 / 3)}
        assert check.baseline_mean == pytest.approx(5 / 6) and check.baseline_min == pytest.approx(2 / 3)
    assert checks["25%"].verdict == "kept"  # τ = 1 ≥ 5/6
    assert checks["50%"].verdict == "changed"  # τ = 2/3 < 5/6, though it equals the min: the rule is the mean
    assert found.notes == []


def test_the_verdict_rule():
    assert agreement.verdict(0.5, [0.5, 0.5]) == "kept"
    assert agreement.verdict(0.4999, [0.4, 0.6]) == "changed"
    assert agreement.verdict(0.6, [0.2, math.nan]) == "kept"  # a seed pair without τ does not count
    assert agreement.verdict(0.6, []) == "no baseline"
    assert agreement.verdict(math.nan, [0.2]) == "no τ"


def test_ties_use_tau_b():
    from scipy import stats

    a = {"x": 1.0, "y": 1.0, "z": 2.0, "w": 3.0}
    b = {"x": 1.0, "y": 2.0, "z": 2.0, "w": 4.0}
    tau, p = agreement.kendall(a, b, list(a))
    expected = stats.kendalltau([1, 1, 2, 3], [1, 2, 2, 4], variant="b")
    assert tau == pytest.approx(expected.statistic) and 0 < tau < 1 and p == pytest.approx(expected.pvalue)
    assert math.isnan(agreement.kendall(a, b, ["x"])[0])
    assert math.isnan(agreement.kendall(a, b, ["x", "w"])[0])  # two rows: τ would be ±1 whatever the data
    assert not math.isnan(agreement.kendall(a, b, ["x", "z", "w"])[0])


def test_a_row_missing_in_one_profile_is_dropped_with_a_note(write_suite):
    checks, found = checks_of(write_suite, {("25%", 0): IDENTICAL, ("50%", 0): IDENTICAL},
                              skip={("entropy", "50%")})
    assert checks["25%"].rows == METHODS
    assert checks["50%"].rows == ["uniform", "herding", "kcenter"] and checks["50%"].tau == pytest.approx(1.0)
    assert checks["50%"].dropped == {"uncut": ["entropy"]}
    # the baseline is computed on the same three rows: seed 2's swap of kcenter and entropy is gone
    assert checks["50%"].seed_taus == {1: pytest.approx(1.0), 2: pytest.approx(1.0)}
    assert found.notes == ["toy · cnn1d · seed 0, 50%: dropped entropy (not in profile uncut)"]


def test_a_column_only_one_profile_holds_is_left_out_with_a_note(write_suite):
    checks, found = checks_of(write_suite, {("25%", 0): IDENTICAL, ("50%", 0): IDENTICAL},
                              skip={(m, "50%") for m in METHODS})
    assert list(checks) == ["25%"]
    assert found.notes == ["toy · cnn1d · seed 0, 50%: not in profile uncut; column left out"]


# --------------------------------------------------------------------------- the command
def cli_setup(write_suite, uncut=None):
    path = write_suite(SUITE)
    write_records(path, "cut", CUT)
    write_records(path, "uncut", uncut or {("25%", 0): IDENTICAL, ("50%", 0): ONE_SWAP})
    return path


def test_the_command_prints_the_table_the_rule_and_a_summary(write_suite, capsys):
    path = cli_setup(write_suite)  # default folders: ./results/agree-<profile> (the test runs in tmp_path)
    assert main(["agreement", str(path), "--profile", "cut", "--against", "uncut"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "Verdict: kept when τ(A, B) ≥ the mean seed-baseline τ, else changed." in lines[0]
    rows = [line for line in lines if line.startswith("| toy")]
    assert [[c.strip() for c in row.strip("|").split("|")] for row in rows] == [
        ["toy · cnn1d · seed 0", "25%", "4", "1.000", "0.0833", "0.833", "0.667", "1, 2", "kept"],
        ["toy · cnn1d · seed 0", "50%", "4", "0.667", "0.333", "0.833", "0.667", "1, 2", "changed"]]
    assert "| block" in out and "τ(cut, uncut)" in out
    assert lines[-1].startswith("cut vs uncut: 1 of 2 columns kept, 1 changed on 1 block(s) (kept when")


def test_the_command_ranks_by_another_metric(write_suite, tmp_path, capsys):
    path = cli_setup(write_suite)
    results = tmp_path / "results"
    assert main(["agreement", str(path), "--profile", "cut", "--against", "uncut", "--metric", "macro_f1",
                 "--results-a", str(results / "agree-cut"), "--results-b", str(results / "agree-uncut")]) == 0
    out = capsys.readouterr().out
    assert "rows' macro_f1 per budget" in out and "1 of 2 columns kept" in out  # 1 - accuracy: the same ranks


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("amrbench: error: ")
    return err


def test_an_unknown_profile_is_one_line(write_suite, capsys):
    path = cli_setup(write_suite)
    assert main(["agreement", str(path), "--profile", "cut", "--against", "uncutt"]) == 2
    err = error_line(capsys)
    assert "--against 'uncutt' is not one of its profiles" in err and "did you mean 'uncut'" in err


def test_missing_records_name_the_folder_and_the_run(write_suite, tmp_path, capsys):
    path = write_suite(SUITE)
    write_records(path, "cut", CUT)
    assert main(["agreement", str(path), "--profile", "cut", "--against", "uncut"]) == 2
    err = error_line(capsys)
    assert "agree-uncut/records.jsonl: no records of profile 'uncut'" in err
    assert f"run `amrbench run {path} --profile uncut` first" in err


def test_records_of_another_profile_only_are_named(write_suite, tmp_path, capsys):
    path = cli_setup(write_suite)
    assert main(["agreement", str(path), "--profile", "cut", "--against", "elsewhere",
                 "--results-b", str(tmp_path / "results" / "agree-uncut")]) == 2
    err = error_line(capsys)
    assert "no records of profile 'elsewhere'" in err and "records exist for: --profile uncut" in err


def test_no_common_block_is_one_line(write_suite, tmp_path, capsys):
    path = cli_setup(write_suite)
    write_records(path, "elsewhere", {("25%", 7): IDENTICAL, ("50%", 7): IDENTICAL})
    assert main(["agreement", str(path), "--profile", "cut", "--against", "elsewhere"]) == 2
    err = error_line(capsys)
    assert "agree-cut and" in err and "agree-elsewhere: no block (dataset x model x seed) in both" in err
    assert "A has: toy · cnn1d · seed 0; toy · cnn1d · seed 1; toy · cnn1d · seed 2" in err
    assert "B has: toy · cnn1d · seed 7" in err and f"run `amrbench run {path} --profile elsewhere`" in err


def test_an_unknown_metric_is_one_line(write_suite, capsys):
    path = cli_setup(write_suite)
    assert main(["agreement", str(path), "--profile", "cut", "--against", "uncut", "--metric", "acuracy"]) == 2
    err = error_line(capsys)
    assert "--metric 'acuracy' is no number of its records" in err and "did you mean 'accuracy'" in err


def test_places_rank_best_first_with_ties_averaged():
    assert agreement.places({"a": 0.5, "b": 0.7, "c": 0.7, "d": 0.1}) == {"a": 3.0, "b": 1.5, "c": 1.5, "d": 4.0}
    assert agreement.places({"a": 0.5, "b": 0.7, "d": 0.1}, higher_is_better=False) == {"a": 2.0, "b": 3.0, "d": 1.0}


def test_places_show_which_rows_moved_in_a_and_its_other_seeds(write_suite, capsys):
    path = cli_setup(write_suite)  # uncut 50%: ONE_SWAP; cut seeds 0, 1: IDENTICAL, seed 2: ONE_SWAP
    assert main(["agreement", str(path), "--profile", "cut", "--against", "uncut", "--places"]) == 0
    out = capsys.readouterr().out
    section = out[out.index("toy · cnn1d · seed 0, 50%: place (value), 1 = best"):]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["method", "uncut", "cut seed 0", "cut seed 1",
                                                                   "cut seed 2"]
    # rows in the uncut order (kcenter 0.7 first); higher accuracy is the better place
    assert [[c.strip() for c in line.strip("|").split("|")] for line in lines[1:]] == [
        ["kcenter", "1 (0.7)", "2 (0.6)", "2 (0.6)", "1 (0.7)"],
        ["entropy", "2 (0.6)", "1 (0.7)", "1 (0.7)", "2 (0.6)"],
        ["herding", "3 (0.5)", "3 (0.5)", "3 (0.5)", "3 (0.5)"],
        ["uniform", "4 (0.4)", "4 (0.4)", "4 (0.4)", "4 (0.4)"]]
    assert main(["agreement", str(path), "--profile", "cut", "--against", "uncut"]) == 0
    assert "place (value)" not in capsys.readouterr().out  # only with --places


# --------------------------------------------------------------------------- the paper's table
PUBLISHED = """
published:
  source: "Paper, Table 9"
  scale: 0.01
  columns: ["25%", "50%", "75%"]
  blocks:
    - where: {dataset: toy, model: cnn1d}
      rows:
        uniform: [40, 70, 1]
        herding: [50, 60, 2]
        kcenter: [60, 40, 3]
        entropy: [70, 50, 4]
        margin: [10, 10, 10]
    - where: {dataset: other}
      rows:
        uniform: [1, 2, 3]
"""


def test_against_the_published_table(write_suite):
    path = write_suite(SUITE + PUBLISHED)
    suite, store = write_records(path, "cut", CUT)
    found = agreement.compare_published(suite, store.read())
    checks = {(c.block, c.column): c for c in found.checks}
    assert set(checks) == {(("toy", "cnn1d", s), col) for s in (0, 1, 2) for col in ("25%", "50%")}
    assert checks[(("toy", "cnn1d", 0), "25%")].tau == pytest.approx(1.0)  # the paper's 25 % order is IDENTICAL's
    assert checks[(("toy", "cnn1d", 0), "50%")].tau == pytest.approx(-2 / 3)  # 50 %: 5 of 6 pairs reversed
    assert checks[(("toy", "cnn1d", 2), "50%")].tau == pytest.approx(-1.0)  # and seed 2's swap reverses the sixth
    assert checks[(("toy", "cnn1d", 2), "25%")].tau == pytest.approx(2 / 3)  # seed 2 swaps two rows
    assert checks[(("toy", "cnn1d", 0), "25%")].values["published"]["herding"] == pytest.approx(0.5)  # x scale
    # seed baseline as against a profile: the block's seed against the run's other seeds
    assert checks[(("toy", "cnn1d", 0), "25%")].seed_taus == {1: pytest.approx(1.0), 2: pytest.approx(2 / 3)}
    assert [c.verdict for c in found.checks] == ["kept", "changed"] * 3  # seed 2's τ 2/3 = its baseline's mean
    assert found.source == "Paper, Table 9" and found.profile_b == "published"
    assert "published column '75%': not a column of this profile; left out" in found.notes
    assert "published block other: no dataset 'other' in this profile; left out" in found.notes
    assert "published block toy · cnn1d: row 'margin' not in this profile; left out" in found.notes


def test_the_command_against_published(write_suite, capsys):
    path = write_suite(SUITE + PUBLISHED)
    write_records(path, "cut", CUT)
    assert main(["agreement", str(path), "--profile", "cut", "--against", "published"]) == 0
    out = capsys.readouterr().out
    assert "Profile published: the paper's table in the suite, Paper, Table 9." in out
    assert "τ(cut, published)" in out
    assert out.splitlines()[-1].startswith("cut vs published: 3 of 6 columns kept, 3 changed on 3 block(s)")
    assert out.splitlines()[-1].endswith("mean τ(cut, published) 0.056")  # (1 - 2/3 + 1 - 2/3 + 2/3 - 1) / 6


def test_against_published_without_the_block_is_one_line(write_suite, capsys):
    path = write_suite(SUITE)
    write_records(path, "cut", CUT)
    assert main(["agreement", str(path), "--profile", "cut", "--against", "published"]) == 2
    err = error_line(capsys)
    assert "no published: block to compare with" in err and "Agreement with the paper" in err


@pytest.mark.parametrize("change, message", [
    (("scale: 0.01", "scale: -1"), "published.scale: -1 must be a positive number"),
    (("herding: [50, 60, 2]", "herding: [50, 60]"), "published.blocks.0.rows.herding: must be a list of 3 numbers"),
    (("where: {dataset: other}", "where: {budget: other}"), "published.blocks.1.where.budget: not an axis a block"),
    (("  columns:", "  colums:"), "published.colums: unknown key (did you mean 'columns'?)"),
    (("where: {dataset: other}", "where: {dataset: [toy, other]}"), "published.blocks.1.where.dataset: must be one label"),
    (("where: {dataset: other}", "where: {model: cnn1d}"), "published.blocks.1.where: matches the same blocks as blocks[0]"),
    (("where: {dataset: other}", "where: {metric: accuracy}"), "published.blocks.1.where.metric: not an axis a block"),
])
def test_a_malformed_published_block_is_one_line_naming_the_key(write_suite, change, message):
    from amrbench.api import AmrbenchError

    path = write_suite(SUITE + PUBLISHED.replace(*change))
    with pytest.raises(AmrbenchError) as exc:
        load_suite(path)
    assert message in str(exc.value) and f"{path.name}:" in str(exc.value) and "\n" not in str(exc.value)


def test_a_profile_may_not_be_named_published(write_suite):
    from amrbench.api import AmrbenchError

    path = write_suite(SUITE + "  published: {seeds: [0]}\n")
    with pytest.raises(AmrbenchError, match=r"profiles\.published: is reserved for the paper's table"):
        load_suite(path)


def test_a_block_without_a_budget_reads_without_an_empty_label():
    assert agreement.block_text(["dataset", "budget", "model", "seed"], ("TorchSig6", "", "cnn1d", 0)) == \
        "TorchSig6 · cnn1d · seed 0"


def test_against_published_refuses_another_metric_and_names_why_nothing_matched(write_suite, capsys):
    path = write_suite(SUITE + PUBLISHED.replace('["25%", "50%", "75%"]', "[0.25, 0.5, 0.75]"))
    write_records(path, "cut", CUT)
    assert main(["agreement", str(path), "--profile", "cut", "--against", "published", "--metric", "macro_f1"]) == 2
    assert "--metric does not go with --against published" in error_line(capsys)
    assert main(["agreement", str(path), "--profile", "cut", "--against", "published"]) == 2
    err = error_line(capsys)  # the columns written as rates, not as the table's labels
    assert "no block of the run (toy · cnn1d · seed 0;" in err and "published column '0.25': not a column" in err
