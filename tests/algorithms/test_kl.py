import math

import pytest
import torch

from rl_reason.algorithms import entropy_bonus_loss, entropy_from_logits, kl_penalty


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
