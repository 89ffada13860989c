"""The contracts' test environment, wherever they run from (``pytest --pyargs
amrbench.contracts`` in a third party's project loads no conftest of amrbench's tests):
a cache folder of the session's own, so a contract never reads an artifact an earlier
session left behind nor writes into the user's cache, and one torch thread per test."""
import pytest
import torch


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: contract cases a distribution declares slow (SLOW)")


@pytest.fixture(scope="session", autouse=True)
def contract_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AMRBENCH_CACHE", str(tmp_path_factory.mktemp("amrbench-cache")))
        yield


@pytest.fixture(autouse=True)
def one_thread():
    """Every test starts with one intra-op thread, whatever a test before it set."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
