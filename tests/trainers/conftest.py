import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models run ~20-30x faster on one thread than with several OpenMP threads on a busy 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
