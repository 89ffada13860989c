"""Claims: validation with file:line, and verdicts on constructed records."""
import re

import numpy as np
import pytest

from amrbench import stats
from amrbench.api import AmrbenchError
from amrbench.claims import claim_line, evaluate_claims, verdicts_by_group
from amrbench.suite import expand, load_suite
from amrbench.render import render
from tests.conftest import TINY_SUITE

THREE_SEEDS = TINY_SUITE.replace("seeds: [0, 1]", "seeds: [0, 1, 2]")
# accuracy per (method, budget) and seed: at 25 % herding is ahead on every seed by
# 0.10-0.12 (paired CI of the difference in points: 11 ± 2.48); at 50 % the seeds disagree
VALUES = {
    ("uniform", "25%"): [0.50, 0.55, 0.60], ("herding", "25%"): [0.62, 0.66, 0.70],
    ("uniform", "50%"): [0.70, 0.80, 0.74], ("herding", "50%"): [0.76, 0.74, 0.78],
}
CLAIMS = """
claims:
  - label: herding beats uniform at 25 %
    better: herding
    than: [uniform]
    where: {budget: 0.25}
  - label: uniform beats herding at 25 %
    better: uniform
    than: all
    where: {budget: "25%"}
  - label: herding beats uniform everywhere
    better: herding
    than: uniform
  - label: herding beats uniform by 10 points
    better: herding
    than: [uniform]
    where: {budget: [0.25], model: cnn1d}
    margin: 10
"""


def records_for(suite, values=VALUES):
    return [{"key": c["key"], "status": "ok", "labels": c["labels"],
             "metrics": {"accuracy": values[(c["labels"]["method"], c["labels"]["budget"])][c["labels"]["seed"]]}}
            for c in expand(suite)]


def test_claims_hold_fail_or_stay_undecided(write_suite):
    suite = load_suite(write_suite(THREE_SEEDS + CLAIMS))
    results = evaluate_claims(suite, records_for(suite))
    assert [r.verdict for r in results] == ["holds", "fails", "undecided", "undecided"]
    holds, fails, mixed, margin = results
    (only,) = holds.comparisons
    assert only.place == "toy · cnn1d · 25%" and only.than == "uniform" and only.difference.n == 3
    # differences 12, 11, 10 points: mean 11, t-interval 11 ± 4.3027 / sqrt(3)
    assert only.difference.mean == pytest.approx(11.0)
    assert only.difference.low == pytest.approx(11 - 2.4841377, abs=1e-6)
    assert [c.verdict for c in mixed.comparisons] == ["holds", "undecided"]  # 25 % holds, 50 % not
    assert fails.comparisons[0].difference.high < 0
    assert margin.claim.margin == 10.0 and margin.comparisons[0].verdict == "undecided"  # 8.5 < 10 < 13.5


def test_margin_above_the_interval_fails(write_suite):
    suite = load_suite(write_suite(THREE_SEEDS + CLAIMS.replace("margin: 10", "margin: 20")))
    assert evaluate_claims(suite, records_for(suite))[-1].verdict == "fails"


# uniform − herding per seed: at 25 % -3, -4, -6 points (t = -4.91 on 2 degrees of
# freedom: below 0 at 95 %, t = 4.30, not at 97.5 %, t = 6.21); at 50 % +1, -1, +2
MARGINAL = {
    ("uniform", "25%"): [0.50, 0.55, 0.60], ("herding", "25%"): [0.53, 0.59, 0.66],
    ("uniform", "50%"): [0.70, 0.80, 0.74], ("herding", "50%"): [0.69, 0.81, 0.72],
}
UNIFORM_FIRST = """
claims:
  - label: uniform beats herding at both rates
    better: uniform
    than: herding
  - label: uniform beats herding at 25 %
    better: uniform
    than: herding
    where: {budget: 0.25}
"""


