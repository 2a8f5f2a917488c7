"""KL estimators between the policy and a reference, and the entropy bonus.

With log-ratio x = logp - ref_logp per sampled token (Schulman, "Approximating KL divergence",
http://joschu.net/blog/kl-approx.html), each estimator's expectation under the policy is
KL(policy || ref):
    k1 = x                      unbiased, high variance, can be negative
    k2 = x**2 / 2               biased, low variance, >= 0 (its gradient is the true KL gradient)
    k3 = exp(-x) - 1 + x        unbiased, low variance, >= 0 (GRPO's "low_var_kl")
Use them in the loss (aggregated like the policy loss) or as a per-token reward penalty
(token_rewards - beta * kl, detached). Aliases follow verl: kl=k1, mse=k2, low_var_kl=k3.
"""

from __future__ import annotations

import torch

from rl_reason.algorithms.registry import Registry

KL_ESTIMATORS = Registry("KL estimator")

# Bounds from verl's low_var_kl: exp(-x) overflows for a token whose probability collapsed.
_K3_CLAMP = 10.0


@KL_ESTIMATORS.register("k1")
def k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k1 = logp - ref_logp, shapes (B, T) -> (B, T)."""
    return logp - ref_logp


@KL_ESTIMATORS.register("k2")
def k2(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k2 = (logp - ref_logp)**2 / 2, shapes (B, T) -> (B, T)."""
    return 0.5 * (logp - ref_logp) ** 2


@KL_ESTIMATORS.register("k3")
def k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 = exp(ref - logp) - (ref - logp) - 1, clamped to [-10, 10]; shapes (B, T) -> (B, T)."""
    neg_x = ref_logp - logp
    return (torch.exp(neg_x) - neg_x - 1).clamp(-_K3_CLAMP, _K3_CLAMP)


KL_ESTIMATORS.register("kl")(k1)
KL_ESTIMATORS.register("mse")(k2)
KL_ESTIMATORS.register("low_var_kl")(k3)


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token KL estimate (B, T) of `kind` ("k1", "k2", "k3" or an alias); not masked."""
    return KL_ESTIMATORS.get(kind)(logp, ref_logp)


def kl_penalised_rewards(token_rewards: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor,
                         response_mask: torch.Tensor, *, beta: float, kind: str = "k1"):
    """KL as a per-token reward penalty (PPO / REINFORCE++ style): r_t - beta * kl_t.

    All (B, T); the penalty is detached (a reward carries no gradient) and zero outside the
    mask. Returns (penalised rewards, kl) so the caller can log the KL it applied.
    Reference: Ouyang et al. 2022, https://arxiv.org/abs/2203.02155 (eq. 2).
    """
    kl = kl_penalty(logp.detach(), ref_logp.detach(), kind) * response_mask
    return token_rewards - beta * kl, kl


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) over the last dim: (B, T, V) -> (B, T), computed stably."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def entropy_bonus_loss(*, entropy: torch.Tensor | None = None, logits: torch.Tensor | None = None,
                       coef: float) -> torch.Tensor:
    """Per-token loss term -coef * H, (B, T), from entropies (B, T) or logits (B, T, V).

    Add it to the policy loss matrix before `aggregate_loss` so the bonus is normalised the same
    way; a positive coef rewards higher entropy.
    """
    if (entropy is None) == (logits is None):
        raise ValueError("pass exactly one of entropy (B, T) or logits (B, T, V)")
    if entropy is None:
        entropy = entropy_from_logits(logits)
    return -coef * entropy
