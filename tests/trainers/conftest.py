import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models run ~20-30x faster on one thread than with several OpenMP threads on a busy 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def saved_policy(tmp_path):
    """A tiny random Llama saved as a Hugging Face folder (for code that loads models by path)."""
    from rl_reason.models import tiny_model

    lm, tok = tiny_model(seed=0)
    lm.save_pretrained(tmp_path / "policy")
    tok.save_pretrained(tmp_path / "policy")
    return tmp_path / "policy"
