import math

import pytest
import torch

from rl_reason.algorithms import POLICY_LOSSES, logprob_mismatch_metrics, truncated_is_weights

# Five valid tokens + one padded, old_logp = 0 so that ratio = exp(logp):
#   t0: r=1.5, A=+1  -> clip-high binds: max(-1.5, -1.28) = -1.28, zero gradient
#   t1: r=0.5, A=+1  -> max(-0.5, -0.8) = -0.5, unclipped
#   t2: r=0.5, A=-1  -> clip-low binds: max(0.5, 0.8) = 0.8, zero gradient
#   t3: r=4.0, A=-1  -> max(4.0, 1.28) = 4.0; dual clip c=3: min(4.0, 3.0) = 3.0, zero gradient
#   t4: r=1.1, A=-2  -> max(2.2, 2.2) = 2.2, unclipped (ratio inside the range)
RATIOS = [1.5, 0.5, 0.5, 4.0, 1.1, 7.0]
ADV = torch.tensor([[1.0, 1.0, -1.0, -1.0, -2.0, 5.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0, 0.0]])
OLD = torch.zeros(1, 6)


def _logp():
    return torch.tensor([[math.log(r) for r in RATIOS]], dtype=torch.float64, requires_grad=True)


def test_ppo_clip_asymmetric_and_dual_clip():
    logp = _logp()
    loss, metrics = POLICY_LOSSES.get("ppo_clip")(logp=logp, old_logp=OLD, advantages=ADV, response_mask=MASK,
                                                  clip_low=0.2, clip_high=0.28, clip_ratio_c=3.0)
    expected = torch.tensor([[-1.28, -0.5, 0.8, 3.0, 2.2, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    loss.sum().backward()
    # unclipped tokens: d(-A r)/d logp = -A r; clipped ones have no gradient
    torch.testing.assert_close(logp.grad, torch.tensor([[0.0, -0.5, 0.0, 0.0, 2.2, 0.0]], dtype=torch.float64))
    assert metrics["clip_frac_high"] == pytest.approx(1 / 5)
    assert metrics["clip_frac_low"] == pytest.approx(1 / 5)
    assert metrics["clip_frac_dual"] == pytest.approx(1 / 5)
    assert metrics["ratio_mean"] == pytest.approx((1.5 + 0.5 + 0.5 + 4.0 + 1.1) / 5)
    assert metrics["ratio_max"] == pytest.approx(4.0) and metrics["ratio_min"] == pytest.approx(0.5)
    # approx_kl: k3 of log-ratio x is exp(-x) - 1 + x, i.e. 1/r - 1 + log r
    k3 = [1 / r - 1 + math.log(r) for r in RATIOS[:5]]
    assert metrics["approx_kl"] == pytest.approx(sum(k3) / 5)


def test_ppo_clip_without_dual_clip_keeps_large_negative_loss():
    loss, metrics = POLICY_LOSSES.get("ppo_clip")(logp=_logp(), old_logp=OLD, advantages=ADV, response_mask=MASK,
                                                  clip_low=0.2, clip_high=0.28)
    assert loss[0, 3].item() == pytest.approx(4.0)
    assert metrics["clip_frac_dual"] == 0


def test_ppo_clip_symmetric_clip_binds_at_1_2():
    loss, _ = POLICY_LOSSES.get("ppo_clip")(logp=_logp(), old_logp=OLD, advantages=ADV, response_mask=MASK)
    assert loss[0, 0].item() == pytest.approx(-1.2)  # 1 + default clip_high 0.2


def test_is_weights_scale_each_token():
    w = torch.tensor([[2.0, 0.5, 1.0, 1.0, 0.25, 1.0]])
    plain, _ = POLICY_LOSSES.get("ppo_clip")(logp=_logp(), old_logp=OLD, advantages=ADV, response_mask=MASK)
    weighted, _ = POLICY_LOSSES.get("ppo_clip")(logp=_logp(), old_logp=OLD, advantages=ADV, response_mask=MASK,
                                                is_weights=w)
    torch.testing.assert_close(weighted, plain * w.double())


def test_gspo_sequence_ratio():
    # row 0: token log-ratios 0.1, 0.3 -> s = exp(0.2); row 1: one token with log-ratio -0.4, padding after
    old = torch.zeros(2, 2, dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    adv = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    logp = torch.tensor([[0.1, 0.3], [-0.4, 3.0]], dtype=torch.float64, requires_grad=True)
    loss, metrics = POLICY_LOSSES.get("gspo")(logp=logp, old_logp=old, advantages=adv, response_mask=mask,
                                              clip_low=0.5, clip_high=0.5)
    s0, s1 = math.exp(0.2), math.exp(-0.4)
    torch.testing.assert_close(loss, torch.tensor([[-s0, -s0], [s1, 0.0]], dtype=torch.float64))
    loss.sum().backward()
    # each token's gradient is -A * s_i (the sequence ratio value times d logp_t)
    torch.testing.assert_close(logp.grad, torch.tensor([[-s0, -s0], [s1, 0.0]], dtype=torch.float64))
    assert metrics["ratio_max"] == pytest.approx(s0)
    # with the paper's narrow clip both sequences are clipped: s0 > 1 + 4e-4 (A > 0), s1 < 1 - 3e-4 (A < 0)
    logp.grad = None
    loss, metrics = POLICY_LOSSES.get("gspo")(logp=logp, old_logp=old, advantages=adv, response_mask=mask)
    torch.testing.assert_close(loss, torch.tensor([[-(1 + 4e-4), -(1 + 4e-4)], [1 - 3e-4, 0.0]], dtype=torch.float64))
    assert metrics["clip_frac_high"] == pytest.approx(2 / 3) and metrics["clip_frac_low"] == pytest.approx(1 / 3)


def test_reinforce_is_minus_advantage_times_logp():
    logp = torch.tensor([[-0.5, -2.0, -1.0]], requires_grad=True)
    adv = torch.tensor([[2.0, 2.0, 2.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss, metrics = POLICY_LOSSES.get("reinforce")(logp=logp, old_logp=None, advantages=adv, response_mask=mask)
    torch.testing.assert_close(loss, torch.tensor([[-2.0 * -0.5, -2.0 * -2.0, 0.0]]))
    loss.sum().backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-2.0, -2.0, 0.0]]))
    assert "approx_kl" not in metrics


def test_on_policy_ppo_gradient_equals_reinforce():
    g = torch.Generator().manual_seed(1)
    logp0 = -torch.rand(3, 4, generator=g, dtype=torch.float64)
    adv = torch.randn(3, 4, generator=g, dtype=torch.float64)
    mask = torch.ones(3, 4)
    grads = []
    for name in ("ppo_clip", "reinforce"):
        logp = logp0.clone().requires_grad_(True)
        loss, _ = POLICY_LOSSES.get(name)(logp=logp, old_logp=logp0, advantages=adv, response_mask=mask)
        loss.sum().backward()
        grads.append(logp.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_truncated_is_weights_cap():
    old = torch.tensor([[0.0, math.log(3.0), math.log(0.5)]])
    w = truncated_is_weights(old, torch.zeros(1, 3), cap=2.0)
    torch.testing.assert_close(w, torch.tensor([[1.0, 2.0, 0.5]]))


def test_mismatch_metrics():
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    trainer = torch.tensor([[math.log(0.5), math.log(0.2), 0.0]])
    rollout = torch.tensor([[math.log(0.25), math.log(0.2), -5.0]])
    m = logprob_mismatch_metrics(trainer, rollout, mask)
    assert m["mismatch_ratio_max"] == pytest.approx(2.0)
    assert m["mismatch_abs_diff"] == pytest.approx(math.log(2.0) / 2)
    # k3 with samples from the rollout engine: r - 1 - log r, r = pi_trainer / pi_rollout = 2 and 1
    assert m["mismatch_kl"] == pytest.approx((2.0 - 1.0 - math.log(2.0)) / 2)


def test_gmpo_geometric_mean_of_log_clipped_ratios():
    # Row 0 (A=+1, 3 valid tokens), log-ratios 0.6, -0.1, 0.0 and clip 0.4 in log space:
    #   A > 0 keeps min(x, clip(x)): 0.4, -0.1, 0.0 -> mean 0.1 -> w = e^0.1, L = -e^0.1
    # Row 1 (A=-2, 2 valid tokens), log-ratios -0.7, 0.3:
    #   A < 0 keeps max(x, clip(x)): -0.4, 0.3 -> mean -0.05 -> w = e^-0.05, L = 2 e^-0.05
    logp = torch.tensor([[0.6, -0.1, 0.0, 9.0], [-0.7, 0.3, 9.0, 9.0]], dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1.0, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.float64)
    adv = torch.tensor([[1.0], [-2.0]], dtype=torch.float64) * mask
    loss, metrics = POLICY_LOSSES.get("gmpo")(logp=logp, old_logp=torch.zeros(2, 4, dtype=torch.float64),
                                              advantages=adv, response_mask=mask, clip_low=0.4, clip_high=0.4)
    w0, w1 = math.exp(0.1), math.exp(-0.05)
    expected = torch.tensor([[-w0, -w0, -w0, 0], [2 * w1, 2 * w1, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    # d(sum of row i's per-sequence loss L_i)/d x_t = -A_i w_i / n_i on unclipped tokens, 0 on clipped ones
    (loss[:, 0]).sum().backward()
    grad = torch.tensor([[0.0, -w0 / 3, -w0 / 3, 0], [0.0, 2 * w1 / 2, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(logp.grad, grad, rtol=1e-12, atol=1e-12)
    assert metrics["clip_frac_high"] == pytest.approx(1 / 5) and metrics["clip_frac_low"] == pytest.approx(1 / 5)
