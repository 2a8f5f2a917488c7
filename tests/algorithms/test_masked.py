import pytest
import torch

from rl_reason.algorithms import masked_mean, masked_var, masked_whiten

VALUES = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0], [100.0, 100.0, 100.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)


def test_masked_mean():
    assert masked_mean(VALUES, MASK).item() == pytest.approx((1 + 2 + 3) / 3)
    # per row; the empty row gives 0, not NaN
    torch.testing.assert_close(masked_mean(VALUES, MASK, dim=-1), torch.tensor([1.5, 3.0, 0.0]))


def test_masked_var_and_whiten():
    # values 1, 2, 3: mean 2, unbiased var (1 + 0 + 1) / 2 = 1
    assert masked_var(VALUES, MASK).item() == pytest.approx(1.0)
    assert masked_var(VALUES, MASK, unbiased=False).item() == pytest.approx(2 / 3)
    white = masked_whiten(VALUES, MASK, eps=0.0)
    torch.testing.assert_close(white, torch.tensor([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))


def test_unbiased_var_needs_two_elements():
    with pytest.raises(ValueError, match="at least 2"):
        masked_var(VALUES, MASK & torch.tensor([[False, False, False], [True, False, False], [False] * 3]))
