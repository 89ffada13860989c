"""file: any dataset stored in amrbench's generic HDF5 or NPZ format."""
from __future__ import annotations

from typing import Optional

from amrbench.api import Dataset, SignalSet
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
    without pickle (allow_pickle=False). Parameter: ``path`` (required).
    """

    name = "file"
    version = "1"
    defaults = {"path": None}

    def load(self, seed: int, snr: Optional[tuple] = None) -> SignalSet:
        path = loaders.require_file(self.params["path"], self.name, "an HDF5/NPZ file with " + loaders.GENERIC_LAYOUT)
        return loaders.read_generic(path, snr=snr)


@hookimpl
def amrbench_register(registry):
    registry.add(GenericFile)
