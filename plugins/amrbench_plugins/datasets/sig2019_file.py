"""sig2019: Sig2019-12 signal files (12 digital modulations, 512 samples).

Source: Chen et al., "SigNet" (IEEE TCCN 2021), the dataset's introducing paper; its
authors' lab stores it as .npy X (N, 512, 2) float32 and Y (N, 2) = [label, snr].
"""
from __future__ import annotations

from typing import Optional

from amrbench.api import AmrbenchError, Dataset, Param, SignalSet
from amrbench.data import loaders, windows
from amrbench.hookspecs import hookimpl


class Sig2019(windows.WindowNorm, Dataset):
    """Sig2019-12 from .npz, an .npy pair or HDF5: X (N, 512, 2), Y (N, 2) = [label, snr].

    Accepted layouts (X may also be channel-first (N, 2, L)):
    - ``.npz`` with arrays ``X`` and ``Y``;
    - HDF5 (``.h5``, ``.hdf5``) with datasets ``X`` and ``Y``;
    - ``.npy`` X file as ``path`` plus ``labels`` = the ``.npy`` Y file (X is memory-mapped).
    Parameters: ``path`` (required), ``labels`` (for .npy X), ``class_names`` (default null
    = BPSK, QPSK, 8PSK, OQPSK, 4PAM, 8PAM, 16QAM, 32QAM, 64QAM, 2FSK, 4FSK, 8FSK, the
    order of ``sig2019-synth``; the original's index order is unpublished, set it to match
    your file), ``per_class_per_snr`` (default null = all) a seeded subset per group,
    ``norm`` (default none; rms, energy, l1 or max) scales every window
    (:mod:`amrbench.data.windows`), ``allow_nonfinite`` (default false) loads signals holding NaN or Inf samples instead
    of refusing the file. Checked at load: declared sizes against the file and the memory
    budget (``AMRBENCH_MAX_BYTES``), labels whole numbers in range, kept samples finite.
    Cells are keyed by the content fingerprints of ``path`` (and ``labels``), so a
    changed file gives new cells.
    """

    name = "sig2019"
    version = "1"
    defaults = {"path": None, "labels": None, "class_names": None, "per_class_per_snr": None,
                "allow_nonfinite": False, **windows.NORM_DEFAULTS}
    types = {"path": Param(str, null=True), "labels": Param(str, null=True),
             "class_names": Param(list, items=str, nonempty=True, null=True), "per_class_per_snr": Param(int, 1, null=True),
             "allow_nonfinite": Param(bool)}
    choices = windows.NORM_CHOICES

    def load(self, seed: int, snr: Optional[tuple] = None) -> SignalSet:
        p = self.params
        path = loaders.require_file(p["path"], self.name, loaders.SIG2019_LAYOUT)
        per = p["per_class_per_snr"]
        if per is not None and (not isinstance(per, int) or isinstance(per, bool) or per < 1):
            raise AmrbenchError(f"dataset {self.name!r}: per_class_per_snr must be a positive integer or null")
        return self.normalised(loaders.read_sig2019(path, labels_path=p["labels"], snr=snr,
                                                    class_names=p["class_names"], per_class_per_snr=per, seed=seed,
                                                    name=self.name, allow_nonfinite=p["allow_nonfinite"]))

    def fingerprint(self) -> dict:
        p = self.params
        found = {"path": loaders.path_fingerprint(p["path"], self.name, loaders.SIG2019_LAYOUT)}
        if p["labels"] is not None:
            found["labels"] = loaders.path_fingerprint(p["labels"], self.name, "an .npy file of [label, snr] rows")
        return found


@hookimpl
def amrbench_register(registry):
    registry.add(Sig2019)
