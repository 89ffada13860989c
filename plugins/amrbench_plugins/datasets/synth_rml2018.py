"""rml2018-synth: a synthetic stand-in for RML2018.01a (24 modulations, 1024 samples).

Source: the class list of O'Shea, Roy & Clancy, "Over-the-Air Deep Learning Based Radio
Signal Classification" (IEEE JSTSP 2018) and the DeepSig RML2018.01a release (SNR -20..30
dB step 2), in the community "fixed" label order. DeepSig's generator is not public; the
waveforms come from the shared ``amrbench_plugins.datasets.synth`` machinery.
"""
from __future__ import annotations

import numpy as np

from amrbench.data.loaders import RML2018_CLASSES_FIXED
from amrbench.hookspecs import hookimpl
from amrbench_plugins.datasets import synth


class SynthRML2018(synth.SynthDataset):
    """RML2018.01a mimic: 24 modulations, 1024 samples at 8 sps, SNR -20..30 dB step 2.

    Label order = the "fixed" order of the RML2018 loader: OOK, 4ASK, 8ASK, BPSK, QPSK,
    8PSK, 16PSK, 32PSK, 16APSK, 32APSK, 64APSK, 128APSK, 16QAM, 32QAM, 64QAM, 128QAM,
    256QAM, AM-SSB-WC, AM-SSB-SC, AM-DSB-WC, AM-DSB-SC, FM, GMSK, OQPSK.
    Digital classes: root-raised-cosine pulses (rolloff 0.35); ASK/OOK unipolar levels;
    APSK rings of 4+12, 4+12+16, 4+12+20+28 and 8+16+24+32+48 points with radii 1, 2, 3...;
    cross 32/128-QAM; GMSK with BT 0.3 and h = 0.5; OQPSK with a half-symbol quadrature
    delay. Analog classes use the speech-like audio source with pauses (``silence``):
    AM-DSB/AM-SSB with (WC) or without (SC) carrier, FM as rml2016a-synth's WBFM.
    Channel: the "independent" model of ``synth.Channel`` (fresh offsets, phase and
    Rician/Rayleigh paths per window, ``rml2016a-synth``'s version-1 channel), AWGN with
    SNR = Es/N0 of the received signal; windows scaled to unit RMS. Defaults: ``per_class_per_snr`` 256 (the real set has
    4096, i.e. 2.5 M signals and 21 GB), ``length`` 1024, ``snr_range`` [-20, 30, 2].
    """

    name = "rml2018-synth"
    version = "1"
    classes = RML2018_CLASSES_FIXED
    defaults = {**synth.COMMON_DEFAULTS, "per_class_per_snr": 256, "length": 1024, "snr_range": [-20, 30, 2]}

    def waveforms(self) -> dict:
        rolloff, silence = float(self.params["rolloff"]), float(self.params["silence"])
        qpsk = synth.psk(4, np.pi / 4)
        constellations = {
            "OOK": synth.ask(2), "4ASK": synth.ask(4), "8ASK": synth.ask(8), "BPSK": synth.psk(2),
            "QPSK": qpsk, "8PSK": synth.psk(8), "16PSK": synth.psk(16), "32PSK": synth.psk(32),
            "16APSK": synth.apsk((4, 12)), "32APSK": synth.apsk((4, 12, 16)),
            "64APSK": synth.apsk((4, 12, 20, 28)), "128APSK": synth.apsk((8, 16, 24, 32, 48)),
            "16QAM": synth.qam(16), "32QAM": synth.qam(32), "64QAM": synth.qam(64),
            "128QAM": synth.qam(128), "256QAM": synth.qam(256)}
        waves = {name: synth.linear(points, rolloff) for name, points in constellations.items()}
        waves.update({
            "AM-SSB-WC": synth.am("ssb", carrier=True, silence=silence),
            "AM-SSB-SC": synth.am("ssb", carrier=False, silence=silence),
            "AM-DSB-WC": synth.am("dsb", carrier=True, silence=silence),
            "AM-DSB-SC": synth.am("dsb", carrier=False, silence=silence),
            "FM": synth.fm(silence=silence),
            "GMSK": synth.cpm(2, h=0.5, bt=0.3),
            "OQPSK": synth.linear(qpsk, rolloff, offset_q=True)})
        return {name: waves[name] for name in RML2018_CLASSES_FIXED}


@hookimpl
def amrbench_register(registry):
    registry.add(SynthRML2018)
