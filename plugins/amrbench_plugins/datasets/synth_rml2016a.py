"""rml2016a-synth: a NumPy re-creation of the RML2016.10a generator (no GNU Radio).

Source: the public generator of O'Shea & West, "Radio Machine Learning Dataset
Generation with GNU Radio" (GRCon 2016), repository ``radioML/dataset``
(``generate_RML2016.10a.py``, ``transmitters.py``); parameters as summarised in the
project's research notes. The waveform code here is written from that description.
"""
from __future__ import annotations

import numpy as np

from amrbench.hookspecs import hookimpl
from amrbench_plugins.datasets import synth

CLASSES = ["8PSK", "AM-DSB", "AM-SSB", "BPSK", "CPFSK", "GFSK", "PAM4", "QAM16", "QAM64", "QPSK", "WBFM"]
MODES = ("faithful", "clean")


class SynthRML2016a(synth.SynthDataset):
    """RML2016.10a mimic: 11 modulations, 128 samples at 8 sps, SNR -20..18 dB step 2, seeded.

    Classes (label order = the real set's sorted keys): 8PSK, AM-DSB, AM-SSB, BPSK, CPFSK,
    GFSK, PAM4, QAM16, QAM64, QPSK, WBFM.

    Transmitters: linear modulations with root-raised-cosine pulses (rolloff 0.35,
    11-symbol span, QPSK rotated by pi/4, PAM4 on I); CPFSK with h = 0.5 (rectangular);
    GFSK with BT 0.35 and 0.1 rad/sample sensitivity (h ~ 0.255); WBFM with 75 us
    pre-emphasis and 75 kHz deviation at 220.5 kHz; AM-DSB = 1 + a(t) on I. The audio
    a(t) is a band-limited random "speech-like" source (8 tones, 100 Hz..4 kHz at 200 kHz,
    ~34 dB loudness range, peak <= 0.5) with a fraction ``silence`` (0.3) of pauses, so
    WBFM and AM-DSB both degenerate to a bare carrier and get confused.

    Channel (``synth.Channel``, GNU Radio's ``dynamic_channel_model`` arguments of the
    original): the "stream" model (``channel_model``): windows read at random positions of
    one 50,000-sample channel run per seed, along which CFO and SRO are random walks of
    0.01 Hz per sample at 200 kHz (clipped at 500 / 50 Hz; a window sees a few Hz), the
    carrier phase is their accumulated phase and the 3 paths (delays 0, 0.9, 1.7 samples;
    magnitudes 1, 0.8, 0.3; Rician K = 4 on the first) are 8-sinusoid faders with a 1 Hz
    Doppler, i.e. one slowly drifting multipath channel; random timing within a symbol.
    AWGN as the original: noise amplitude 10^(-SNR/10) relative to the received signal
    (``snr_reference="rml2016"``, a per-sample SNR of twice the label in dB).
    ``channel_model: independent, snr_reference: symbol`` gives version 1's channel (fresh
    uniform +-500 Hz CFO, +-50 Hz SRO, phase and Rician/Rayleigh draws per window; SNR =
    Es/N0), a much harsher channel (CNN1D plateau 52-57 % instead of ~80 %).

    ``mode``: "faithful" (default) keeps the original's quirks: AM-SSB is pure noise (the
    original multiplies it by sin(0) = 0) and windows are divided by sum |x| (L1) as the
    original does. "clean" transmits AM-SSB as the upper sideband a + jH{a} of the audio
    and scales windows to unit RMS. ``norm`` ("auto" = by mode, or l1/energy/rms/none)
    overrides the normalisation. Defaults: 1000 signals per (class, SNR) = 220,000 like
    the real set, ``length`` 128, ``snr_range`` [-20, 18, 2] (inclusive).
    """

    name = "rml2016a-synth"
    version = "2"
    classes = CLASSES
    defaults = {**synth.COMMON_DEFAULTS, "mode": "faithful", "norm": "auto", "channel_model": "stream",
                "snr_reference": "rml2016"}

    def _check_params(self) -> None:
        super()._check_params()
        if self.params["mode"] not in MODES:
            self._fail("mode", f"one of {', '.join(MODES)}")

    def norm(self) -> str:
        if self.params["norm"] != "auto":
            return self.params["norm"]
        return "l1" if self.params["mode"] == "faithful" else "rms"

    def waveforms(self) -> dict:
        p = self.params
        rolloff, silence = float(p["rolloff"]), float(p["silence"])
        faithful = p["mode"] == "faithful"
        return {
            "8PSK": synth.linear(synth.psk(8), rolloff),
            "AM-DSB": synth.am("dsb", carrier=True, silence=silence),
            "AM-SSB": synth.silent() if faithful else synth.am("ssb", carrier=False, silence=silence),
            "BPSK": synth.linear(synth.psk(2), rolloff),
            "CPFSK": synth.cpm(2, h=0.5),
            "GFSK": synth.cpm(2, h=0.1 * p["sps"] / np.pi, bt=0.35),
            "PAM4": synth.linear(synth.pam(4), rolloff),
            "QAM16": synth.linear(synth.qam(16), rolloff),
            "QAM64": synth.linear(synth.qam(64), rolloff),
            "QPSK": synth.linear(synth.psk(4, np.pi / 4), rolloff),
            "WBFM": synth.fm(silence=silence),
        }


@hookimpl
def amrbench_register(registry):
    registry.add(SynthRML2016a)
