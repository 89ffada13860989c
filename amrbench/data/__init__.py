"""Dataset handling shared by every dataset plugin: SNR filters, stratified splits."""
from amrbench.data.splits import filter_snr, stratified_split  # noqa: F401
