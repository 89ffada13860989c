"""How the built-in plugins run fast under the contract tests (``amrbench.contracts``),
found through the ``amrbench.contracts`` entry-point group as a third party's would be.

``LIGHT_PARAMS``: kind -> plugin name -> parameters merged over the plugin's defaults in
every contract case (tiny data, small networks, one or two iterations or epochs);
plugins not named run with their defaults. ``SLOW``: kind -> plugins whose cases still
take seconds, marked ``slow``.
"""

#: A few signals per (class, SNR) at two SNRs: generation stays in the milliseconds.
_TINY_SYNTH = {"per_class_per_snr": 2, "length": 128, "snr_range": [0, 10, 10]}
#: A few matching iterations; the default ``lr: search`` runs one iteration on two networks per candidate.
_FEW_ITERATIONS = {"iterations": 2, "search_iterations": 1, "search_nets": 2, "batch_real": 16}
#: A two-level stack of narrow layers, one epoch each.
_SMALL_STACK = {"layers": 2, "latent_dim": 8, "enc_hidden": [8, 8], "dec_hidden": [8, 8], "epochs": 1,
                "batch_size": 32}

LIGHT_PARAMS = {
    "dataset": {
        "toy": {"per_class_per_snr": 4, "length": 64, "snr_values": [0, 10]},
        "rml2016a-synth": _TINY_SYNTH,
        "rml2018-synth": _TINY_SYNTH,
        "sig2019-synth": _TINY_SYNTH,
        "torchsig6-synth": {"per_class_per_snr": 2, "length": 128, "snr_values": [0, 10]},
        "torchsig": {"per_class_per_snr": 2, "length": 128, "snr_values": [0, 10]},
    },
    "condenser": {
        "dc": {**_FEW_ITERATIONS, "loops": [1, 1], "batch_train": 16},
        "dm": _FEW_ITERATIONS,
        "mdm": _FEW_ITERATIONS,
    },
    "compressor": {
        "hae": _SMALL_STACK,
        "hqa": {**_SMALL_STACK, "hae_runs": 1, "hqa_epochs": 1, "codebook_size": 8},
        "vqvae": {"downsample": [4], "codebook_size": 8, "latent_dim": 8, "hidden": 8, "epochs": 1},
    },
    "explainer": {
        "mask": {"steps": 20},
    },
}

#: Importing TorchSig alone takes seconds.
SLOW = {"dataset": ["torchsig"]}
