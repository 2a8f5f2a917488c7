import math

import pytest
import torch

from rl_reason.algorithms import clipped_value_loss, explained_variance


def test_clipped_value_loss_hand_example():
    values = torch.tensor([[1.0, 0.5, 0.85, 7.0]], dtype=torch.float64, requires_grad=True)
    old = torch.tensor([[0.8, 0.8, 0.8, 0.0]], dtype=torch.float64)
    returns = torch.tensor([[2.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    loss, m = clipped_value_loss(values=values, old_values=old, returns=returns, response_mask=mask, clip_range=0.1)
    # t0: V clipped to 0.9, (0.9-2)^2 = 1.21 > (1-2)^2 = 1;  t1: V clipped to 0.7, 0.49 > 0.25;
    # t2: |V - old| = 0.05 inside the range, both terms 0.85^2
    expected = torch.tensor([[0.5 * 1.1**2, 0.5 * 0.7**2, 0.5 * 0.85**2, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(loss, expected)
    assert m["value_clip_frac"].item() == pytest.approx(2 / 3)
    loss.sum().backward()
    # clipped terms are constant in V; the unclipped one has gradient V - R
    torch.testing.assert_close(values.grad, torch.tensor([[0.0, 0.0, 0.85, 0.0]], dtype=torch.float64))
    unclipped, _ = clipped_value_loss(values=values, old_values=old, returns=returns, response_mask=mask,
                                      clip_range=None)
    torch.testing.assert_close(unclipped, 0.5 * (values - returns).detach() ** 2 * mask)


def test_explained_variance():
    returns = torch.tensor([[1.0, 2.0, 3.0, 50.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert explained_variance(returns, returns, mask).item() == pytest.approx(1.0)
    assert explained_variance(torch.zeros_like(returns), returns, mask).item() == pytest.approx(0.0)
    # residuals 1, 0, -1 have var 1; returns var 1 -> 1 - 1/1
    assert explained_variance(returns + torch.tensor([[-1.0, 0.0, 1.0, 0.0]]), returns, mask).item() == \
        pytest.approx(0.0)
    assert explained_variance(returns + 0.5, returns, mask).item() == pytest.approx(1.0)
    assert math.isnan(explained_variance(returns, torch.ones(1, 4), mask).item())
