import math

import pytest
import torch

from rl_reason.algorithms import PREFERENCE_LOSSES, bradley_terry_loss


def softplus(x):
    return math.log1p(math.exp(x))  # -log sigmoid(-x)


# Two pairs. Pair 0: chosen log-ratio -10 - (-12) = 2, rejected -15 - (-14) = -1  -> h = 3.
#            Pair 1: chosen log-ratio -5 - (-4) = -1, rejected -6 - (-7) = 1      -> h = -2.
PAIRS = dict(
    chosen_logps=torch.tensor([-10.0, -5.0], dtype=torch.float64),
    rejected_logps=torch.tensor([-15.0, -6.0], dtype=torch.float64),
    ref_chosen_logps=torch.tensor([-12.0, -4.0], dtype=torch.float64),
    ref_rejected_logps=torch.tensor([-14.0, -7.0], dtype=torch.float64),
    chosen_lengths=torch.tensor([4.0, 5.0], dtype=torch.float64),
    rejected_lengths=torch.tensor([5.0, 2.0], dtype=torch.float64),
)


def _close(got, expected):
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_dpo_hand_example():
    losses, m = PREFERENCE_LOSSES.get("dpo")(**PAIRS, beta=0.1)
    # -log sigmoid(beta h) = softplus(-beta h)
    _close(losses, [softplus(-0.1 * 3), softplus(-0.1 * -2)])
    assert m["rewards/chosen"].item() == pytest.approx((0.1 * 2 + 0.1 * -1) / 2)
    assert m["rewards/rejected"].item() == pytest.approx((0.1 * -1 + 0.1 * 1) / 2)
    assert m["rewards/accuracy"].item() == 0.5
    assert m["rewards/margin"].item() == pytest.approx((0.3 + -0.2) / 2)
    assert m["logps/chosen"].item() == pytest.approx(-7.5)


def test_conservative_dpo_label_smoothing():
    losses, _ = PREFERENCE_LOSSES.get("dpo")(**PAIRS, beta=0.1, label_smoothing=0.1)
    _close(losses, [0.9 * softplus(-0.3) + 0.1 * softplus(0.3), 0.9 * softplus(0.2) + 0.1 * softplus(-0.2)])
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        PREFERENCE_LOSSES.get("dpo")(**PAIRS, label_smoothing=0.5)


def test_ipo_hand_example():
    losses, _ = PREFERENCE_LOSSES.get("ipo")(**PAIRS, beta=0.1)
    # per-token log-ratio gaps: 2/4 - (-1)/5 and -1/5 - 1/2; target 1/(2*0.1) = 5
    expected = [(2 / 4 + 1 / 5 - 5) ** 2, (-1 / 5 - 1 / 2 - 5) ** 2]
    assert [round(v, 12) for v in losses.tolist()] == [round(v, 12) for v in expected]


def test_simpo_hand_example():
    losses, m = PREFERENCE_LOSSES.get("simpo")(**PAIRS, beta=2.0, gamma=0.5)
    # rewards beta * mean token log-prob: pair 0: 2*(-10/4) = -5 vs 2*(-15/5) = -6; pair 1: -2 vs -6
    _close(losses, [softplus(-(-5 + 6 - 0.5)), softplus(-(-2 + 6 - 0.5))])
    assert m["rewards/accuracy"].item() == 1.0
    # the reference log-probs play no part
    again, _ = PREFERENCE_LOSSES.get("simpo")(**{**PAIRS, "ref_chosen_logps": None, "ref_rejected_logps": None})
    _close(again, losses.tolist())


def test_orpo_hand_example():
    losses, m = PREFERENCE_LOSSES.get("orpo")(**PAIRS, beta=0.1)
    expected = []
    for c, r in ((-10 / 4, -15 / 5), (-5 / 5, -6 / 2)):  # mean token log-probs
        log_odds = (c - r) - (math.log(1 - math.exp(c)) - math.log(1 - math.exp(r)))
        expected.append(-c + 0.1 * softplus(-log_odds))
    _close(losses, expected)


def test_missing_inputs_are_named():
    with pytest.raises(ValueError, match="ipo needs chosen_lengths, rejected_lengths"):
        PREFERENCE_LOSSES.get("ipo")(**{**PAIRS, "chosen_lengths": None, "rejected_lengths": None})
    with pytest.raises(ValueError, match="dpo needs ref_chosen_logps"):
        PREFERENCE_LOSSES.get("dpo")(**{**PAIRS, "ref_chosen_logps": None})


def test_bradley_terry_with_margin_and_centring():
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    losses, m = bradley_terry_loss(chosen, rejected)
    torch.testing.assert_close(losses, torch.tensor([softplus(-1.0), softplus(1.0)]))
    losses, _ = bradley_terry_loss(chosen, rejected, margin=torch.tensor([0.5, 0.0]), center_coef=0.01)
    # the margin asks for r_c - r_r > 0.5 on pair 0; centring adds 0.01 * (r_c + r_r)^2
    torch.testing.assert_close(losses, torch.tensor([softplus(-(1.0 - 0.5)) + 0.01 * 3.0**2,
                                                     softplus(1.0) + 0.01 * 1.0**2]))
    assert m["accuracy"].item() == 0.5 and m["margin"].item() == pytest.approx(0.0)


def test_kto_loss_hand_computed():
    from rl_reason.algorithms import UNPAIRED_LOSSES

    # log-ratios r = [2, -1, 0.5]; KL sums give z0 = mean([1, 0]) = 0.5; beta = 0.5
    policy = torch.tensor([-1.0, -4.0, -2.5], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([-3.0, -3.0, -3.0], dtype=torch.float64)
    desirable = torch.tensor([True, False, True])
    losses, metrics = UNPAIRED_LOSSES.get("kto")(
        policy_logps=policy, ref_logps=ref, desirable=desirable, kl_policy_logps=torch.tensor([-2.0, -5.0]),
        kl_ref_logps=torch.tensor([-3.0, -5.0]), beta=0.5, desirable_weight=1.0, undesirable_weight=2.0)

    def sig(x):
        return 1 / (1 + math.exp(-x))

    expected = [1 - sig(0.5 * (2 - 0.5)), 2 * (1 - sig(0.5 * (0.5 + 1))), 1 - sig(0.5 * (0.5 - 0.5))]
    torch.testing.assert_close(losses, torch.tensor(expected, dtype=torch.float64))
    assert float(metrics["kl"]) == pytest.approx(0.5)
    assert float(metrics["rewards/chosen"]) == pytest.approx(0.5 * (2 + 0.5) / 2)
    assert float(metrics["rewards/rejected"]) == pytest.approx(-0.5)
    # z0 is detached and clamped at 0: a negative batch KL estimate gives the reference point 0
    neg, m = UNPAIRED_LOSSES.get("kto")(policy_logps=policy, ref_logps=ref, desirable=desirable,
                                        kl_policy_logps=torch.tensor([-9.0]), kl_ref_logps=torch.tensor([-3.0]), beta=0.5)
    assert float(m["kl"]) == 0.0 and float(neg[2].detach()) == pytest.approx(1 - sig(0.5 * 0.5))