def test_a_claim_fails_only_when_a_comparison_fails_family_wise(write_suite):
    suite = load_suite(write_suite(THREE_SEEDS + UNIFORM_FIRST))
    both, alone = evaluate_claims(suite, records_for(suite, MARGINAL))
    # alone: one comparison, so the family-wise level is the plain one and the fail stands
    assert alone.verdict == "fails" and alone.familywise_level == pytest.approx(0.95)
    # both rates: two comparisons; the 25 % one fails at 95 % but not at 97.5 %
    at25, at50 = both.comparisons
    assert at25.verdict == "fails" and at50.verdict == "undecided"
    assert both.familywise_level == pytest.approx(0.975) and both.verdict == "undecided"
    mean, se = -13 / 3, np.std([-3, -4, -6], ddof=1) / np.sqrt(3)
    assert at25.familywise.mean == pytest.approx(mean)
    assert at25.familywise.high == pytest.approx(mean + 6.205347 * se, abs=1e-5)  # t(0.9875, 2)
    assert at25.difference.high == pytest.approx(mean + 4.302653 * se, abs=1e-5)  # t(0.975, 2)
    line = claim_line(both)
    assert "retested family-wise at 97.5 % (Bonferroni over 2 comparisons)" in line
    assert re.search(r"vs herding -4\.3+ \[-?[\d.]+, -0\.\d+\] \(n=3\) fails \(family-wise \[-[\d.]+, \+[\d.]+\] undecided\)", line)
    # the head names the retest and the failing comparison its family-wise interval
    assert claim_line(alone).count("family-wise") == 2


def test_claim_lines_in_every_format(write_suite):
    suite = load_suite(write_suite(THREE_SEEDS + CLAIMS))
    records = records_for(suite)
    line = claim_line(evaluate_claims(suite, records)[0])
    assert line == ("holds — herding beats uniform at 25 %; 95 % CI of the paired difference; 1 hold, 0 fail, "
                    "0 undecided: toy · cnn1d · 25%: vs uniform +11.00 [+8.52, +13.48] (n=3) holds")
    mixed = claim_line(evaluate_claims(suite, records)[2])
    assert "1 hold, 0 fail, 1 undecided: toy · cnn1d · 25%: vs uniform +11.00" in mixed
    assert re.search(r"holds; toy · cnn1d · 50%: vs uniform \+1\.33 \[-\d+\.\d+, \+\d+\.\d+\] \(n=3\) undecided$", mixed)
    markdown = render(suite, records, "markdown")
    assert "## Claims" in markdown and "- **holds** — herding beats uniform at 25 %" in markdown
    assert "- **undecided** — herding beats uniform by 10 points (margin 10)" in markdown
    assert "% claim: fails — uniform beats herding at 25 %" in render(suite, records, "latex")
    assert "claim,herding beats uniform at 25 %,holds," in render(suite, records, "csv")
    assert "<li>undecided — herding beats uniform everywhere" in render(suite, records, "html")


def test_lower_is_better_flips_the_difference(write_suite):
    suite = load_suite(write_suite(THREE_SEEDS + "table: {higher_is_better: false}\n" + CLAIMS))
    assert [r.verdict for r in evaluate_claims(suite, records_for(suite))][:2] == ["fails", "holds"]


def test_one_seed_is_undecided(write_suite):
    suite = load_suite(write_suite(TINY_SUITE.replace("seeds: [0, 1]", "seeds: [0]") + CLAIMS))
    result = evaluate_claims(suite, records_for(suite))[0]
    assert result.verdict == "undecided" and result.comparisons[0].difference.n == 1
    assert "vs uniform +12.00 (n=1) undecided" in claim_line(result)


# the same grid under the condense protocol, whose records hold a pooled list `accuracies`
POOLED = THREE_SEEDS.replace("protocol: select", "protocol: condense").replace(
    "methods: [uniform, herding]", "methods: [{name: coreset, params: {selector: uniform}, label: uniform},\n"
    "          {name: coreset, params: {selector: herding}, label: herding}]").replace(
    "rates: [0.25, 0.5]", "spc: [5, 10]").replace("settings: {", "settings: {eval_models: 2, ") + "table: {pool: accuracies}\n"
AS_RATE = {"SPC 5": "25%", "SPC 10": "50%"}


def pooled_records(suite):
    """VALUES per seed, with two evaluation models each: the second 0.01 higher."""
    records = []
    for c in expand(suite):
        v = VALUES[(c["labels"]["method"], AS_RATE[c["labels"]["budget"]])][c["labels"]["seed"]]
        records.append({"key": c["key"], "status": "ok", "labels": c["labels"],
                        "metrics": {"accuracy": v + 0.005, "accuracies": [v, v + 0.01]}})
    return records


