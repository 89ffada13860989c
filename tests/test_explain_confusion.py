"""Confusion matrices of the explain protocol's classifiers (Huang et al., Figs. 12 and 15)."""
import argparse
import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from amrbench_plugins.explain import plots as P  # noqa: E402

CLASSES = ["BPSK", "QPSK", "8PSK"]
IQ = [[8, 2, 0], [1, 7, 2], [0, 5, 5]]          # rows: 10, 10, 10
AP = [[3, 2, 0], [0, 4, 0], [2, 4, 4]]          # rows: 5, 4, 10
LSTM_AP = [[5, 0, 0], [0, 5, 0], [1, 1, 3]]
LSTM_IQ = [[4, 1, 0], [1, 4, 0], [1, 1, 3]]
PNG = b"\x89PNG\r\n\x1a\n"


def record(model, explainer, fmt, confusion, by_format=None, status="ok", seed=0):
    metrics = {"format": fmt, "classes": CLASSES, "confusion": confusion, "accuracy": 0.5}
    if by_format is not None:
        metrics["confusion_by_format"] = by_format
    return {"status": status, "metrics": metrics if status == "ok" else None,
            "config": {"dataset": {"name": "toy", "snr": [0, 18]}, "model": {"source": model, "target": model},
                       "method": {"name": explainer}, "seed": seed}}


def records():
    return [
        record("lenet", "gradcam", "iq", IQ, {"iq": IQ, "amp_phase": AP}),
        # the same classifiers with another explainer: ignored (the first record wins)
        record("lenet", "mask", "iq", [[10, 0, 0], [0, 10, 0], [0, 0, 10]], {"iq": IQ, "amp_phase": IQ}),
        record("lstm", "gradcam", "amp_phase", None, status="failed"),
        record("lstm", "mask", "amp_phase", LSTM_AP, {"iq": LSTM_IQ, "amp_phase": LSTM_AP}),
        record("resnet-vis", "gradcam", "iq", IQ),  # no figures: native confusion only, no relative panel
    ]


def test_relative_confusion_is_the_row_normalised_difference():
    expected = [[20, -20, 0], [10, -30, 20], [-20, 10, 10]]
    assert np.allclose(P.relative_confusion(IQ, AP), expected)
    assert np.allclose(P.row_percent([[0, 0], [1, 3]]), [[0, 0], [25, 75]])  # an empty row stays 0
    assert np.allclose(P.relative_confusion(AP, AP), 0)


def test_entries_deduplicate_explainers_and_mark_native_formats():
    entries = P.confusion_entries(records())
    assert list(entries) == [("toy_0_18dB", 0)]
    slots = entries["toy_0_18dB", 0]
    assert set(slots) == {("lenet", "iq"), ("lenet", "amp_phase"), ("lstm", "iq"), ("lstm", "amp_phase"),
                          ("resnet-vis", "iq")}
    assert slots["lenet", "iq"]["confusion"] == IQ and slots["lenet", "amp_phase"]["confusion"] == AP
    assert slots["lenet", "iq"]["native"] and not slots["lenet", "amp_phase"]["native"]
    assert slots["lstm", "amp_phase"]["native"] and not slots["lstm", "iq"]["native"]
    assert slots["lenet", "iq"]["classes"] == CLASSES


def test_confusion_figures_are_written(tmp_path):
    written = P.save_confusion_figures(records(), tmp_path / "figs")
    assert [p.name for p in written] == ["confusion_toy_0_18dB_s0.png", "confusion_relative_toy_0_18dB_s0.png"]
    for path in written:
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 1000
    assert not list((tmp_path / "figs").glob(".*"))  # atomic writes leave no temporary file
    assert P.save_confusion_figures([record("lstm", "mask", "amp_phase", None, status="failed")], tmp_path) == []


