import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """The test networks are tiny: one thread avoids OpenMP synchronisation costing more than the work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
