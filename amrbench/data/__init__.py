"""Dataset handling shared by every dataset plugin: SNR filters, stratified splits.

``filter_snr`` and ``stratified_split`` are imported on first use (they need torch), so
``amrbench datasets --help`` and ``amrbench.data.commands`` load without it."""


def __getattr__(name):
    if name in ("filter_snr", "stratified_split"):
        from amrbench.data import splits

        return getattr(splits, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
