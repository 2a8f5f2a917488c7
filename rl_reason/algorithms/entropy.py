"""Entropy control: the adaptive entropy-bonus coefficient and the token covariance that
Clip-Cov / KL-Cov (policy losses in `policy_loss`) select tokens by.

Cui et al. 2025, "The Entropy Mechanism of Reinforcement Learning for Reasoning Language
Models" (https://arxiv.org/abs/2505.22617): under softmax policy gradient the entropy change of
a step follows the covariance between a token's log-prob and its advantage; a few tokens with
large covariance drive the entropy collapse, so Clip-Cov stops their gradient and KL-Cov pulls
them back towards the sampling policy.
"""

from __future__ import annotations

import math

import torch

from rl_reason.algorithms.masked import masked_mean


def token_covariance(advantages: torch.Tensor, logp: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Per-token centred product (A_t - mean A) * (logp_t - mean logp), (B, T), detached.

    Means are over the valid tokens of the batch given; the mean of this over valid tokens is
    the covariance of log-prob and advantage. Invalid positions are 0.
    """
    with torch.no_grad():
        mask = response_mask.to(logp.dtype)
        centred_a = advantages - masked_mean(advantages, mask)
        centred_lp = logp.detach() - masked_mean(logp.detach(), mask)
        return centred_a * centred_lp * mask


def adaptive_entropy_coef(coef: float, entropy: float, *, target: float, step: float, max_coef: float) -> float:
    """Next entropy-bonus coefficient: raised by `step` while the measured mean token entropy is
    below `target`, lowered by `step` while above, kept in [0, max_coef].

        coef' = clip(coef + step * sign(target - entropy), 0, max_coef)
    A bang-bang controller as in Skywork-OR1's adaptive entropy control
    (https://arxiv.org/abs/2505.22312): the bonus switches itself off while the policy explores
    enough, and a fixed coefficient cannot be right over a whole run. A NaN entropy (no valid
    token this step) leaves the coefficient unchanged.
    """
    if step < 0 or max_coef < 0:
        raise ValueError(f"step and max_coef must be >= 0, got {step}, {max_coef}")
    if math.isnan(entropy) or entropy == target:
        return coef
    return min(max(coef + (step if entropy < target else -step), 0.0), max_coef)
