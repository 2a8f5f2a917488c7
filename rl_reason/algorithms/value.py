"""Critic losses and diagnostics for PPO with a value model."""

from __future__ import annotations

import torch

from rl_reason.algorithms.masked import masked_mean, masked_var


def clipped_value_loss(*, values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                       response_mask: torch.Tensor, clip_range: float | None = 0.2):
    """PPO value loss with value clipping, per token.

        V_clip = old_V + clip(V - old_V, -clip_range, clip_range)
        L_t    = 0.5 * max((V - R)^2, (V_clip - R)^2)      (0.5 * (V - R)^2 when clip_range is None)
    Shapes: all (B, T) -> loss (B, T), zero outside the mask; aggregate with `aggregate_loss`.
    Metrics: value_clip_frac (share of valid tokens where the clipped term is larger),
    value_mean. Papers: PPO https://arxiv.org/abs/1707.06347; clipping as in OpenAI baselines
    (ppo2) and https://arxiv.org/abs/2005.12729.
    """
    mask = response_mask.to(values.dtype)
    unclipped = (values - returns) ** 2
    if clip_range is None:
        loss = 0.5 * unclipped
        clip_frac = torch.zeros((), device=values.device)
    else:
        clipped_values = old_values + (values - old_values).clamp(-clip_range, clip_range)
        clipped = (clipped_values - returns) ** 2
        loss = 0.5 * torch.maximum(unclipped, clipped)
        with torch.no_grad():
            clip_frac = masked_mean((clipped > unclipped).float(), mask)
    metrics = {"value_clip_frac": clip_frac, "value_mean": masked_mean(values.detach(), mask)}
    return loss * mask, metrics


def explained_variance(values: torch.Tensor, returns: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """1 - Var(R - V) / Var(R) over valid tokens (B, T) -> scalar; 1 is perfect, <= 0 is useless.

    NaN when the returns have no variance.
    """
    with torch.no_grad():
        var_returns = masked_var(returns, response_mask)
        if var_returns == 0:
            return torch.full((), float("nan"), device=returns.device)
        return 1 - masked_var(returns - values, response_mask) / var_returns
