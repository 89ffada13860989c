import pytest


def pytest_collection_modifyitems(items):
    """Everything under tests/benchmarks is a benchmark: kept out of the default run."""
    for item in items:
        item.add_marker(pytest.mark.benchmark)
