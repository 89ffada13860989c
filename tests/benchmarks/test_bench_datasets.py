"""Benchmark: generating the full rml2016a-synth set (11 classes x 20 SNRs x 1000 = 220,000
signals of 128 samples), without the disk cache. Run on demand:

    python -m pytest tests/benchmarks/test_bench_datasets.py -m benchmark --benchmark-enable -p no:cacheprovider
"""
import pytest

from amrbench_plugins.datasets.synth_rml2016a import SynthRML2016a


@pytest.mark.benchmark
def test_generate_full_rml2016a_synth(benchmark):
    dataset = SynthRML2016a()
    data = benchmark.pedantic(dataset.generate, args=(0,), rounds=2, iterations=1, warmup_rounds=0)
    assert data.x.shape == (220_000, 2, 128)


@pytest.mark.benchmark
def test_generate_rml2016a_synth_high_snr_only(benchmark):
    """The SNR filter skips work: [10, 18] costs about a quarter of the full set."""
    dataset = SynthRML2016a()
    data = benchmark.pedantic(dataset.generate, args=(0, (10, 18)), rounds=2, iterations=1)
    assert data.x.shape == (55_000, 2, 128)
