import math

import pytest
import torch

from rl_reason.algorithms import POLICY_LOSSES
from rl_reason.algorithms.entropy import adaptive_entropy_coef, token_covariance

# One row of 4 valid tokens + 1 padded. A = [2, 2, -2, -2] (batch mean 0); logp = [-1, -3, -1, -3]
# (mean -2, centred [1, -1, 1, -1]) -> covariance terms [2, -2, -2, 2]; the padded token is 0.
ADV = torch.tensor([[2.0, 2.0, -2.0, -2.0, 7.0]], dtype=torch.float64)
MASK = torch.tensor([[1.0, 1, 1, 1, 0]], dtype=torch.float64)
LOGP = [-1.0, -3.0, -1.0, -3.0, 0.0]


def test_token_covariance():
    cov = token_covariance(ADV * MASK, torch.tensor([LOGP], dtype=torch.float64), MASK)
    torch.testing.assert_close(cov, torch.tensor([[2.0, -2.0, -2.0, 2.0, 0.0]], dtype=torch.float64))


def test_clip_cov_cuts_high_covariance_tokens_whose_clip_does_not_bind():
    logp = torch.tensor([LOGP], dtype=torch.float64, requires_grad=True)
    # on-policy (ratio 1): tokens 0 and 3 have covariance 2 in (1, 5); 0.5 * 4 valid -> both cut
    loss, metrics = POLICY_LOSSES.get("clip_cov")(logp=logp, old_logp=logp.detach(), advantages=ADV * MASK,
                                                  response_mask=MASK, cov_ratio=0.5, cov_lb=1.0, cov_ub=5.0)
    torch.testing.assert_close(loss, torch.tensor([[0.0, -2.0, 2.0, 0.0, 0.0]], dtype=torch.float64))
    loss.sum().backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[0.0, -2.0, 2.0, 0.0, 0.0]], dtype=torch.float64))
    assert metrics["cov_frac"] == pytest.approx(0.5)

    # cov_ratio 0.25 -> one of the two, drawn by the generator
    cut = []
    for seed in range(8):
        loss, metrics = POLICY_LOSSES.get("clip_cov")(logp=logp.detach(), old_logp=logp.detach(), advantages=ADV * MASK,
                                                      response_mask=MASK, cov_ratio=0.25,
                                                      generator=torch.Generator().manual_seed(seed))
        zeros = [t for t in range(4) if loss[0, t] == 0]
        assert len(zeros) == 1 and zeros[0] in (0, 3) and metrics["cov_frac"] == pytest.approx(0.25)
        cut.append(zeros[0])
    assert set(cut) == {0, 3}

    # token 0 moved up by 0.5 (ratio 1.65 > 1.2 with A > 0): PPO's clip binds there, so it is not a candidate.
    # logp = [-0.5, -3, -1, -3]: centred [1.375, -1.125, 0.875, -1.125] -> cov [2.75, -2.25, -1.75, 2.25]
    moved = torch.tensor([[-0.5, -3.0, -1.0, -3.0, 0.0]], dtype=torch.float64)
    loss, _ = POLICY_LOSSES.get("clip_cov")(logp=moved, old_logp=logp.detach(), advantages=ADV * MASK,
                                            response_mask=MASK, cov_ratio=0.5)
    torch.testing.assert_close(loss, torch.tensor([[-2 * 1.2, -2.0, 2.0, 0.0, 0.0]], dtype=torch.float64))


def test_kl_cov_penalises_the_top_covariance_tokens():
    # logp = [-1, -3, -1, -3.5]: mean -2.125, centred [1.125, -0.875, 1.125, -1.375]
    # -> cov [2.25, -1.75, -2.25, 2.75]: top 2 (ratio 0.5 of 4) are tokens 3 and 0
    cur = [-1.0, -3.0, -1.0, -3.5, 0.0]
    delta = [0.1, 0.2, -0.3, -0.4, 0.0]  # logp - old_logp
    logp = torch.tensor([cur], dtype=torch.float64, requires_grad=True)
    old = torch.tensor([[c - d for c, d in zip(cur, delta)]], dtype=torch.float64)
    loss, metrics = POLICY_LOSSES.get("kl_cov")(logp=logp, old_logp=old, advantages=ADV * MASK, response_mask=MASK,
                                                cov_ratio=0.5, cov_kl_coef=0.5)
    a = [2.0, 2.0, -2.0, -2.0]
    expected = [-a[t] * math.exp(delta[t]) + (0.5 * abs(delta[t]) if t in (0, 3) else 0.0) for t in range(4)]
    torch.testing.assert_close(loss, torch.tensor([expected + [0.0]], dtype=torch.float64))
    assert metrics["cov_frac"] == pytest.approx(0.5)
    loss.sum().backward()
    # d/dx of -A e^x + c |x|: -A e^x + c sign(x) on the penalised tokens
    grad = [-a[t] * math.exp(delta[t]) + (0.5 * math.copysign(1, delta[t]) if t in (0, 3) else 0.0) for t in range(4)]
    torch.testing.assert_close(logp.grad, torch.tensor([grad + [0.0]], dtype=torch.float64))


def test_adaptive_entropy_coef_moves_toward_the_target_and_stays_in_bounds():
    assert adaptive_entropy_coef(0.01, 0.5, target=1.0, step=0.005, max_coef=0.1) == pytest.approx(0.015)
    assert adaptive_entropy_coef(0.01, 1.5, target=1.0, step=0.005, max_coef=0.1) == pytest.approx(0.005)
    assert adaptive_entropy_coef(0.002, 1.5, target=1.0, step=0.005, max_coef=0.1) == 0.0
    assert adaptive_entropy_coef(0.098, 0.1, target=1.0, step=0.005, max_coef=0.1) == pytest.approx(0.1)
    assert adaptive_entropy_coef(0.01, float("nan"), target=1.0, step=0.005, max_coef=0.1) == 0.01
