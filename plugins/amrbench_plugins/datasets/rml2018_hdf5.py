"""rml2018: the DeepSig RML2018.01a HDF5 file (GOLD_XYZ_OSC.0001_1024.hdf5).

Source: O'Shea, Roy & Clancy, "Over-the-Air Deep Learning Based Radio Signal
Classification" (IEEE JSTSP 2018); file from DeepSig's dataset page. Datasets: X float32
(N, 1024, 2), one-hot Y (N, 24), Z (N, 1) SNR in -20..30 dB step 2.
"""
from __future__ import annotations

from typing import Optional

from amrbench.api import AmrbenchError, Dataset, Param, SignalSet
from amrbench.data import loaders, windows
from amrbench.hookspecs import hookimpl


class RML2018(windows.WindowNorm, Dataset):
    """RML2018.01a HDF5 (24 classes x 26 SNRs x 4096, 1024 samples), read lazily.

    Parameters: ``path`` (required) to ``GOLD_XYZ_OSC.0001_1024.hdf5``; ``class_order``
    "fixed" (default; OOK, 4ASK, 8ASK, BPSK, QPSK, 8PSK, 16PSK, 32PSK, 16APSK, 32APSK,
    64APSK, 128APSK, 16QAM, 32QAM, 64QAM, 128QAM, 256QAM, AM-SSB-WC, AM-SSB-SC, AM-DSB-WC,
    AM-DSB-SC, FM, GMSK, OQPSK: the community-corrected one-hot order) or "distributed"
    (the order of DeepSig's classes.txt); a file that names its own classes (a ``classes``
    dataset or attribute, as converted or TorchSig-made files in this layout may) is read
    with that list instead, whatever its length, and ``amrbench datasets info`` says so;
    ``classes`` (default null = all) a subset of class names, kept in the file's order;
    ``per_class_per_snr`` (default null = all) a seeded random subset of every (class,
    SNR) group; ``norm`` (default none; rms, energy, l1 or max) scales every window
    (:mod:`amrbench.data.windows`); ``allow_nonfinite`` (default false) loads signals
    holding NaN or Inf samples instead of refusing the file. Y and Z
    are read in chunks first; X only for the kept rows, in sorted blocks, so memory stays
    near the kept size. Checked at load: declared sizes against the file and the memory
    budget (``AMRBENCH_MAX_BYTES``), every Y row one-hot, kept samples finite. Cells are
    keyed by the file's content fingerprint, so a changed file gives new cells.
    """

    name = "rml2018"
    version = "1"
    defaults = {"path": None, "classes": None, "per_class_per_snr": None, "class_order": "fixed",
                "allow_nonfinite": False, **windows.NORM_DEFAULTS}
    types = {"path": Param(str, null=True), "classes": Param(list, items=str, nonempty=True, null=True),
             "per_class_per_snr": Param(int, 1, null=True), "allow_nonfinite": Param(bool)}
    choices = {"class_order": ("fixed", "distributed"), **windows.NORM_CHOICES}

    def load(self, seed: int, snr: Optional[tuple] = None) -> SignalSet:
        p = self.params
        path = loaders.require_file(p["path"], self.name, "the RML2018.01a GOLD_XYZ_OSC.0001_1024.hdf5 file")
        per = p["per_class_per_snr"]
        if per is not None and (not isinstance(per, int) or isinstance(per, bool) or per < 1):
            raise AmrbenchError(f"dataset {self.name!r}: per_class_per_snr must be a positive integer or null")
        classes = p["classes"]
        if classes is not None and (not isinstance(classes, (list, tuple)) or not classes):
            raise AmrbenchError(f"dataset {self.name!r}: classes must be a non-empty list of class names or null")
        self.notes = []
        return self.normalised(loaders.read_rml2018(path, snr=snr, classes=classes, per_class_per_snr=per, seed=seed,
                                                    class_order=p["class_order"], name=self.name,
                                                    allow_nonfinite=p["allow_nonfinite"], notes=self.notes))

    def fingerprint(self) -> dict:
        return {"path": loaders.path_fingerprint(self.params["path"], self.name, "the RML2018.01a HDF5 file")}


@hookimpl
def amrbench_register(registry):
    registry.add(RML2018)
