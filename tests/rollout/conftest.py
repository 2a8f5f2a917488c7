import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def single_intra_op_thread():
    # On the shared 2-core CI VM, intra-op threads spin-wait on these small matrices (100x slower).
    torch.set_num_threads(1)