def test_pooled_values_pair_by_seed_and_position(write_suite):
    claim = "claims:\n  - {label: herding wins at SPC 5, better: herding, than: [uniform], where: {budget: 5}}\n"
    suite = load_suite(write_suite(POOLED + claim))
    (comparison,) = evaluate_claims(suite, pooled_records(suite))[0].comparisons
    assert comparison.place == "toy · cnn1d · SPC 5"
    assert comparison.difference.n == 6 and comparison.difference.mean == pytest.approx(11.0)
    assert comparison.verdict == "holds"


def test_pair_positions_false_tests_per_seed_on_each_seeds_mean(write_suite):
    """Evaluation models that share a seed's condensed set are not independent pairs:
    with ``pair_positions: false`` a seed's pooled values average into one pair (n =
    seeds), the interval widens, and the cell still shows the pooled mean and std."""
    claim = "claims:\n  - {label: herding wins at SPC 5, better: herding, than: [uniform], where: {budget: 5}}\n"
    by_position = load_suite(write_suite(POOLED + claim))
    by_seed = load_suite(write_suite(POOLED.replace("table: {pool: accuracies}",
                                                    "table: {pool: accuracies, pair_positions: false}") + claim))
    (pooled,) = evaluate_claims(by_position, pooled_records(by_position))[0].comparisons
    (seeded,) = evaluate_claims(by_seed, pooled_records(by_seed))[0].comparisons
    assert seeded.difference.n == 3 and seeded.difference.mean == pytest.approx(pooled.difference.mean)
    herding = [VALUES[("herding", "25%")][s] - VALUES[("uniform", "25%")][s] for s in range(3)]
    _, low, high = stats.t_interval(np.array(herding) * 100)
    assert (seeded.difference.low, seeded.difference.high) == pytest.approx((low, high))
    assert seeded.difference.high - seeded.difference.low > pooled.difference.high - pooled.difference.low
    shown = render(by_seed, pooled_records(by_seed), "markdown")
    assert shown.count("±") == render(by_position, pooled_records(by_position), "markdown").count("±")
    assert "each pair is the mean of its accuracies" in shown


def test_pair_positions_false_with_one_seed_bolds_nothing_and_says_why(write_suite):
    path = write_suite(POOLED.replace("table: {pool: accuracies}",
                                      "table: {pool: accuracies, pair_positions: false, ci: 95}"))
    one_seed = load_suite(path, seeds=[0])
    shown = render(one_seed, pooled_records(one_seed), "markdown")
    assert "1 seed: no comparison, nothing in bold" in shown and "**" not in shown.split("## Claims")[0]
    three = load_suite(path)
    assert "the interval over the means of the seeds' accuracies" in render(three, pooled_records(three), "markdown")


@pytest.mark.parametrize("value", ["1", "yes please"])
def test_pair_positions_must_be_a_flag(write_suite, value):
    with pytest.raises(AmrbenchError, match=r"table\.pair_positions.*true or false"):
        load_suite(write_suite(POOLED.replace("table: {pool: accuracies}", f"table: {{pool: accuracies, "
                                                                             f"pair_positions: {value}}}")))


def test_no_records_is_undecided(write_suite):
    suite = load_suite(write_suite(THREE_SEEDS + CLAIMS))
    result = evaluate_claims(suite, [])[0]
    assert result.verdict == "undecided" and "without records yet" in claim_line(result)


def test_comparisons_without_records_are_counted_not_listed(write_suite):
    suite = load_suite(write_suite(THREE_SEEDS + CLAIMS))
    half_run = [r for r in records_for(suite) if r["labels"]["budget"] == "25%"]
    line = claim_line(evaluate_claims(suite, half_run)[2])  # herding beats uniform everywhere
    assert line.endswith("1 hold, 0 fail, 1 undecided (1 of them without records yet): "
                         "toy · cnn1d · 25%: vs uniform +11.00 [+8.52, +13.48] (n=3) holds")
    assert "50%" not in line
    nothing = claim_line(evaluate_claims(suite, [r for r in half_run if r["labels"]["method"] == "uniform"])[0])
    assert nothing.endswith("0 hold, 0 fail, 1 undecided (1 of them without records yet)")


def test_where_on_a_pooled_axis_filters_the_pairs(write_suite):
    # rows: budget, columns: method, seeds pooled into the pair key; where: seed is refused,
    # but dataset (a group axis) filters tables
    text = THREE_SEEDS + "table: {rows: budget, columns: method}\n" + """
claims:
  - label: more data helps herding
    better: 0.5
    than: ["25%"]
    where: {method: herding, dataset: toy}
"""
    suite = load_suite(write_suite(text))
    (result,) = evaluate_claims(suite, records_for(suite))
    assert [c.place for c in result.comparisons] == ["toy · cnn1d · herding"] and result.verdict == "holds"


