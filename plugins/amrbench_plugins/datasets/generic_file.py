"""file: any dataset stored in amrbench's generic HDF5 or NPZ format."""
from __future__ import annotations

from typing import Optional

from amrbench.api import Dataset, Param, SignalSet
from amrbench.data import loaders, windows
from amrbench.hookspecs import hookimpl


class GenericFile(windows.WindowNorm, Dataset):
    """Generic HDF5 (.h5/.hdf5) or NPZ (.npz) file of I/Q signals with labels and SNRs.

    Format (amrbench's dataset cache files are in it, so `amrbench datasets make` output
    loads here):
    - ``x``: float32 (N, 2, L), row 0 = I, row 1 = Q;
    - ``y``: integer (N,), class index into ``classes``;
    - ``snr``: float (N,), SNR in dB (NaN when unknown);
    - ``classes``: the C class names, as a string dataset (HDF5) or string array (NPZ);
      in HDF5 a file attribute ``classes`` is accepted instead.
    Other common layouts are detected, converted and listed by ``amrbench datasets info``:
    channel-last x (N, L, 2) (an x of shape (N, 2, 2) is read channel-first); complex x
    (N, L) (I = real, Q = imaginary part); y as an (N, 1) column or one-hot (N, C); snr
    as an (N, 1) column; no ``snr`` at all (every SNR NaN); NPZ ``classes`` saved as an
    object array (read by a restricted unpickler that builds strings and arrays only).
    HDF5 files are read lazily (only rows inside the SNR filter); NPZ files are loaded
    without pickle (allow_pickle=False) apart from that ``classes`` member. Parameters:
    ``path`` (required); ``norm`` (default none; rms, energy, l1 or max) scales every
    window as the synthetic sets do (:mod:`amrbench.data.windows`); ``allow_nonfinite``
    (default false): load signals holding NaN or Inf samples instead of refusing the file
    (a NaN poisons training, so only for data you mean to clean). Checked at load:
    declared sizes against the file and the memory budget (``AMRBENCH_MAX_BYTES``),
    labels whole numbers in range (one-hot rows exactly one 1), samples finite. Cells are
    keyed by the file's content fingerprint, so a changed file gives new cells.
    """

    name = "file"
    version = "1"
    defaults = {"path": None, "allow_nonfinite": False, **windows.NORM_DEFAULTS}
    types = {"path": Param(str, null=True), "allow_nonfinite": Param(bool)}
    choices = windows.NORM_CHOICES

    def load(self, seed: int, snr: Optional[tuple] = None) -> SignalSet:
        path = loaders.require_file(self.params["path"], self.name, "an HDF5/NPZ file with " + loaders.GENERIC_LAYOUT)
        self.notes = []
        data = loaders.read_generic(path, snr=snr, allow_nonfinite=self.params["allow_nonfinite"], notes=self.notes)
        return self.normalised(data)

    def fingerprint(self) -> dict:
        return {"path": loaders.path_fingerprint(self.params["path"], self.name, "an HDF5/NPZ file")}


@hookimpl
def amrbench_register(registry):
    registry.add(GenericFile)
