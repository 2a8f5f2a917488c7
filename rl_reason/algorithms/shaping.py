"""Reward shaping and mixing over one step's responses, as pure functions of (B,) tensors.

    shaped = combine_rewards(components, weights, group_ids, mode="gdpo")       # (B, K) -> (B,)
    shaped = shaped + length_penalty(lengths, correct, group_ids, coef=0.2)     # (B,) <= 0
    shaped = shaped + repetition_penalty(token_ids, n=4, coef=0.5)              # (B,) <= 0
Rows are responses, `group_ids` (B,) int marks responses to the same prompt. The results are
outcome rewards: the advantage estimator (rl_reason.algorithms.ADVANTAGES) runs after them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rl_reason.algorithms.advantages import group_moments
from rl_reason.algorithms.registry import Registry

REWARD_MIXES = Registry("reward mix")


def _dense_groups(group_ids: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, int]:
    if group_ids.shape != (batch_size,):
        raise ValueError(f"group_ids must have shape ({batch_size},), got {tuple(group_ids.shape)}")
    _, index = torch.unique(group_ids, return_inverse=True)
    return index, int(index.max()) + 1 if batch_size else 0


@REWARD_MIXES.register("weighted_sum")
def weighted_sum(*, components: torch.Tensor, weights: torch.Tensor, group_ids: torch.Tensor | None = None,
                 eps: float = 1e-6) -> torch.Tensor:
    """r_i = sum_k w_k * c_ik: components (B, K), weights (K,) -> (B,). group_ids is unused."""
    if components.dim() != 2 or weights.shape != (components.shape[1],):
        raise ValueError(f"components must be (B, K) and weights (K,), got {tuple(components.shape)} and "
                         f"{tuple(weights.shape)}")
    return components.to(torch.float32) @ weights.to(torch.float32)


@REWARD_MIXES.register("gdpo")
def gdpo(*, components: torch.Tensor, weights: torch.Tensor, group_ids: torch.Tensor | None = None,
         eps: float = 1e-6) -> torch.Tensor:
    """GDPO: normalise each reward within its group first, then take the weighted sum.

        z_ik = (c_ik - mean_g(c_k)) / (std_g(c_k) + eps)      (population std, per reward k)
        r_i  = sum_k w_k * z_ik
    components (B, K), weights (K,), group_ids (B,) -> (B,). Summing raw rewards first lets a
    reward with a wide spread (e.g. correctness 0/1) drown one with a narrow spread (format
    0.9/1.0) and maps different reward combinations to the same advantage; normalising each
    one keeps every reward's within-group ranking visible. A reward that is constant in a group
    contributes 0 there. Paper: GDPO, https://arxiv.org/abs/2601.05242.
    """
    mixed = weighted_sum(components=components, weights=weights)  # validates shapes
    if group_ids is None:
        raise ValueError("gdpo needs group_ids (B,): responses to one prompt share an id")
    index, num_groups = _dense_groups(group_ids, components.shape[0])
    if num_groups == 0:
        return mixed
    z = torch.empty_like(components, dtype=torch.float32)
    for k in range(components.shape[1]):
        c = components[:, k].to(torch.float32)
        size, mean, sq_dev = group_moments(c, index, num_groups)
        z[:, k] = (c - mean[index]) / ((sq_dev / size).sqrt()[index] + eps)
    return z @ weights.to(torch.float32)


def length_penalty(lengths: torch.Tensor, correct: torch.Tensor, group_ids: torch.Tensor, *,
                   coef: float) -> torch.Tensor:
    """Group-relative length penalty on correct responses only, (B,) values in [-coef, 0].

        p_i = -coef * (len_i - min_g) / (max_g - min_g)   if response i is correct, else 0
    min_g / max_g are over the CORRECT responses of i's group (0 when they all have one length).
    The shortest correct answer keeps its reward and the longest loses `coef`; wrong answers are
    never touched, so with coef below the reward gap between a correct and a wrong answer (1 for
    the 0/1 verifier reward) a long wrong answer never outscores a short correct one, and the
    penalty cannot teach the model to stop early instead of answering. A correct-only variant
    of Kimi k1.5's length reward (https://arxiv.org/abs/2501.12599, section 2.3.3).
    lengths (B,) tokens, correct (B,) bool, group_ids (B,) int.
    """
    if not 0.0 <= coef < 1.0:
        raise ValueError(f"length penalty coef must be in [0, 1) so a correct answer stays above a wrong one, got {coef}")
    if lengths.shape != correct.shape:
        raise ValueError(f"lengths and correct must both be (B,), got {tuple(lengths.shape)} and {tuple(correct.shape)}")
    index, num_groups = _dense_groups(group_ids, lengths.shape[0])
    length = lengths.to(torch.float32)
    correct = correct.to(torch.bool)
    inf = torch.full((num_groups,), float("inf"))
    lo = inf.scatter_reduce(0, index[correct], length[correct], reduce="amin")
    hi = (-inf).scatter_reduce(0, index[correct], length[correct], reduce="amax")
    span = (hi - lo)[index]
    frac = torch.where(correct & (span > 0), (length - lo[index]) / span.clamp(min=1e-12), torch.zeros_like(length))
    return -coef * frac


def repetition_share(token_ids: Sequence[Sequence[int]], n: int) -> torch.Tensor:
    """Share of each response's n-grams that repeat an earlier n-gram of the same response, (B,).

    1 - distinct / total over the len - n + 1 n-grams; 0 for a response shorter than n + 1
    tokens. "a b a b a b" with n=2 has 5 bigrams, 2 distinct: share 0.6.
    """
    if n <= 0:
        raise ValueError(f"n-gram size must be positive, got {n}")
    out = []
    for ids in token_ids:
        grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
        out.append(1.0 - len(set(grams)) / len(grams) if grams else 0.0)
    return torch.tensor(out, dtype=torch.float32)


def repetition_penalty(token_ids: Sequence[Sequence[int]], *, n: int, coef: float) -> torch.Tensor:
    """-coef * repetition_share(token_ids, n), (B,): punishes loops (a degenerate response
    repeating itself until the length limit) in proportion to how much of it is repeated.
    token_ids: B lists of response token ids."""
    if coef < 0:
        raise ValueError(f"repetition penalty coef must be >= 0, got {coef}")
    return -coef * repetition_share(token_ids, n)