def _line_of(text, needle):
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("claim,needle,message", [
    ("  - {label: x, better: nope, than: all}", "better: nope", r"'nope' is not a method of this suite.*uniform, herding"),
    ("  - {label: x, better: herding, than: [uniform, unifrom]}", "unifrom", "did you mean 'uniform'"),
    ("  - {label: x, better: herding, than: all, where: {budget: 0.3}}", "0.3", r"0.3 is not a budget.*25%, 50%"),
    ("  - {label: x, better: herding, than: all, where: {budget: SPC 10}}", "SPC 10", "give the spc or rate value"),
    ("  - {label: x, better: herding, than: all, where: {method: uniform}}", "method: uniform", "the rows axis"),
    ("  - {label: x, better: herding, than: all, where: {dataset: toy2}}", "toy2", "not a dataset"),
    ("  - {label: x, better: herding, than: [herding]}", "than: [herding]", "not compared with itself"),
    ("  - {label: x, better: herding, than: all, margn: 1}", "margn", "did you mean 'margin'"),
    ("  - {label: x, better: herding, than: all, margin: lots}", "lots", "must be a number"),
    ("  - {label: x, better: herding}", "label: x", "missing 'than'"),
])
def test_bad_claims_name_file_and_line(write_suite, claim, needle, message):
    text = THREE_SEEDS + "claims:\n" + claim + "\n"
    path = write_suite(text)
    with pytest.raises(AmrbenchError, match=message) as info:
        load_suite(path)
    assert str(info.value).startswith(f"{path}:{_line_of(text, needle)}: claims.0")


def test_bad_ci_level_is_an_error(write_suite):
    with pytest.raises(AmrbenchError, match=r"suite.yaml:\d+: table.ci: 120 must be a confidence level"):
        load_suite(write_suite(THREE_SEEDS + "table: {ci: 120}\n"))


def test_claims_of_a_profile_are_checked_against_its_labels(write_suite):
    text = THREE_SEEDS + CLAIMS + "profiles:\n  quick: {methods: [uniform]}\n"
    with pytest.raises(AmrbenchError, match=re.escape("'herding' is not a method")):
        load_suite(write_suite(text))


def test_claims_over_several_tables_get_a_tally_per_table(write_suite):
    suite = load_suite(write_suite(THREE_SEEDS.replace("models: [cnn1d]", "models: [cnn1d, cnn2d]") + CLAIMS))
    # cnn2d: herding behind uniform on every seed at 25 % (-11 points), tied-ish at 50 %
    flipped = {("uniform", "25%"): VALUES[("herding", "25%")], ("herding", "25%"): VALUES[("uniform", "25%")],
               ("uniform", "50%"): VALUES[("uniform", "50%")], ("herding", "50%"): VALUES[("herding", "50%")]}
    records = [{**r, "metrics": {"accuracy": flipped[(r["labels"]["method"], r["labels"]["budget"])][r["labels"]["seed"]]}}
               if r["labels"]["model"] == "cnn2d" else r for r in records_for(suite)]
    header, rows = verdicts_by_group(evaluate_claims(suite, records))
    assert header == ["Claim", "toy · cnn1d", "toy · cnn2d"]
    assert rows == [["herding beats uniform at 25 %", "1 / 0 / 0", "0 / 1 / 0"],
                    ["uniform beats herding at 25 %", "0 / 1 / 0", "1 / 0 / 0"],
                    ["herding beats uniform everywhere", "1 / 0 / 1", "0 / 1 / 1"],
                    ["herding beats uniform by 10 points", "0 / 0 / 1", "–"]]
    assert "| herding beats uniform at 25 %" in render(suite, records, "markdown")
    assert re.search(r"<td>herding beats uniform at 25 % *</td><td>1 / 0 / 0 *</td><td>0 / 1 / 0 *</td>",
                     render(suite, records, "html"))


def test_claims_over_one_table_get_no_tally_table(write_suite):
    suite = load_suite(write_suite(THREE_SEEDS + CLAIMS))
    assert verdicts_by_group(evaluate_claims(suite, records_for(suite))) == ([], [])
    assert "Comparisons per table" not in render(suite, records_for(suite), "markdown")