def test_plot_confusion_panels():
    plt = P._pyplot()
    fig, (a, b) = plt.subplots(1, 2)
    P.plot_confusion(a, IQ, CLASSES, "lenet")
    m = P.plot_confusion(b, P.relative_confusion(IQ, AP), CLASSES, "lenet: I/Q - A/P", relative=True)
    assert [t.get_text() for t in a.texts][:3] == ["80", "20", "0"]
    assert [t.get_text() for t in b.texts][3:6] == ["+10", "-30", "+20"]
    assert m.get_clim() == (-30.0, 30.0) and m.get_cmap().name == "RdBu"
    assert [t.get_text() for t in a.get_yticklabels()] == CLASSES
    plt.close(fig)


def test_confusion_command(tmp_path):
    from amrbench_plugins.explain.plots import add_parser

    suite = tmp_path / "suite.yaml"
    suite.write_text("name: conf\nprotocol: explain\ndatasets: [{name: toy}]\nmethods: [gradcam]\n"
                     "models: [lenet]\nseeds: [0]\n")
    results = tmp_path / "results"
    results.mkdir()
    lines = [dict(r, key=str(i)) for i, r in enumerate(records())]
    (results / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["explain", str(suite), "--confusion", "--results", str(results),
                              "--out", str(tmp_path / "out")])
    assert args.handler(args, None) == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"confusion_toy_0_18dB_s0.png",
                                                              "confusion_relative_toy_0_18dB_s0.png"}


TINY = """
name: tiny-confusion
protocol: explain
datasets:
  - name: toy
    params: {per_class_per_snr: 8, length: 32}
methods:
  - {name: mask, params: {steps: 2}}
models: [cnn1d, lstm]
seeds: [0]
train: {epochs: 1, batch_size: 64}
settings: {n_signals: 4, curve_steps: 2, random_repeats: 1, sanity: false, figures: figs,
           figure_formats: [iq, amp_phase]}
"""


def test_explain_records_hold_the_confusion_matrices(write_suite, tmp_path, isolated_cache):
    from amrbench.cli import main
    from amrbench.store import ArtifactCache, RecordStore

    suite = write_suite(TINY)
    assert main(["run", str(suite), "--results", "out"]) == 0
    (a, b) = RecordStore(tmp_path / "out" / "records.jsonl").read()
    by = {r["labels"]["model"]: r["metrics"] for r in (a, b)}
    assert by["cnn1d"]["format"] == "iq" and by["lstm"]["format"] == "amp_phase"
    for m in by.values():
        k = len(m["classes"])
        assert np.array(m["confusion"]).shape == (k, k) and set(m["confusion_by_format"]) == {"iq", "amp_phase"}
        assert m["confusion_by_format"][m["format"]] == m["confusion"]
        assert np.trace(m["confusion"]) / np.sum(m["confusion"]) == pytest.approx(m["accuracy"])
    # classifiers cached before the matrix was stored are evaluated again, with the same result
    cached = sorted((isolated_cache / "artifacts" / "explain-classifier").glob("*.pt"))
    assert len(cached) == 4  # 2 models x 2 input formats
    cache = ArtifactCache(isolated_cache / "artifacts")
    for path in cached:
        artifact = cache.read_file(path)
        artifact.pop("confusion")
        cache.write_file(path, artifact)
    assert main(["run", str(suite), "--results", "again"]) == 0
    assert ArtifactCache(isolated_cache / "artifacts").computations("explain-classifier") == 4  # none retrained
    again = {r["labels"]["model"]: r["metrics"] for r in RecordStore(tmp_path / "again" / "records.jsonl").read()}
    for model in by:
        assert again[model]["confusion_by_format"] == by[model]["confusion_by_format"]
    assert main(["explain", str(suite), "--confusion", "--results", "out", "--out", "conf"]) == 0
    assert sorted(p.name for p in (tmp_path / "conf").iterdir()) == ["confusion_relative_toy_s0.png",
                                                                     "confusion_toy_s0.png"]
