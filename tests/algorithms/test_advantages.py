import math

import pytest
import torch

from rl_reason.algorithms import ADVANTAGES

# Five responses in two interleaved groups: group 7 = rows 0, 1, 3 with scores 1, 0, 0;
# group 3 = rows 2, 4 with scores 2, 4. Response lengths 3, 1, 2, 4, 2 (T = 4).
SCORES = torch.tensor([1.0, 0.0, 2.0, 0.0, 4.0])
GROUPS = torch.tensor([7, 7, 3, 7, 3])
LENGTHS = [3, 1, 2, 4, 2]
MASK = torch.tensor([[1.0] * n + [0.0] * (4 - n) for n in LENGTHS])


def _per_row(adv):
    """The constant value of each row over its valid tokens (and check it is constant, 0 outside)."""
    for row, n in zip(adv, LENGTHS):
        assert torch.all(row[:n] == row[0]) and torch.all(row[n:] == 0)
    return adv[:, 0]


def test_grpo_hand_example():
    adv, ret = ADVANTAGES.get("grpo")(scores=SCORES, response_mask=MASK, group_ids=GROUPS, eps=1e-6)
    # group 7: mean 1/3; unbiased std sqrt(((2/3)^2 + 2 (1/3)^2) / 2) = sqrt(1/3)
    std7 = math.sqrt(((2 / 3) ** 2 + 2 * (1 / 3) ** 2) / 2)
    # group 3: mean 3; unbiased std sqrt((1 + 1) / 1) = sqrt(2)
    std3 = math.sqrt(2.0)
    expected = [(1 - 1 / 3) / (std7 + 1e-6), (0 - 1 / 3) / (std7 + 1e-6), (2 - 3) / (std3 + 1e-6),
                (0 - 1 / 3) / (std7 + 1e-6), (4 - 3) / (std3 + 1e-6)]
    torch.testing.assert_close(_per_row(adv), torch.tensor(expected), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ret, SCORES[:, None] * MASK)


def test_grpo_without_std_and_dr_grpo_are_centred_scores():
    expected = torch.tensor([1 - 1 / 3, 0 - 1 / 3, 2 - 3, 0 - 1 / 3, 4 - 3])
    adv, _ = ADVANTAGES.get("grpo")(scores=SCORES, response_mask=MASK, group_ids=GROUPS, norm_by_std=False)
    torch.testing.assert_close(_per_row(adv), expected)
    # dr_grpo never scales by std, whatever norm_by_std says
    adv, _ = ADVANTAGES.get("dr_grpo")(scores=SCORES, response_mask=MASK, group_ids=GROUPS, norm_by_std=True)
    torch.testing.assert_close(_per_row(adv), expected)


def test_token_rewards_are_summed_into_the_score():
    # split each score over the first token (score - 0.5) and the last valid token (+0.5),
    # and put garbage in padded positions, which must be ignored
    token_rewards = torch.full((5, 4), 100.0)
    for i, n in enumerate(LENGTHS):
        token_rewards[i, :n] = 0.0
        token_rewards[i, 0] += SCORES[i] - 0.5
        token_rewards[i, n - 1] += 0.5
    from_tokens = ADVANTAGES.get("grpo")(token_rewards=token_rewards, response_mask=MASK, group_ids=GROUPS)
    from_scores = ADVANTAGES.get("grpo")(scores=SCORES, response_mask=MASK, group_ids=GROUPS)
    torch.testing.assert_close(from_tokens, from_scores)


def test_grpo_singleton_group_has_zero_advantage():
    adv, _ = ADVANTAGES.get("grpo")(scores=torch.tensor([5.0, 1.0, 2.0]), response_mask=torch.ones(3, 2),
                                    group_ids=torch.tensor([0, 1, 1]))
    assert torch.all(adv[0] == 0)


def test_rloo_hand_example():
    adv, _ = ADVANTAGES.get("rloo")(scores=SCORES, response_mask=MASK, group_ids=GROUPS)
    # each score minus the mean of the others in its group
    expected = [1 - (0 + 0) / 2, 0 - (1 + 0) / 2, 2 - 4, 0 - (1 + 0) / 2, 4 - 2]
    torch.testing.assert_close(_per_row(adv), torch.tensor(expected))


def test_rloo_rejects_singleton_group():
    with pytest.raises(ValueError, match="group id 9 has 1"):
        ADVANTAGES.get("rloo")(scores=torch.tensor([1.0, 0.0, 1.0]), response_mask=torch.ones(3, 2),
                               group_ids=torch.tensor([0, 0, 9]))


def test_reinforce_pp_discounted_returns_and_whitening():
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    scores = torch.tensor([1.0, -1.0])
    gamma = 0.5
    adv, ret = ADVANTAGES.get("reinforce_pp")(scores=scores, response_mask=mask, gamma=gamma, norm_by_std=False)
    # the score sits on the last valid token and is discounted backwards
    expected = torch.tensor([[gamma**2 * 1, gamma * 1, 1.0], [gamma * -1, -1.0, 0.0]])
    torch.testing.assert_close(ret, expected)
    torch.testing.assert_close(adv, expected)
    adv, _ = ADVANTAGES.get("reinforce_pp")(scores=scores, response_mask=mask, gamma=gamma)
    valid = torch.tensor([0.25, 0.5, 1.0, -0.5, -1.0])
    whitened = (valid - valid.mean()) / valid.var().add(1e-8).sqrt()  # batch baseline = mean
    torch.testing.assert_close(adv[mask > 0], whitened)
    assert torch.all(adv[mask == 0] == 0)


