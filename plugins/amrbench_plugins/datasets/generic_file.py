"""file: any dataset stored in amrbench's generic HDF5 or NPZ format."""
from __future__ import annotations

from typing import Optional

from amrbench.api import Dataset, Param, SignalSet
from amrbench.data import loaders
from amrbench.hookspecs import hookimpl


class GenericFile(Dataset):
    """Generic HDF5 (.h5/.hdf5) or NPZ (.npz) file of I/Q signals with labels and SNRs.

    Format (the same as amrbench's dataset cache files, so `amrbench datasets make`
    output loads here):
    - ``x``: float32 (N, 2, L), row 0 = I, row 1 = Q;
    - ``y``: integer (N,), class index into ``classes``;
    - ``snr``: float (N,), SNR in dB (NaN when unknown);
    - ``classes``: the C class names, as a string dataset (HDF5) or string array (NPZ);
      in HDF5 a file attribute ``classes`` is accepted instead.
    HDF5 files are read lazily (only rows inside the SNR filter); NPZ files are loaded
    without pickle (allow_pickle=False). Parameters: ``path`` (required);
    ``allow_nonfinite`` (default false): load signals holding NaN or Inf samples instead
    of refusing the file (a NaN poisons training, so only for data you mean to clean).
    Checked at load: declared sizes against the file and the memory budget
    (``AMRBENCH_MAX_BYTES``), labels whole numbers in range, samples finite. Cells are
    keyed by the file's content fingerprint, so a changed file gives new cells.
    """

    name = "file"
    version = "1"
    defaults = {"path": None, "allow_nonfinite": False}
    types = {"path": Param(str, null=True), "allow_nonfinite": Param(bool)}

    def load(self, seed: int, snr: Optional[tuple] = None) -> SignalSet:
        path = loaders.require_file(self.params["path"], self.name, "an HDF5/NPZ file with " + loaders.GENERIC_LAYOUT)
        return loaders.read_generic(path, snr=snr, allow_nonfinite=self.params["allow_nonfinite"])

    def fingerprint(self) -> dict:
        return {"path": loaders.path_fingerprint(self.params["path"], self.name, "an HDF5/NPZ file")}


@hookimpl
def amrbench_register(registry):
    registry.add(GenericFile)
