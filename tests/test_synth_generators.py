"""The synthetic-signal machinery (amrbench_plugins.datasets.synth): constellations, the SNR
references of the noise, the stream channel model and the cache's source fingerprint."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from amrbench_plugins.datasets import synth, synth_rml2016a


def estimated_snr_db(waveform, snr_db, channel, seed=3, count=400, length=256):
    """Es/N0 measured from the same windows with and without their noise."""
    noisy = synth.render_group(waveform, count, length, snr_db, synth.group_streams(seed, "t", "c", snr_db), channel)
    clean = synth.render_group(waveform, count, length, snr_db, synth.group_streams(seed, "t", "c", snr_db), channel,
                               noise=False)
    noise = noisy - clean
    return 10 * np.log10(np.mean(np.abs(clean) ** 2) * channel.sps / np.mean(np.abs(noise) ** 2))


# --------------------------------------------------------------------------- SNR references
@pytest.mark.parametrize("waveform", [synth.linear(synth.qam(16)), synth.cpm(2, 0.5), synth.fm(silence=0.0)])
def test_snr_label_controls_noise(waveform):
    channel = synth.Channel()
    labels = [-10.0, 0.0, 10.0, 18.0]
    measured = [estimated_snr_db(waveform, s, channel) for s in labels]
    assert np.all(np.diff(measured) > 0)
    assert np.allclose(measured, labels, atol=1.0), measured


def test_sample_snr_reference_drops_the_sps_factor():
    wave = synth.linear(synth.psk(4))
    symbol = estimated_snr_db(wave, 6.0, synth.Channel(snr_reference="symbol"))
    sample = estimated_snr_db(wave, 6.0, synth.Channel(snr_reference="sample"))
    assert abs((sample - symbol) - 10 * np.log10(8)) < 0.5  # same label, 9 dB less noise


@pytest.mark.parametrize("label", [-10.0, 6.0, 18.0])
def test_rml2016_snr_reference_gives_twice_the_label_per_sample(label):
    """The original generator's noise amplitude 10^(-SNR/10): per-sample SNR = 2 x label dB."""
    wave = synth.linear(synth.psk(4))
    es_n0 = estimated_snr_db(wave, label, synth.Channel(snr_reference="rml2016"))
    per_sample = es_n0 - 10 * np.log10(8)
    assert abs(per_sample - 2 * label) < 0.5, per_sample


# --------------------------------------------------------------------------- constellations
def test_constellations_have_unit_power_and_size():
    for points, m in [(synth.qam(32), 32), (synth.qam(128), 128), (synth.qam(64), 64), (synth.apsk((4, 12)), 16),
                      (synth.psk(8), 8), (synth.pam(4), 4), (synth.ask(2), 2)]:
        assert len(np.unique(np.round(points, 9))) == m
        assert np.isclose(np.mean(np.abs(points) ** 2), 1.0)


# --------------------------------------------------------------------------- stream channel
def carrier_frequencies(channel: synth.Channel, rows: int = 300, seed: int = 5) -> np.ndarray:
    """Per-window frequency (cycles/sample) of a noiseless, unfaded unit carrier."""
    carrier = lambda rng, count, length, sps: np.ones((count, length), dtype=np.complex128)  # noqa: E731
    run = synth.stream_run(seed, "t", channel)
    rx = synth.render_group(carrier, rows, 128, 10.0, synth.group_streams(seed, "t", "c", 10.0), channel,
                            noise=False, run=run)
    return np.angle(np.sum(rx[:, 1:] * np.conj(rx[:, :-1]), axis=1)) / (2 * np.pi)


def test_stream_channel_gives_a_few_hertz_of_cfo_independent_gives_hundreds():
    """At 200 kHz: the random walk (0.01 Hz/sample over 50,000 samples) stays within a few
    Hz; the independent model spreads the CFO uniformly over +-500 Hz."""
    stream = carrier_frequencies(synth.Channel(model="stream", fading=False)) * 200e3
    independent = carrier_frequencies(synth.Channel(model="independent", fading=False)) * 200e3
    assert np.max(np.abs(stream)) < 20
    assert np.std(independent) > 200 and np.max(np.abs(independent)) <= 500 + 1


def test_stream_walks_are_clipped_and_the_fader_has_unit_power():
    channel = synth.Channel(model="stream", cfo_max=1e-7, sro_max=2e-7, doppler=1e-3)
    run = synth.stream_run(0, "t", channel)
    assert np.max(np.abs(run.cfo)) <= 1e-7 and np.max(np.abs(run.sro)) <= 2e-7
    assert np.sum(np.abs(run.cfo) == 1e-7) > 0  # the walk (std ~1.1e-5) does hit the clip
    gains = run.path_gains(np.arange(0, 2e6, 100.0))  # 2,000 Doppler periods
    assert np.allclose(np.mean(np.abs(gains) ** 2, axis=0), 1.0, atol=0.15)


def test_stream_channel_drifts_slowly_along_the_run():
    """Windows read close together on the run see nearly the same multipath (1 Hz Doppler
    at 200 kHz), far apart ones a different one."""
    run = synth.stream_run(0, "t", synth.Channel(model="stream"))
    near = run.path_gains(np.array([1000.0, 1128.0]))
    far = run.path_gains(np.array([1000.0, 49000.0]))
    assert np.max(np.abs(near[0] - near[1])) < 0.01
    assert np.max(np.abs(far[0] - far[1])) > 0.1


def test_stream_model_needs_its_run_and_depends_on_the_seed():
    channel = synth.Channel(model="stream")
    with pytest.raises(ValueError, match="StreamRun"):
        synth.render_group(synth.linear(synth.psk(4)), 4, 64, 0.0, synth.group_streams(0, "t", "c", 0.0), channel)
    assert not np.array_equal(synth.stream_run(0, "t", channel).cfo, synth.stream_run(1, "t", channel).cfo)
    assert np.array_equal(synth.stream_run(0, "t", channel).cfo, synth.stream_run(0, "t", channel).cfo)


# --------------------------------------------------------------------------- source fingerprint
def test_source_fingerprint_hashes_every_module_of_the_package_and_the_plugin():
    """An edit anywhere in the machinery (not only one of its files) changes the cache key."""
    package = Path(synth.__file__).parent
    hashed = synth.source_files(synth_rml2016a.SynthRML2016a)
    assert hashed == sorted(hashed)
    assert set(hashed) == {*package.resolve().glob("*.py"), Path(synth_rml2016a.__file__).resolve()}
    assert {"channel.py", "digital.py", "generation.py", "dataset.py"} <= {path.name for path in hashed}