def test_reinforce_pp_baseline_hand_example():
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    adv, _ = ADVANTAGES.get("reinforce_pp_baseline")(scores=torch.tensor([1.0, 0.0, 1.0, 1.0]), response_mask=mask,
                                                      group_ids=torch.tensor([0, 0, 1, 1]))
    # centred by group mean (0.5 / 1.0): 0.5 on 2 tokens, -0.5 on 1, 0 on 1 + 2, then batch-whitened
    valid = torch.tensor([0.5, 0.5, -0.5, 0.0, 0.0, 0.0])
    torch.testing.assert_close(adv[mask > 0], (valid - valid.mean()) / valid.var().add(1e-8).sqrt())


def test_gae_hand_worked_trajectory():
    gamma, lam = 0.9, 0.8
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.6, 0.7, 9.0]])  # the padded value must be ignored
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    adv, ret = ADVANTAGES.get("gae")(token_rewards=rewards, values=values, response_mask=mask,
                                     gamma=gamma, lam=lam, norm_by_std=False)
    a2 = 1.0 + gamma * 0.0 - 0.7            # last token: no bootstrap value
    a1 = (0.0 + gamma * 0.7 - 0.6) + gamma * lam * a2
    a0 = (0.0 + gamma * 0.6 - 0.5) + gamma * lam * a1
    torch.testing.assert_close(adv, torch.tensor([[a0, a1, a2, 0.0]]), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ret, torch.tensor([[a0 + 0.5, a1 + 0.6, a2 + 0.7, 0.0]]), rtol=1e-6, atol=1e-7)


def _gae_reference(rewards, values, mask, gamma, lam):
    """The textbook loop (as in verl/OpenRLHF) on right-padded rows, padding zeroed first."""
    rewards, values = rewards * mask, values * mask
    adv = torch.zeros_like(rewards)
    last = torch.zeros(rewards.shape[0])
    for t in reversed(range(rewards.shape[1])):
        next_v = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros(rewards.shape[0])
        last = rewards[:, t] + gamma * next_v - values[:, t] + gamma * lam * last
        adv[:, t] = last
    return adv * mask


def test_gae_matches_reference_recursion_and_skips_masked_gaps():
    g = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    mask = torch.tensor([[1.0] * n + [0.0] * (6 - n) for n in (6, 3, 1, 5)])
    adv, _ = ADVANTAGES.get("gae")(token_rewards=rewards, values=values, response_mask=mask,
                                   gamma=0.99, lam=0.95, norm_by_std=False)
    torch.testing.assert_close(adv, _gae_reference(rewards, values, mask, 0.99, 0.95), rtol=1e-5, atol=1e-6)
    # a masked token in the middle (e.g. a tool output) is skipped: same as the compressed row
    gap = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    adv_gap, _ = ADVANTAGES.get("gae")(token_rewards=rewards[:1, :4], values=values[:1, :4], response_mask=gap,
                                       gamma=0.99, lam=0.95, norm_by_std=False)
    keep = [0, 2, 3]
    adv_dense, _ = ADVANTAGES.get("gae")(token_rewards=rewards[:1, keep], values=values[:1, keep],
                                         response_mask=torch.ones(1, 3), gamma=0.99, lam=0.95, norm_by_std=False)
    torch.testing.assert_close(adv_gap[:, keep], adv_dense)
    assert adv_gap[0, 1] == 0


def test_gae_whitening_uses_valid_tokens():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    rewards = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    values = torch.zeros(2, 3)
    adv, ret = ADVANTAGES.get("gae")(token_rewards=rewards, values=values, response_mask=mask, gamma=1.0, lam=1.0)
    raw = torch.tensor([1.0, 1.0, -1.0, -1.0, -1.0])  # gamma = lam = 1, V = 0: A_t = sum of future rewards
    torch.testing.assert_close(ret[mask > 0], raw)
    torch.testing.assert_close(adv[mask > 0], (raw - raw.mean()) / raw.var().add(1e-8).sqrt())


@pytest.mark.parametrize("kwargs, message", [
    (dict(scores=SCORES, token_rewards=MASK, group_ids=GROUPS), "exactly one of scores"),
    (dict(scores=SCORES), "needs group_ids"),
    (dict(scores=SCORES[:3], group_ids=GROUPS), r"scores must have shape \(5,\)"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ADVANTAGES.get("grpo")(response_mask=MASK, **kwargs)


def test_gae_needs_values():
    with pytest.raises(ValueError, match="gae needs values"):
        ADVANTAGES.get("gae")(scores=SCORES, response_mask=MASK)


def test_every_estimator_accepts_the_common_signature():
    values = torch.zeros_like(MASK)
    for name in ADVANTAGES.names():
        adv, ret = ADVANTAGES.get(name)(scores=SCORES, response_mask=MASK, group_ids=GROUPS, values=values,
                                        gamma=1.0, lam=1.0, norm_by_std=True, eps=1e-6)
        assert adv.shape == ret.shape == MASK.shape
        assert torch.all(adv[MASK == 0] == 0) and torch.all(ret[MASK == 0] == 0), name
