"""rml2016a / rml2016b: the DeepSig RML2016.10a and RML2016.10b pickles.

Source: O'Shea & West, "Radio Machine Learning Dataset Generation with GNU Radio"
(GRCon 2016); files from DeepSig's dataset page. Format: a Python-2 pickle (protocol 0
or 2, read with latin-1) of a dict {(modulation str, snr int): float32 (N, 2, 128)}.
"""
from __future__ import annotations

from typing import Optional

from amrbench.api import AmrbenchError, Dataset, Param, SignalSet
from amrbench.data import loaders, store, windows
from amrbench.hookspecs import hookimpl


class RML2016Pickle(windows.WindowNorm, Dataset):
    """Base of the RML2016 pickle loaders (see the subclasses)."""

    defaults = {"path": None, "per_class_per_snr": None, "allow_nonfinite": False, **windows.NORM_DEFAULTS}
    types = {"path": Param(str, null=True), "per_class_per_snr": Param(int, 1, null=True),
             "allow_nonfinite": Param(bool)}
    choices = windows.NORM_CHOICES
    file_name = ""

    def load(self, seed: int, snr: Optional[tuple] = None) -> SignalSet:
        path = loaders.require_file(self.params["path"], self.name, f"the {self.file_name} pickle")
        per = self.params["per_class_per_snr"]
        if per is not None and (not isinstance(per, int) or isinstance(per, bool) or per < 1):
            raise AmrbenchError(f"dataset {self.name!r}: per_class_per_snr must be a positive integer or null")
        allow = self.params["allow_nonfinite"]
        key = {"dataset": self.name, "version": self.version, "file": self.fingerprint()["path"],
               "per_class_per_snr": per, "seed": int(seed) if per else None, "allow_nonfinite": allow}

        def parse() -> SignalSet:
            table = loaders.load_restricted_pickle(path)
            return loaders.key_dict_to_signalset(table, path, self.name, None, per, seed, allow)

        data = store.cached_signalset(store.cache_path(self.name, key), parse, snr=snr, allow_nonfinite=allow)
        return self.normalised(data)

    def fingerprint(self) -> dict:
        return {"path": loaders.path_fingerprint(self.params["path"], self.name, f"the {self.file_name} pickle")}


class RML2016a(RML2016Pickle):
    """RML2016.10a pickle (RML2016.10a_dict.pkl): 11 classes x 20 SNRs x 1000, 128 samples.

    Parameters: ``path`` (required) to ``RML2016.10a_dict.pkl``; ``per_class_per_snr``
    (default null = all 1000) keeps a seeded random subset of every (class, SNR) key.
    Classes are the sorted modulation names (8PSK, AM-DSB, AM-SSB, BPSK, CPFSK, GFSK,
    PAM4, QAM16, QAM64, QPSK, WBFM). The pickle is read by a restricted unpickler that
    admits only numpy array reconstruction (no value or array may declare more bytes than
    the file holds), then cached as HDF5 under the amrbench cache (keyed by the file's
    content fingerprint), so later loads skip the slow unpickling. ``norm`` (default none:
    the values as stored; rms, energy, l1 or max) rescales every window
    (:mod:`amrbench.data.windows`). ``allow_nonfinite``
    (default false) loads signals holding NaN or Inf samples instead of refusing the
    file. Cells are keyed by the content fingerprint too: a changed file gives new cells.
    """

    name = "rml2016a"
    version = "1"
    file_name = "RML2016.10a_dict.pkl"


class RML2016b(RML2016Pickle):
    """RML2016.10b pickle (RML2016.10b.dat): 10 classes (no AM-SSB) x 20 SNRs x 6000, 128 samples.

    Parameters and reading as ``rml2016a``: ``path`` (required) to ``RML2016.10b.dat``;
    ``per_class_per_snr`` (default null = all 6000) keeps a seeded subset per key;
    ``norm`` and ``allow_nonfinite`` (default false) as in ``rml2016a``.
    """

    name = "rml2016b"
    version = "1"
    file_name = "RML2016.10b.dat"


@hookimpl
def amrbench_register(registry):
    registry.add(RML2016a)
    registry.add(RML2016b)
