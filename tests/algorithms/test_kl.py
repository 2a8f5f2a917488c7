import math

import pytest
import torch

from rl_reason.algorithms import entropy_bonus_loss, entropy_from_logits, kl_penalised_rewards, kl_penalty


def test_estimators_hand_example():
    # policy prob 0.5, reference 0.25: log-ratio x = log 2
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    x = math.log(2.0)
    assert kl_penalty(logp, ref, "k1").item() == pytest.approx(x)
    assert kl_penalty(logp, ref, "k2").item() == pytest.approx(x * x / 2)
    assert kl_penalty(logp, ref, "k3").item() == pytest.approx(0.25 / 0.5 - 1 + x)  # ref/p - 1 - log(ref/p)
    assert kl_penalty(logp, ref, "low_var_kl").item() == kl_penalty(logp, ref, "k3").item()


def test_k1_and_k3_are_unbiased_in_exact_expectation():
    p = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    q = torch.tensor([0.25, 0.25, 0.4, 0.1], dtype=torch.float64)
    true_kl = (p * (p / q).log()).sum()
    for kind in ("k1", "k3"):
        expectation = (p * kl_penalty(p.log(), q.log(), kind)).sum()
        torch.testing.assert_close(expectation, true_kl, rtol=1e-12, atol=1e-12)
    # k2 is biased but non-negative
    assert (kl_penalty(p.log(), q.log(), "k2") >= 0).all()


def test_k3_is_clamped_for_collapsed_tokens():
    assert kl_penalty(torch.tensor([-50.0]), torch.tensor([0.0]), "k3").item() == 10.0


def test_unknown_kind_lists_valid():
    with pytest.raises(KeyError, match="valid: k1, k2, k3"):
        kl_penalty(torch.zeros(1), torch.zeros(1), "k4")


def test_entropy_from_logits_and_bonus():
    probs = torch.tensor([[[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]]])
    logits = probs.log() + 7.0  # a shift must not matter
    expected = torch.tensor([[0.5 * math.log(2) + 2 * 0.25 * math.log(4), math.log(3)]])
    torch.testing.assert_close(entropy_from_logits(logits), expected)
    torch.testing.assert_close(entropy_bonus_loss(logits=logits, coef=0.01), -0.01 * expected)
    torch.testing.assert_close(entropy_bonus_loss(entropy=expected, coef=0.01), -0.01 * expected)
    with pytest.raises(ValueError, match="exactly one of entropy"):
        entropy_bonus_loss(coef=0.1)


def test_kl_as_reward_penalty():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    logp = torch.tensor([[math.log(0.5), math.log(0.5), math.log(0.5)], [0.0, 0.0, 0.0]], requires_grad=True)
    ref = torch.tensor([[math.log(0.25), math.log(0.5), math.log(1.0)], [0.0, 0.0, -3.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    penalised, kl = kl_penalised_rewards(rewards, logp, ref, mask, beta=0.5, kind="k1")
    # k1 per token: log 2, 0, -log 2; second row 0, 0 and a masked token
    x = math.log(2.0)
    torch.testing.assert_close(kl, torch.tensor([[x, 0.0, -x], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(penalised, torch.tensor([[-0.5 * x, 0.0, 1.0 + 0.5 * x], [0.0, 2.0, 0.0]]))
    assert not penalised.requires_grad
