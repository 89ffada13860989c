"""Seeded, vectorised synthetic AMR signal generators shared by the synthetic dataset plugins.

One (class, SNR) group of signals is rendered at once, every step vectorised over the
group (no per-signal Python):

1. waveform at ``sps`` samples per symbol, scaled to unit average power over the group
   (linear modulations with root-raised-cosine pulses, continuous-phase FSK/GFSK/GMSK,
   AM/FM driven by a band-limited "speech-like" audio source with silent segments);
2. random timing offset within one symbol and a sample-rate offset (Lanczos resampler);
3. carrier frequency offset and carrier phase;
4. 3-path fading with fractional delays (first path Rician, others Rayleigh), after the
   GNU Radio ``dynamic_channel_model`` arguments of the RML2016.10a generator;
5. complex AWGN at the labelled SNR;
6. per-window normalisation (``l1``: sum |x| = 1 as in RML2016.10a, ``energy``:
   sum |x|^2 = 1, ``rms``: mean |x|^2 = 1, ``none``).

SNR definition: with ``snr_reference="symbol"`` (default) the label is Es/N0 of the
received, pre-noise signal: the noise variance per complex sample is
``P * sps / 10**(snr/10)``, where ``P`` is the group's average transmit power (1) times
the window's own channel power gain; i.e. the SNR in a bandwidth of fs/sps, the same
reference for analog classes. ``snr_reference="sample"`` drops the factor ``sps``
(signal power over the total noise power of the sampled band). ``"rml2016"`` reproduces
the original generator's quirk: GNU Radio's noise *amplitude* 10^(-SNR/10), i.e. a
per-sample SNR of twice the label in dB (36 dB at the label 18, -20 dB at -10).

Channel models (steps 2-4). ``"independent"``: every window draws its own offsets
(uniform in +-``cfo_max`` / +-``sro_max``), a uniform carrier phase and static
Rician/Rayleigh path gains. ``"stream"`` follows how the original generator cut its
windows: one long channel run per dataset seed of ``stream_length`` samples, along which
the CFO and SRO are clipped random walks (``cfo_walk`` / ``sro_walk`` per sample, GNU
Radio's 0.01 Hz at 200 kHz), the carrier phase is the CFO's accumulated phase, and every
path gain is a sum-of-sinusoids fader (8 sinusoids, Doppler ``doppler`` cycles/sample,
1 Hz at 200 kHz); each window is read at a uniformly random position of that run. So a
window sees a CFO of a few Hz and the multipath of one slowly drifting channel, not a
fresh Rayleigh draw. The original re-ran its channel from one fixed seed and cut longer
runs for some classes (26,664-80,000 samples), which made the channel state's
distribution class-dependent; here every class reads the same run over the same span.

Every group draws from its own random streams seeded by (seed, dataset, class, SNR), so
a group is identical whichever other groups are generated: an SNR filter only skips work
(the stream channel's run depends on (seed, dataset) only).

Files: ``pulses.py`` (pulse shapes, the :data:`Waveform` type), ``digital.py``
(constellations, the linear modulator), ``fsk.py`` (continuous-phase FSK family),
``analog.py`` (speech-like source, AM, FM), ``channel.py`` (steps 2-4 and the SNR
reference), ``generation.py`` (groups, steps 5-6, whole sets), ``dataset.py``
(:class:`SynthDataset`, the plugins' base, and the cache's source fingerprint). Plugins
import the package (``from amrbench_plugins.datasets import synth``) and call
``synth.psk(...)``, ``synth.Channel(...)`` etc.
"""
from .analog import am, fm, silent, speech_audio
from .channel import (CHANNEL_MODELS, FADER_SINUSOIDS, FADING_CENTER, FADING_TAPS, LANCZOS, SNR_REFERENCES,
                      Channel, StreamRun, apply_channel, channel_state, fading_taps, independent_path_gains,
                      resample)
from .dataset import COMMON_DEFAULTS, SynthDataset, source_files, source_fingerprint
from .digital import apsk, ask, linear, pam, psk, qam, unit_power
from .fsk import cpm
from .generation import NORMS, generate, generate_threads, group_streams, normalise, render_group, stream_run
from .pulses import Waveform, filter_rows, frequency_pulse, rrc_taps, upsample

__all__ = [
    "CHANNEL_MODELS", "COMMON_DEFAULTS", "Channel", "FADER_SINUSOIDS", "FADING_CENTER", "FADING_TAPS",
    "LANCZOS", "NORMS", "SNR_REFERENCES", "StreamRun", "SynthDataset", "Waveform", "am", "apply_channel",
    "apsk", "ask", "channel_state", "cpm", "fading_taps", "filter_rows", "fm", "frequency_pulse", "generate",
    "generate_threads", "group_streams", "independent_path_gains", "linear", "normalise", "pam", "psk", "qam",
    "render_group", "resample", "rrc_taps", "silent", "source_files", "source_fingerprint", "speech_audio",
    "stream_run", "unit_power", "upsample",
]
