from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    """Tests under tests/benchmarks are benchmarks: kept out of the default run."""
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.benchmark)
