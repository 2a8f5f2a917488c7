"""Advantage estimators, registered in ADVANTAGES under one keyword-only signature.

Every estimator is called as

    advantages, returns = ADVANTAGES.get(name)(
        response_mask=mask,            # (B, T) 1 on response tokens
        scores=scores,                 # (B,) outcome reward per response, or
        token_rewards=token_rewards,   # (B, T) per-token rewards (e.g. outcome at the last token
                                       #        minus a per-token KL penalty)
        group_ids=group_ids,           # (B,) int: responses to the same prompt share an id
        values=values,                 # (B, T) critic values (gae only)
        gamma=1.0, lam=1.0, norm_by_std=True, eps=1e-6)

and returns `advantages` and `returns`, both (B, T) and zero outside `response_mask`. An
estimator reads only the arguments its docstring names and raises ValueError when one it needs
is missing. Exactly one of `scores` / `token_rewards` is given: outcome estimators (grpo,
dr_grpo, rloo, reinforce_pp_baseline) reduce token rewards to a score by a masked sum; the
token-level ones (reinforce_pp, gae) place a score at the last response token.
"""

from __future__ import annotations

import torch

from rl_reason.algorithms.masked import masked_whiten
from rl_reason.algorithms.registry import Registry

ADVANTAGES = Registry("advantage estimator")


def _sequence_scores(scores, token_rewards, mask) -> torch.Tensor:
    """(B,) outcome per response from exactly one of scores (B,) / token_rewards (B, T)."""
    if (scores is None) == (token_rewards is None):
        raise ValueError("pass exactly one of scores (B,) or token_rewards (B, T)")
    if scores is not None:
        if scores.dim() != 1 or scores.shape[0] != mask.shape[0]:
            raise ValueError(f"scores must have shape ({mask.shape[0]},), got {tuple(scores.shape)}")
        return scores.to(torch.float32)
    return (token_rewards.to(torch.float32) * mask).sum(-1)


def _token_level_rewards(scores, token_rewards, mask) -> torch.Tensor:
    """(B, T) rewards; a (B,) score is placed on the last response token of each row.

    A row with no valid token (masked out of the loss, e.g. by overlong filtering) carries none.
    """
    if (scores is None) == (token_rewards is None):
        raise ValueError("pass exactly one of scores (B,) or token_rewards (B, T)")
    if token_rewards is not None:
        return token_rewards.to(torch.float32) * mask
    last = mask.shape[1] - 1 - mask.long().flip(-1).argmax(-1)  # index of the last set position
    rewards = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    rewards[torch.arange(mask.shape[0], device=mask.device), last] = scores.to(torch.float32)
    return rewards * mask


def _group_index(group_ids, batch_size: int) -> tuple[torch.Tensor, int]:
    """Dense group index (B,) in [0, G) and G, from arbitrary integer group ids."""
    if group_ids is None:
        raise ValueError("this estimator needs group_ids (B,): responses to one prompt share an id")
    if group_ids.shape != (batch_size,):
        raise ValueError(f"group_ids must have shape ({batch_size},), got {tuple(group_ids.shape)}")
    _, index = torch.unique(group_ids, return_inverse=True)
    return index, int(index.max()) + 1


def group_moments(scores: torch.Tensor, index: torch.Tensor, num_groups: int):
    """Per-group size, mean and sum of squared deviations, each (G,), of scores (B,).

    `index` (B,) maps each sample to its group in [0, num_groups).
    """
    size = torch.zeros(num_groups, dtype=scores.dtype, device=scores.device)
    size.index_add_(0, index, torch.ones_like(scores))
    mean = torch.zeros_like(size).index_add_(0, index, scores) / size
    sq_dev = torch.zeros_like(size).index_add_(0, index, (scores - mean[index]) ** 2)
    return size, mean, sq_dev


def _group_mean_std(scores: torch.Tensor, index: torch.Tensor, num_groups: int):
    """Per-sample group mean, unbiased group std (1 for singleton groups) and group size, all (B,)."""
    size, mean, sq_dev = group_moments(scores, index, num_groups)
    # A singleton group has advantage 0 (its own mean); std 1 only avoids 0/0.
    std = torch.where(size > 1, (sq_dev / (size - 1).clamp(min=1)).sqrt(), torch.ones_like(size))
    return mean[index], std[index], size[index]


