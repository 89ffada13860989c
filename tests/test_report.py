"""`amrbench report`: a static HTML site of results folders, checked as files (every
link and image resolves, nothing loads from the network, same records -> same bytes)
and in a real browser (headless Chromium: images decode, no console errors)."""
import filecmp
import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

import pytest

from amrbench import figures
from amrbench.basics import AmrbenchError
from amrbench.cli import main
from amrbench.leaderboard import build_leaderboard
from amrbench.report import LOSS_FOLDER, MARKER, build_report
from amrbench.store import RecordStore, write_suite_meta
from amrbench.suite import expand, load_suite
from amrbench.render import render
from tests.conftest import REPO, TINY_SUITE

SELECT_SUITE = TINY_SUITE.replace("name: tiny", "name: tiny-select").replace(
    "[uniform, herding]", "[uniform, herding, kcenter]").replace("seeds: [0, 1]", "seeds: [0, 1, 2]") + """
table: {ci: 95}
claims:
  - label: herding beats uniform at 25 %
    better: herding
    than: [uniform]
    where: {budget: 0.25}
"""
# accuracy per (method, budget) and seed: herding ahead of uniform at 25 % on every seed
SELECT_VALUES = {
    ("uniform", "25%"): [0.50, 0.55, 0.60], ("herding", "25%"): [0.62, 0.66, 0.70],
    ("uniform", "50%"): [0.70, 0.80, 0.74], ("herding", "50%"): [0.76, 0.74, 0.78],
    ("kcenter", "25%"): [0.56, 0.58, 0.57], ("kcenter", "50%"): [0.90, 0.88, 0.86],
}
CONDENSE_SUITE = """
name: tiny-condense
protocol: condense
datasets:
  - name: toy
    params: {per_class_per_snr: 24, length: 64}
methods:
  - {name: coreset, params: {selector: uniform}, label: Random}
  - {name: dm, params: {iterations: 8}, label: DM}
spc: [2, 4]
models: [cnn1d]
seeds: [0, 1]
train: {epochs: 1}
settings: {eval_models: 2}
table: {pool: accuracies}
"""
ENV = {"amrbench": "0.1.0", "cpu": "Test CPU 9000", "cpu_capability": "AVX2", "git": "feedbee", "host": "lab",
       "numpy": "2.4.6", "python": "3.11.7", "threads": 1, "torch": "2.13.0+cpu"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--hide-scrollbars"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium)")


# --------------------------------------------------------------------------- a results root of its own
def record(cell, metrics, seconds=1.5):
    return {"key": cell["key"], "status": "ok", "labels": cell["labels"], "metrics": metrics, "env": ENV,
            "device": "cpu", "started_at": "2026-01-02T03:04:05+0000", "wall_time_s": seconds, "suite": cell["suite"]}


def select_records(suite):
    return [record(c, {"accuracy": SELECT_VALUES[(c["labels"]["method"], c["labels"]["budget"])][c["labels"]["seed"]],
                       "n_train": 480})
            for c in expand(suite)]


def condense_records(suite):
    """Accuracies per evaluation model; DM's records carry a loss curve (seed 1 at SPC 4
    unconverged), Random's none."""
    out = []
    for c in expand(suite):
        labels = c["labels"]
        base = 0.4 + 0.1 * (labels["method"] == "DM") + 0.05 * labels["seed"] + 0.02 * (labels["budget"] == "SPC 4")
        metrics = {"accuracy": base + 0.005, "accuracies": [base, base + 0.01], "n_train": 480}
        if labels["method"] == "DM":
            metrics["loss_curve"] = [[i, 2.0 / i + 0.1 * labels["seed"]] for i in range(1, 9)]
            metrics["converged"] = not (labels["seed"] == 1 and labels["budget"] == "SPC 4")
        out.append(record(c, metrics))
    return out


def store_folder(folder: Path, suite_path: Path, records: list) -> None:
    write_suite_meta(folder, str(suite_path), None)
    store = RecordStore(folder / "records.jsonl")
    for r in records:
        store.append(r)


def small_png(path: Path) -> None:
    plt = figures._pyplot()
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [1, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=50, metadata=figures.STABLE_PNG)
    plt.close(fig)


