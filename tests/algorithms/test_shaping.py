import pytest
import torch

from rl_reason.algorithms import ADVANTAGES
from rl_reason.algorithms.shaping import (
    REWARD_MIXES,
    length_penalty,
    repetition_penalty,
    repetition_share,
)


def test_length_penalty_hits_correct_answers_only_relative_to_their_group():
    # group 0: correct lengths 10, 20, 30 -> fractions 0, 0.5, 1 of the correct span; the wrong 100 untouched
    # group 1: a single correct answer has no span -> 0
    lengths = torch.tensor([10, 20, 30, 100, 50, 5])
    correct = torch.tensor([True, True, True, False, True, False])
    groups = torch.tensor([0, 0, 0, 0, 1, 1])
    pen = length_penalty(lengths, correct, groups, coef=0.4)
    torch.testing.assert_close(pen, torch.tensor([0.0, -0.2, -0.4, 0.0, 0.0, 0.0]))


def test_long_wrong_answer_never_outscores_short_correct_one():
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        lengths = torch.randint(1, 500, (8,), generator=gen)
        correct = torch.rand(8, generator=gen) < 0.5
        groups = torch.randint(0, 2, (8,), generator=gen)
        shaped = correct.float() + length_penalty(lengths, correct, groups, coef=0.99)
        for i in range(8):
            for j in range(8):
                if correct[i] and not correct[j]:
                    assert shaped[i] > shaped[j]
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        length_penalty(lengths, correct, groups, coef=1.0)


def test_repetition_share_and_penalty():
    # "a b a b a b" as ids: bigrams ab ba ab ba ab -> 5 bigrams, 2 distinct -> 1 - 2/5 = 0.6
    ids = [[1, 2, 1, 2, 1, 2], [1, 2, 3, 4], [7], [5, 5, 5, 5]]
    torch.testing.assert_close(repetition_share(ids, 2), torch.tensor([0.6, 0.0, 0.0, 2 / 3]))
    torch.testing.assert_close(repetition_penalty(ids, n=2, coef=0.5), torch.tensor([-0.3, 0.0, 0.0, -1 / 3]))


def test_weighted_sum():
    comps = torch.tensor([[1.0, 0.5], [0.0, 1.0]])
    torch.testing.assert_close(REWARD_MIXES.get("weighted_sum")(components=comps, weights=torch.tensor([2.0, 0.2])),
                               torch.tensor([2.1, 0.2]))


def test_gdpo_keeps_reward_combinations_apart_that_grpo_collapses():
    # (correct, format) per response; group A: (1,1) vs (0,0); group B: (1,0) vs (0,0).
    comps = torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    groups = torch.tensor([0, 0, 1, 1])
    weights = torch.tensor([1.0, 1.0])
    mask = torch.ones(4, 1)
    summed = REWARD_MIXES.get("weighted_sum")(components=comps, weights=weights)
    grpo_adv, _ = ADVANTAGES.get("grpo")(scores=summed, response_mask=mask, group_ids=groups)
    # GRPO on the summed reward: both groups get +-0.7071 -- the format difference is lost
    torch.testing.assert_close(grpo_adv[:, 0], torch.tensor([1.0, -1.0, 1.0, -1.0]) / 2**0.5, rtol=1e-5, atol=1e-5)

    mixed = REWARD_MIXES.get("gdpo")(components=comps, weights=weights, group_ids=groups)
    # per reward, population std 0.5 around mean 0.5 -> z = +-1; group B's constant format reward gives 0
    torch.testing.assert_close(mixed, torch.tensor([2.0, -2.0, 1.0, -1.0]), rtol=1e-5, atol=1e-5)
    # then the batch normalisation (reinforce_pp_baseline: group mean is already 0, batch whitening)
    adv, _ = ADVANTAGES.get("reinforce_pp_baseline")(scores=mixed, response_mask=mask, group_ids=groups)
    std = (torch.tensor([4.0, 4, 1, 1]).sum() / 3) ** 0.5  # unbiased batch std of [2, -2, 1, -1]
    torch.testing.assert_close(adv[:, 0], torch.tensor([2.0, -2.0, 1.0, -1.0]) / std, rtol=1e-4, atol=1e-5)


def test_gdpo_needs_groups_and_matching_shapes():
    with pytest.raises(ValueError, match="group_ids"):
        REWARD_MIXES.get("gdpo")(components=torch.ones(2, 1), weights=torch.ones(1))
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        REWARD_MIXES.get("gdpo")(components=torch.ones(2, 2), weights=torch.ones(3), group_ids=torch.zeros(2))