def _broadcast(per_seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return per_seq.unsqueeze(-1) * mask.to(per_seq.dtype)


@ADVANTAGES.register("grpo")
def grpo(*, response_mask, scores=None, token_rewards=None, group_ids=None, values=None,
         gamma=1.0, lam=1.0, norm_by_std=True, eps=1e-6):
    """GRPO: A_i = (s_i - mean_g(s)) / (std_g(s) + eps), the same value on every token.

    Reads scores|token_rewards, response_mask (B, T), group_ids (B,), norm_by_std, eps.
    std is the unbiased (Bessel) group std as in DeepSeekMath/TRL/verl; with norm_by_std=False
    this is Dr.GRPO's advantage. A singleton group gets advantage 0.
    Returns (advantages, returns) (B, T): returns = the response's score on each valid token.
    Paper: DeepSeekMath, https://arxiv.org/abs/2402.03300 (section 4.1.2).
    """
    mask = response_mask
    s = _sequence_scores(scores, token_rewards, mask)
    index, num_groups = _group_index(group_ids, s.shape[0])
    mean, std, _ = _group_mean_std(s, index, num_groups)
    adv = s - mean
    if norm_by_std:
        adv = adv / (std + eps)
    return _broadcast(adv, mask), _broadcast(s, mask)


@ADVANTAGES.register("dr_grpo")
def dr_grpo(*, response_mask, scores=None, token_rewards=None, group_ids=None, values=None,
            gamma=1.0, lam=1.0, norm_by_std=True, eps=1e-6):
    """Dr.GRPO: A_i = s_i - mean_g(s), never divided by the group std (norm_by_std is ignored).

    Dropping the std removes GRPO's question-difficulty bias; pair it with the
    `seq-mean-token-sum-norm` aggregation to also remove the length bias.
    Shapes and other arguments as `grpo`. Paper: https://arxiv.org/abs/2503.20783.
    """
    return grpo(response_mask=response_mask, scores=scores, token_rewards=token_rewards,
                group_ids=group_ids, norm_by_std=False, eps=eps)


@ADVANTAGES.register("rloo")
def rloo(*, response_mask, scores=None, token_rewards=None, group_ids=None, values=None,
         gamma=1.0, lam=1.0, norm_by_std=True, eps=1e-6):
    """RLOO: A_i = s_i - mean_{j != i in group}(s_j) = n/(n-1) * (s_i - mean_g(s)).

    Reads scores|token_rewards, response_mask (B, T), group_ids (B,); every group needs >= 2
    responses. Returns (advantages, returns) (B, T), returns = score on valid tokens.
    Paper: Ahmadian et al. 2024, https://arxiv.org/abs/2402.14740.
    """
    mask = response_mask
    s = _sequence_scores(scores, token_rewards, mask)
    index, num_groups = _group_index(group_ids, s.shape[0])
    mean, _, size = _group_mean_std(s, index, num_groups)
    if (size < 2).any():
        lone = group_ids[(size < 2).nonzero()[0]].item()
        raise ValueError(f"rloo needs at least 2 responses per group; group id {lone} has 1")
    adv = (s - mean) * size / (size - 1)
    return _broadcast(adv, mask), _broadcast(s, mask)


def _discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t = r_t + gamma * G_{t+1} over valid tokens, (B, T); masked positions are skipped."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        m = mask[:, t]
        running = torch.where(m > 0, rewards[:, t] + gamma * running, running)
        returns[:, t] = running * m
    return returns


@ADVANTAGES.register("reinforce_pp")
def reinforce_pp(*, response_mask, scores=None, token_rewards=None, group_ids=None, values=None,
                 gamma=1.0, lam=1.0, norm_by_std=True, eps=1e-8):
    """REINFORCE++: discounted token returns G_t, whitened over the whole batch.

    Reads scores|token_rewards (a score goes on the last response token; a per-token KL
    penalty belongs in token_rewards), response_mask (B, T), gamma, norm_by_std, eps.
    advantages = masked_whiten(G) when norm_by_std, else G (the batch baseline is the whitening
    mean). Returns (advantages, G), both (B, T). Paper: https://arxiv.org/abs/2501.03262.
    """
    mask = response_mask.to(torch.float32)
    returns = _discounted_returns(_token_level_rewards(scores, token_rewards, mask), mask, gamma)
    adv = masked_whiten(returns, mask, eps) if norm_by_std else returns
    return adv, returns


@ADVANTAGES.register("reinforce_pp_baseline")
def reinforce_pp_baseline(*, response_mask, scores=None, token_rewards=None, group_ids=None, values=None,
                          gamma=1.0, lam=1.0, norm_by_std=True, eps=1e-8):
    """REINFORCE++-baseline: s_i - mean_g(s) on every token, then whitened over the batch.

    Reads scores|token_rewards, response_mask (B, T), group_ids (B,), norm_by_std, eps.
    The group mean removes the prompt's difficulty; the batch (not group) std keeps the scale
    stable for groups with tiny variance. Returns (advantages, returns = score on valid tokens).
    Paper: https://arxiv.org/abs/2501.03262 (v2+, "REINFORCE++-baseline").
    """
    centred, returns = grpo(response_mask=response_mask, scores=scores, token_rewards=token_rewards,
                            group_ids=group_ids, norm_by_std=False)
    adv = masked_whiten(centred, response_mask, eps) if norm_by_std else centred
    return adv, returns


@ADVANTAGES.register("gae")
def gae(*, response_mask, scores=None, token_rewards=None, group_ids=None, values=None,
        gamma=1.0, lam=1.0, norm_by_std=True, eps=1e-8):
    """Generalised advantage estimation for PPO with a critic.

    Notation (per row, over valid tokens t in order; masked positions are skipped, and the
    value after the last valid token is 0):
        delta_t = r_t + gamma * V_{t+1} - V_t
        A_t     = delta_t + gamma * lam * A_{t+1}
        R_t     = A_t + V_t                       (the critic's regression target)
    Reads scores|token_rewards, values (B, T), response_mask (B, T), gamma, lam, norm_by_std
    (whiten A over the batch), eps. Returns (A, R), both (B, T), zero outside the mask; R is
    computed before whitening. Paper: Schulman et al. 2016, https://arxiv.org/abs/1506.02438.
    """
    if values is None:
        raise ValueError("gae needs values (B, T) from the critic")
    mask = response_mask.to(torch.float32)
    rewards = _token_level_rewards(scores, token_rewards, mask)
    values = values.detach().to(torch.float32) * mask
    adv = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_adv = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        a_t = delta + gamma * lam * next_adv
        next_adv = torch.where(m > 0, a_t, next_adv)
        next_value = torch.where(m > 0, values[:, t], next_value)
        adv[:, t] = a_t * m
    returns = (adv + values) * mask
    if norm_by_std:
        adv = masked_whiten(adv, mask, eps)
    return adv, returns
