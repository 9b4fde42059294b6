"""Suite-wide test settings."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    # CI has two shared cores; one torch thread per test keeps timings steady and results exact
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
