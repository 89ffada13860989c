"""sig2019-synth: a synthetic stand-in for the Sig2019-12 dataset (12 digital modulations).

Source: the class list and SNR range of Sig2019-12 (Chen et al., SigNet, IEEE TCCN 2021;
as used by the MDM dataset-distillation paper). The original's pulse shaping and sample
rate are not public, so this uses the shared ``amrbench_plugins.datasets.synth`` machinery.
"""
from __future__ import annotations

import numpy as np

from amrbench.data.loaders import SIG2019_CLASSES
from amrbench.hookspecs import hookimpl
from amrbench_plugins.datasets import synth


class SynthSig2019(synth.SynthDataset):
    """Sig2019-12 mimic: 12 digital modulations, 512 samples at 8 sps, SNR -20..30 dB step 2.

    Classes (label order): BPSK, QPSK, 8PSK, OQPSK, 4PAM, 8PAM, 16QAM, 32QAM (cross),
    64QAM, 2FSK, 4FSK, 8FSK. Linear modulations use root-raised-cosine pulses (rolloff
    0.35; QPSK/OQPSK rotated by pi/4, OQPSK with a half-symbol quadrature delay, PAM on I);
    M-FSK is continuous-phase with modulation index ``fsk_h`` (1.0, orthogonal tones).
    Channel: the "independent" model of ``synth.Channel`` (``rml2016a-synth``'s version-1
    channel): per-window timing/sample-rate offset (+-50 Hz), CFO (+-500 Hz at 200 kHz),
    phase and static 3-path fading with a Rician first path; AWGN with SNR = Es/N0 of the
    received signal (the real set's generator is not public, so no quirk of it is copied;
    ``channel_model: stream`` is available). Windows are scaled to unit RMS (``norm`` "rms").
    Defaults: ``per_class_per_snr`` 1000 (the real set has 1500 per class and SNR),
    ``length`` 512, ``snr_range`` [-20, 30, 2].
    """

    name = "sig2019-synth"
    version = "1"
    classes = SIG2019_CLASSES
    defaults = {**synth.COMMON_DEFAULTS, "length": 512, "snr_range": [-20, 30, 2], "fsk_h": 1.0}

    def _check_params(self) -> None:
        super()._check_params()
        h = self.params["fsk_h"]
        if not isinstance(h, (int, float)) or not 0 < h <= 4:
            self._fail("fsk_h", "a number in (0, 4]")

    def waveforms(self) -> dict:
        rolloff, h = float(self.params["rolloff"]), float(self.params["fsk_h"])
        qpsk = synth.psk(4, np.pi / 4)
        return {
            "BPSK": synth.linear(synth.psk(2), rolloff),
            "QPSK": synth.linear(qpsk, rolloff),
            "8PSK": synth.linear(synth.psk(8), rolloff),
            "OQPSK": synth.linear(qpsk, rolloff, offset_q=True),
            "4PAM": synth.linear(synth.pam(4), rolloff),
            "8PAM": synth.linear(synth.pam(8), rolloff),
            "16QAM": synth.linear(synth.qam(16), rolloff),
            "32QAM": synth.linear(synth.qam(32), rolloff),
            "64QAM": synth.linear(synth.qam(64), rolloff),
            "2FSK": synth.cpm(2, h),
            "4FSK": synth.cpm(4, h),
            "8FSK": synth.cpm(8, h),
        }


@hookimpl
def amrbench_register(registry):
    registry.add(SynthSig2019)