def make_results(root: Path) -> SimpleNamespace:
    """A results root: a select suite (records, curves, CD diagram, an explainer-style
    figures/ folder), a condense suite (loss curves), a figures-only folder and a folder
    with only suite.json."""
    suites = root.parent / "suites"
    suites.mkdir(parents=True, exist_ok=True)
    (suites / "select.yaml").write_text(SELECT_SUITE)
    (suites / "condense.yaml").write_text(CONDENSE_SUITE)
    select, condense = load_suite(suites / "select.yaml"), load_suite(suites / "condense.yaml")
    store_folder(root / "tiny-select", suites / "select.yaml", select_records(select))
    figures.write_figures(select, select_records(select), root / "tiny-select")
    small_png(root / "tiny-select" / "figures" / "saliency grid.png")  # a space: links must be quoted
    store_folder(root / "tiny-condense", suites / "condense.yaml", condense_records(condense))
    figures.write_figures(condense, condense_records(condense), root / "tiny-condense")
    small_png(root / "loose-figures" / "figures" / "a.png")
    write_suite_meta(root / "not-yet", str(suites / "select.yaml"), None)
    return SimpleNamespace(root=root, suites=suites, select=select, condense=condense)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One report of a generated results root, shared by the file checks below."""
    base = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AMRBENCH_CACHE", str(base / "cache"))
        made = make_results(base / "results")
        made.result = build_report(made.root, base / "site", made.suites)
    made.out = base / "site"
    return made


# --------------------------------------------------------------------------- checking a site as files
class Links(HTMLParser):
    """Every src and href of a page, and its element ids."""

    def __init__(self):
        super().__init__()
        self.urls, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.urls.append(value)
            if name == "id":
                self.ids.add(value)


def parse(page: Path) -> Links:
    links = Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def check_links(out: Path) -> int:
    """Every src/href of every page is a file of the site (and an anchor of it when it
    names one); nothing from the network. Returns the number of links checked."""
    checked = 0
    for page in sorted(out.rglob("*.html")):
        for url in parse(page).urls:
            parts = urlsplit(url)
            if parts.scheme == "data":
                continue
            assert not parts.scheme and not parts.netloc, f"{page}: {url} loads from the network"
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            assert target.is_file() and out.resolve() in target.parents, f"{page}: {url} does not resolve"
            if parts.fragment:
                assert parts.fragment in parse(target).ids, f"{page}: no #{parts.fragment} in {target}"
            checked += 1
    return checked


def test_index_links_a_page_per_results_folder(site):
    index = (site.out / "index.html").read_text()
    assert [p.folder for p in site.result.pages] == ["loose-figures", "tiny-condense", "tiny-select"]
    for folder in ("tiny-select", "tiny-condense", "loose-figures"):
        assert f'href="{folder}/index.html"' in index and (site.out / folder / "index.html").is_file()
    assert "Folders with neither records nor figures yet" in index and "not-yet/" in index
    assert not site.result.problems
    assert re.search(r'class="verdict holds">1 hold<', index)  # the select suite's claim holds


def test_suite_page_has_the_tables_scale_figures_and_provenance(site):
    page = (site.out / "tiny-select" / "index.html").read_text()
    rendered = render(site.select, select_records(site.select), "html")
    for table in re.findall(r"<table>.*?</table>", rendered, flags=re.S):  # amrbench.tables' own HTML tables
        assert table in page
    assert "t-interval" in page and "Friedman" in page and "holds — herding beats uniform at 25 %" in page
    assert "<dt>cells stored</dt><dd>18 of 18</dd>" in page and "<dt>seeds</dt><dd>0, 1, 2</dd>" in page
    assert "<dt>compute</dt><dd>27 s of cell wall time" in page  # 18 cells x 1.5 s
    for name in ("curve-toy-cnn1d.png", "curve-toy-cnn1d.csv"):  # copied byte for byte
        assert filecmp.cmp(site.root / "tiny-select" / name, site.out / "tiny-select" / name, shallow=False)
    assert 'src="figures/saliency%20grid.png"' in page and "Selectors&#39; figures" in page
    details = page[page.index('id="provenance"'):]
    assert "<details>" in details and "feedbee" in details and "Test CPU 9000" in details
    assert details.count("2026-01-02T03:04:05+0000") == 18  # one row per record, in the grid's order
    cells = re.findall(r"<tr><td>[0-9a-f]{12}</td><td>([^<]*)</td>", details)
    assert cells[:2] == ["toy · cnn1d · uniform · 25% · seed 0", "toy · cnn1d · uniform · 25% · seed 1"]


def test_condense_page_draws_the_loss_curves(site):
    page = (site.out / "tiny-condense" / "index.html").read_text()
    png = site.out / "tiny-condense" / LOSS_FOLDER / "toy-cnn1d.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"matplotlib" not in png.read_bytes()
    assert f'src="{LOSS_FOLDER}/toy-cnn1d.png"' in page and "Condensation loss curves" in page
    assert "† unconverged condensation" in page  # the protocol's table mark, from amrbench.tables


def test_a_condense_results_folder_holds_its_loss_curves_and_the_page_shows_them_once(site):
    folder = site.root / "tiny-condense"
    assert [p.name for p in folder.glob("loss-*.png")] == ["loss-toy-cnn1d.png"]
    assert not list((site.root / "tiny-select").glob("loss-*"))  # no loss_curve in a select suite's records
    page = (site.out / "tiny-condense" / "index.html").read_text()
    assert page.count(f'src="{LOSS_FOLDER}/toy-cnn1d.png"') == 1 and "loss-toy-cnn1d.png" not in page
    assert (folder / "loss-toy-cnn1d.png").read_bytes() == \
        (site.out / "tiny-condense" / LOSS_FOLDER / "toy-cnn1d.png").read_bytes()


def test_evaluation_models_sharing_a_condensation_get_one_loss_figure(tmp_path, monkeypatch):
    path = tmp_path / "cross.yaml"
    path.write_text(CONDENSE_SUITE.replace("models: [cnn1d]", "models: [cnn1d, cnn2d]"))
    suite = load_suite(path)
    records = condense_records(suite)
    for r in records:  # both evaluation models trained on sets condensed with cnn1d
        if "loss_curve" in r["metrics"]:
            r["metrics"]["condense_net"] = "cnn1d"
    drawn = []
    monkeypatch.setattr(figures, "_plot_losses", lambda rs, order, title, p: drawn.append((rs, title, p.name)))
    figures.write_loss_curves(suite, records, tmp_path)
    assert [(title, name) for _, title, name in drawn] == [("toy · condensed with cnn1d", "loss-toy-cnn1d.png")]
    lines = [(r["labels"]["method"], r["labels"]["budget"], r["labels"]["seed"]) for r in drawn[0][0]]
    assert sorted(lines) == sorted({(m, b, s) for m in ["DM"] for b in ["SPC 2", "SPC 4"] for s in [0, 1]})
    assert all(r["labels"]["model"] == "cnn1d" for r in drawn[0][0])  # one line per condensation: the first model's


def test_every_link_and_image_resolves_offline(site):
    assert check_links(site.out) > 20
    for page in site.out.rglob("*.html"):
        text = page.read_text()
        assert "http://" not in text and "https://" not in text and "<script" not in text


def test_the_same_records_give_the_same_bytes(site, tmp_path):
    again = build_report(site.root, tmp_path / "again", site.suites)
    names = sorted(p.relative_to(site.out).as_posix() for p in site.out.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(again.out).as_posix() for p in again.out.rglob("*") if p.is_file())
    assert names[0] == MARKER and (site.out / MARKER).read_text().splitlines() == names[1:]
    for name in names:
        assert (site.out / name).read_bytes() == (again.out / name).read_bytes(), name


def copy_results(site, dest: Path) -> Path:
    """A copy of the shared results root to change (its suite.json name the same suites)."""
    shutil.copytree(site.root, dest)
    return dest


def test_a_rerun_removes_only_what_it_wrote_before(site, tmp_path):
    root, out = copy_results(site, tmp_path / "results"), tmp_path / "site"
    build_report(root, out, site.suites)
    (out / "notes.txt").write_text("mine")  # the user's file in the site
    (root / "loose-figures" / "figures" / "a.png").unlink()
    small_png(root / "loose-figures" / "figures" / "b.png")
    shutil.rmtree(root / "tiny-condense")
    build_report(root, out, site.suites)
    assert not (out / "loose-figures" / "figures" / "a.png").exists() and not (out / "tiny-condense").exists()
    assert (out / "loose-figures" / "figures" / "b.png").exists() and (out / "notes.txt").read_text() == "mine"


def test_out_folder_of_other_files_is_refused(site, tmp_path, capsys, monkeypatch):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("x")
    with pytest.raises(AmrbenchError, match="busy: the folder holds files that `amrbench report` did not write"):
        build_report(site.root, tmp_path / "busy", site.suites)
    assert main(["report", "--results-root", str(site.root), "--out", str(tmp_path / "busy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("amrbench: error: --out") and "give an empty or new folder" in err
    assert main(["report", "--results-root", str(tmp_path / "nowhere")]) == 2
    monkeypatch.setenv("AMRBENCH_RESULTS", str(tmp_path / "elsewhere"))
    assert main(["report"]) == 2 and "--results-root " + str(tmp_path / "elsewhere") in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["thesis.tex"]


def test_cli_reports_a_folder_it_cannot_render_and_renders_the_rest(site, tmp_path, capsys):
    root = copy_results(site, tmp_path / "results")
    store_folder(root / "lost-suite", tmp_path / "gone.yaml", select_records(site.select))
    assert main(["report", "--results-root", str(root), "--suites", str(site.suites)]) == 1
    captured = capsys.readouterr()
    assert "amrbench: warning: lost-suite: not in the report" in captured.err and "gone.yaml" in captured.err
    assert "wrote 3 page(s)" in captured.out and (root / "site" / "tiny-select" / "index.html").exists()
    assert "lost-suite/" in (root / "site" / "index.html").read_text()  # listed under "Not in the report"


def test_leaderboard_links_to_the_report(tmp_path):
    (tmp_path / "results").mkdir()
    assert "`amrbench report` writes it to `results/site/`" in build_leaderboard(tmp_path / "results", tmp_path)


# --------------------------------------------------------------------------- in a real browser
CHECKER = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>check</title></head><body><pre id="result">pending</pre>
{frames}
<script>
window.addEventListener("load", function () {{
  var out = [];
  document.querySelectorAll("iframe").forEach(function (frame) {{
    var doc = frame.contentDocument;
    out.push({{page: frame.getAttribute("src"), title: doc.title, tables: doc.querySelectorAll("table").length,
              images: Array.from(doc.images).map(function (i) {{
                return [i.getAttribute("src"), i.complete && i.naturalWidth > 0]; }})}});
  }});
  document.getElementById("result").textContent = JSON.stringify(out);
}});
</script></body></html>
"""


