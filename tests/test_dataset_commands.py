"""The dataset plugins' registration and the `amrbench datasets` command (list, info, make, plot)."""
from __future__ import annotations

import argparse
import pickle

import pytest
import torch

from amrbench.api import AmrbenchError
from amrbench.data import commands, store
from amrbench.registry import Registry
from amrbench_plugins.datasets import (
    generic_file,
    rml2016_pickle,
    rml2018_hdf5,
    sig2019_file,
    synth_rml2016a,
    synth_rml2018,
    synth_sig2019,
)
from tests.dataset_helpers import TINY, rml_table

MODULES = (synth_rml2016a, synth_sig2019, synth_rml2018, rml2016_pickle, rml2018_hdf5, sig2019_file, generic_file)


@pytest.fixture
def registry():
    reg = Registry()
    for module in MODULES:
        reg.register_module(module)
    return reg


def run_cli(argv, registry):
    parser = argparse.ArgumentParser(prog="amrbench")
    commands.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args, registry)


def test_all_dataset_plugins_register(registry):
    assert registry.names("dataset") == sorted(
        ["rml2016a-synth", "sig2019-synth", "rml2018-synth", "rml2016a", "rml2016b", "rml2018", "sig2019", "file"])
    for name in registry.names("dataset"):
        assert registry.get("dataset", name).description()


# --------------------------------------------------------------------------- CLI
def test_cli_list_info_make(registry, tmp_path, capsys):
    assert run_cli(["datasets", "list"], registry) == 0
    assert "rml2016a-synth" in capsys.readouterr().out
    tiny = ["--param", "per_class_per_snr=2", "--param", "snr_range=[0, 18, 6]"]
    assert run_cli(["datasets", "info", "rml2016a-synth", "--snr", "10", "18"] + tiny, registry) == 0
    out = capsys.readouterr().out
    assert "classes (11)" in out and "every (class, SNR) group: 2" in out and "(44, 2, 128)" in out
    assert "cache:" in out
    assert run_cli(["datasets", "make", "rml2016a-synth"] + tiny, registry) == 0
    assert "(present)" in capsys.readouterr().out


def test_cli_plot_writes_a_png(registry, tmp_path):
    two_classes = synth_rml2016a.SynthRML2016a(**TINY).generate(0)
    two_classes = two_classes.subset(torch.nonzero(two_classes.y < 2).flatten())
    two_classes.classes = two_classes.classes[:2]
    store.write_signalset(tmp_path / "two.h5", two_classes)
    png = tmp_path / "examples.png"
    assert run_cli(["datasets", "plot", "file", "--path", str(tmp_path / "two.h5"), "--out", str(png)], registry) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_info_of_a_loader_with_path(registry, tmp_path, capsys):
    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps(rml_table(), protocol=2))
    assert run_cli(["datasets", "info", "rml2016a", "--path", str(path)], registry) == 0
    assert "8PSK, QPSK, WBFM" in capsys.readouterr().out
    with pytest.raises(AmrbenchError, match="unknown dataset"):
        run_cli(["datasets", "info", "rml2016x"], registry)
