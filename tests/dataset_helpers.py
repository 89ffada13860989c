"""Small fixtures shared by the dataset test files."""
from __future__ import annotations

import numpy as np

TINY = {"per_class_per_snr": 3, "snr_range": [-4, 4, 4]}  # a synthetic set of a few signals per group


def rml_table(classes=("QPSK", "8PSK", "WBFM"), snrs=(-2, 0, 2), n=4, length=128):
    rng = np.random.default_rng(0)
    return {(c, s): rng.standard_normal((n, 2, length)).astype(np.float32) for c in classes for s in snrs}