def chromium(profile: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


FRAME_HEIGHT = 900


def browser_check(pages: list, work: Path, shot=None) -> tuple:
    """Load ``pages`` in iframes, one under the other, of a checker page in headless
    Chromium (one launch; with ``shot``, also its screenshot): per page its title,
    table count and whether each image decoded; and the console lines logged."""
    frames = "\n".join(f'<iframe src="{p.resolve().as_uri()}" width="1280" height="{FRAME_HEIGHT}"></iframe>'
                       for p in pages)
    checker = work / "check.html"
    checker.write_text(CHECKER.format(frames=frames))
    shoot = [f"--screenshot={shot}", f"--window-size=1300,{FRAME_HEIGHT * len(pages) + 80}"] if shot else []
    done = chromium(work / "profile", "--allow-file-access-from-files", "--enable-logging=stderr", "--v=0",
                    "--virtual-time-budget=15000", *shoot, "--dump-dom", checker.as_uri())
    found = re.search(r'<pre id="result">(.*?)</pre>', done.stdout, flags=re.S)
    assert found and found.group(1) != "pending", done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(html.unescape(found.group(1))), console


def check_in_browser(out: Path, suite_folder: str, work: Path) -> list:
    """The index and one suite page in Chromium: tables present, every image decoded, no
    console message, and a screenshot of both that is not blank."""
    from matplotlib.image import imread

    shot = work / "pages.png"
    results, console = browser_check([out / "index.html", out / suite_folder / "index.html"], work, shot)
    assert console == []
    for result in results:
        assert result["tables"] >= 1, result["page"]
        assert all(ok for _, ok in result["images"]), f"{result['page']}: not loaded: " + \
            ", ".join(src for src, ok in result["images"] if not ok)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and imread(shot).std() > 0.01
    return results


@needs_chromium
def test_index_and_a_suite_page_render_in_chromium(site, tmp_path):
    results = check_in_browser(site.out, "tiny-condense", tmp_path)
    assert [r["title"] for r in results] == ["All results · amrbench results", "tiny-condense · amrbench results"]
    assert [src for src, _ in results[1]["images"]] == ["curve-toy-cnn1d.png", f"{LOSS_FOLDER}/toy-cnn1d.png"]


@needs_chromium
def test_chromium_reports_a_broken_image(site, tmp_path):
    """The browser check itself: an image that does not decode is caught."""
    broken = tmp_path / "site"
    shutil.copytree(site.out, broken)
    (broken / "tiny-condense" / LOSS_FOLDER / "toy-cnn1d.png").write_bytes(b"not a png")
    results, _ = browser_check([broken / "tiny-condense" / "index.html"], tmp_path)
    assert results[0]["images"] == [["curve-toy-cnn1d.png", True], [f"{LOSS_FOLDER}/toy-cnn1d.png", False]]


# --------------------------------------------------------------------------- the committed results
def committed_results(dest: Path) -> Path:
    """The repository's tracked results/ (not runs in progress beside them), copied."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "results"], capture_output=True)
    if listed.returncode != 0:
        return REPO / "results"
    for name in filter(None, listed.stdout.decode().split("\0")):
        if not (REPO / name).is_file():  # deleted in the working tree
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, target)
    return dest / "results"


@pytest.mark.slow
def test_report_of_the_committed_results(tmp_path):
    root = committed_results(tmp_path / "clone")
    result = build_report(root, tmp_path / "site", REPO / "suites")
    assert not result.problems
    with_records = sorted(p.parent.name for p in root.glob("*/records.jsonl"))
    assert set(with_records) <= {p.folder for p in result.pages}
    assert check_links(tmp_path / "site") > 100
    condensed = [p.folder for p in result.pages if p.drawn]  # a condense suite's page: the most kinds of figure
    assert condensed, "no committed condense records with loss curves"
    if CHROMIUM is not None:
        check_in_browser(tmp_path / "site", condensed[0], tmp_path)
