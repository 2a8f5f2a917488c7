"""Policy-gradient losses, registered in POLICY_LOSSES under one keyword-only signature.

    loss_mat, metrics = POLICY_LOSSES.get(name)(
        logp=logp,                  # (B, T) log pi_theta(token) under the current policy (grad)
        old_logp=old_logp,          # (B, T) log-probs of the policy that sampled (no grad)
        advantages=advantages,      # (B, T)
        response_mask=mask,         # (B, T)
        clip_low=0.2, clip_high=0.2, clip_ratio_c=None, is_weights=None)

`loss_mat` is the per-token loss (B, T), zero outside the mask; reduce it with
`aggregate_loss` (aggregation is a separate choice). `metrics` holds detached scalars.
`is_weights` (B, T), when given, multiplies each token's loss: the truncated importance-sampling
correction for rollout-engine vs trainer log-prob mismatch (`truncated_is_weights`).
The covariance losses (clip_cov, kl_cov) take further keyword arguments, named in their docstrings.
"""

from __future__ import annotations

import torch

from rl_reason.algorithms.entropy import token_covariance
from rl_reason.algorithms.kl import k3
from rl_reason.algorithms.masked import masked_mean
from rl_reason.algorithms.registry import Registry

POLICY_LOSSES = Registry("policy loss")

# exp() of a log-ratio beyond this overflows or explodes the gradient; verl clamps the same.
_LOG_RATIO_CLAMP = 20.0


def _ratio_metrics(log_ratio: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """approx_kl (k3 of old vs new, the low-variance estimate) and ratio mean/min/max."""
    with torch.no_grad():
        ratio = log_ratio.exp()
        valid = mask > 0
        if valid.any():
            r_min, r_max = ratio[valid].min(), ratio[valid].max()
        else:
            r_min = r_max = torch.ones((), dtype=ratio.dtype, device=ratio.device)
        return {
            "approx_kl": masked_mean(k3(log_ratio, torch.zeros_like(log_ratio)), mask),
            "ratio_mean": masked_mean(ratio, mask),
            "ratio_min": r_min,
            "ratio_max": r_max,
        }


def _clipped_objective(ratio, advantages, mask, clip_low, clip_high, clip_ratio_c):
    """PPO clipped per-token loss with optional dual clip; returns (loss (B, T), clip metrics)."""
    if clip_low < 0 or clip_high < 0:
        raise ValueError(f"clip_low and clip_high must be >= 0, got {clip_low}, {clip_high}")
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    negative = advantages < 0
    with torch.no_grad():
        metrics = {
            # the clip binds (has zero gradient) only on the side the advantage pushes towards
            "clip_frac_low": masked_mean(((ratio < 1.0 - clip_low) & negative).float(), mask),
            "clip_frac_high": masked_mean(((ratio > 1.0 + clip_high) & (advantages > 0)).float(), mask),
        }
    if clip_ratio_c is not None:
        if clip_ratio_c <= 1.0:
            raise ValueError(f"clip_ratio_c must be > 1, got {clip_ratio_c}")
        # Dual clip: for A < 0 a huge ratio makes -A*r unbounded; cap the loss at -A*c.
        capped = torch.minimum(loss, -advantages * clip_ratio_c)
        loss = torch.where(negative, capped, loss)
        with torch.no_grad():
            metrics["clip_frac_dual"] = masked_mean(((ratio > clip_ratio_c) & negative).float(), mask)
    else:
        metrics["clip_frac_dual"] = torch.zeros((), device=ratio.device)
    return loss, metrics


def _apply_weights(loss, is_weights, mask):
    if is_weights is not None:
        loss = loss * is_weights.detach()
    return loss * mask


@POLICY_LOSSES.register("ppo_clip")
def ppo_clip(*, logp, old_logp, advantages, response_mask, clip_low=0.2, clip_high=0.2,
             clip_ratio_c=None, is_weights=None):
    """PPO clipped surrogate per token, with DAPO clip-higher and optional dual clip.

        r_t   = exp(logp_t - old_logp_t)
        L_t   = max(-A_t * r_t, -A_t * clip(r_t, 1 - clip_low, 1 + clip_high))
        dual  : for A_t < 0, L_t = min(L_t, -A_t * clip_ratio_c)
    Shapes: all (B, T) -> loss (B, T), zero outside response_mask. Metrics: clip_frac_low /
    clip_frac_high / clip_frac_dual (fractions of valid tokens whose clip binds), approx_kl,
    ratio_mean/min/max. Papers: PPO https://arxiv.org/abs/1707.06347; clip-higher (DAPO)
    https://arxiv.org/abs/2503.14476; dual clip https://arxiv.org/abs/1912.09729.
    """
    mask = response_mask.to(logp.dtype)
    log_ratio = (logp - old_logp.detach()).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    loss, metrics = _clipped_objective(log_ratio.exp(), advantages, mask, clip_low, clip_high, clip_ratio_c)
    metrics.update(_ratio_metrics(log_ratio, mask))
    return _apply_weights(loss, is_weights, mask), metrics


@POLICY_LOSSES.register("gspo")
def gspo(*, logp, old_logp, advantages, response_mask, clip_low=3e-4, clip_high=4e-4,
         clip_ratio_c=None, is_weights=None):
    """GSPO (GSPO-token form): a sequence-level, length-normalised importance ratio.

        log s_i  = mean_{t valid} (logp_t - old_logp_t)           (per sequence)
        s_i,t    = sg[s_i] * exp(logp_t - sg[logp_t])             (value s_i, gradient of logp_t)
        L_i,t    = max(-A_i,t * s_i,t, -A_i,t * clip(s_i,t, 1 - clip_low, 1 + clip_high))
    The paper's clip range is tiny (3e-4 / 4e-4, the defaults here) and it averages tokens per
    sequence first (aggregate with `seq-mean-token-mean`). Shapes and metrics as `ppo_clip`
    (ratio metrics are of s_i). Paper: https://arxiv.org/abs/2507.18071.
    """
    mask = response_mask.to(logp.dtype)
    token_log_ratio = logp - old_logp.detach()
    seq_log_ratio = masked_mean(token_log_ratio, mask, dim=-1)
    log_ratio = (seq_log_ratio.detach().unsqueeze(-1) + logp - logp.detach()).clamp(max=_LOG_RATIO_CLAMP)
    loss, metrics = _clipped_objective(log_ratio.exp(), advantages, mask, clip_low, clip_high, clip_ratio_c)
    metrics.update(_ratio_metrics(log_ratio.detach(), mask))
    return _apply_weights(loss, is_weights, mask), metrics


@POLICY_LOSSES.register("gmpo")
def gmpo(*, logp, old_logp, advantages, response_mask, clip_low=0.4, clip_high=0.4,
         clip_ratio_c=None, is_weights=None):
    """GMPO: the sequence's importance weight is the geometric mean of its token ratios.

        x_t    = logp_t - old_logp_t                                  (token log-ratio)
        c_t    = min(x_t, clip(x_t, -clip_low, clip_high))  if A_i > 0
                 max(x_t, clip(x_t, -clip_low, clip_high))  if A_i <= 0   (PPO's min, in log space)
        w_i    = exp(mean_{t valid} c_t)                              (geometric mean of clipped ratios)
        L_i    = -A_i * w_i, written on every valid token of row i
    clip_low / clip_high are in LOG space: the ratio range is (exp(-clip_low), exp(clip_high));
    the paper uses 0.4 (the defaults). A_i is the row's masked-mean advantage (GRPO's advantage
    is the same on every token). Aggregate with `seq-mean-token-mean` for the paper's (and
    TRL's) mean over sequences. `clip_ratio_c` is ignored (the log-space clip already bounds
    the weight). Shapes: all (B, T) -> loss (B, T), zero outside the mask. Metrics: clip_frac_low
    / clip_frac_high (valid tokens whose log-space clip binds), approx_kl, ratio_mean/min/max of
    the token ratios. Paper: https://arxiv.org/abs/2507.20673.
    """
    if clip_low < 0 or clip_high < 0:
        raise ValueError(f"clip_low and clip_high must be >= 0, got {clip_low}, {clip_high}")
    mask = response_mask.to(logp.dtype)
    log_ratio = (logp - old_logp.detach()).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    seq_adv = masked_mean(advantages, mask, dim=-1)  # (B,)
    clamped = log_ratio.clamp(-clip_low, clip_high)
    positive = (seq_adv > 0).unsqueeze(-1)
    clipped = torch.where(positive, torch.minimum(log_ratio, clamped), torch.maximum(log_ratio, clamped))
    weight = masked_mean(clipped, mask, dim=-1).exp()  # (B,)
    loss = (-seq_adv * weight).unsqueeze(-1).expand_as(logp)
    with torch.no_grad():
        metrics = {
            "clip_frac_low": masked_mean(((log_ratio < -clip_low) & ~positive).float(), mask),
            "clip_frac_high": masked_mean(((log_ratio > clip_high) & positive).float(), mask),
            "clip_frac_dual": torch.zeros((), device=logp.device),
        }
    metrics.update(_ratio_metrics(log_ratio.detach(), mask))
    return _apply_weights(loss, is_weights, mask), metrics


@POLICY_LOSSES.register("clip_cov")
def clip_cov(*, logp, old_logp, advantages, response_mask, clip_low=0.2, clip_high=0.2,
             clip_ratio_c=None, is_weights=None, cov_ratio=2e-4, cov_lb=1.0, cov_ub=5.0, generator=None):
    """Clip-Cov: PPO clip, plus the gradient of a few high-covariance tokens cut.

        cov_t  = (A_t - mean A) * (logp_t - mean logp)        (`token_covariance`, this batch)
        pick   = max(1, floor(cov_ratio * valid tokens)) tokens drawn at random (`generator`, a CPU
                 torch.Generator; None = seed 0, deterministic) among valid ones with
                 cov_lb < cov_t < cov_ub whose PPO clip does not bind
        L_t    = ppo_clip's L_t, and 0 (no loss, no gradient) on the picked tokens
    Defaults are verl's (2e-4, 1, 5). Shapes: all (B, T) -> loss (B, T). Metrics: ppo_clip's
    plus cov_frac (share of valid tokens cut). Paper: https://arxiv.org/abs/2505.22617.
    """
    loss, metrics = ppo_clip(logp=logp, old_logp=old_logp, advantages=advantages, response_mask=response_mask,
                             clip_low=clip_low, clip_high=clip_high, clip_ratio_c=clip_ratio_c, is_weights=is_weights)
    mask = response_mask.to(logp.dtype)
    with torch.no_grad():
        ratio = (logp - old_logp).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP).exp()
        clip_binds = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high) > -advantages * ratio
        cov = token_covariance(advantages, logp, mask)
        candidates = ((cov > cov_lb) & (cov < cov_ub) & (mask > 0) & ~clip_binds).nonzero()
        n_pick = max(int(cov_ratio * float(mask.sum())), 1)
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        order = torch.randperm(len(candidates), generator=generator).to(candidates.device)
        picked = candidates[order[:n_pick]]
        keep = torch.ones_like(mask)
        keep[picked[:, 0], picked[:, 1]] = 0.0
        metrics["cov_frac"] = masked_mean(1.0 - keep, mask)
    return loss * keep, metrics


@POLICY_LOSSES.register("kl_cov")
def kl_cov(*, logp, old_logp, advantages, response_mask, clip_low=0.2, clip_high=0.2,
           clip_ratio_c=None, is_weights=None, cov_ratio=2e-4, cov_kl_coef=1.0):
    """KL-Cov: the unclipped surrogate, plus a KL penalty on the highest-covariance tokens.

        L_t = -A_t * r_t                                          (no ratio clip at all)
            + cov_kl_coef * |logp_t - old_logp_t|   on the max(1, floor(cov_ratio * valid tokens))
                                                    valid tokens of largest `token_covariance`
    clip_low / clip_high / clip_ratio_c are ignored. Defaults are verl's (2e-4, 1.0). Shapes: all
    (B, T) -> loss (B, T). Metrics: cov_frac (share of valid tokens penalised), approx_kl, ratio
    mean/min/max. Paper: https://arxiv.org/abs/2505.22617.
    """
    mask = response_mask.to(logp.dtype)
    log_ratio = (logp - old_logp.detach()).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    loss = -advantages * log_ratio.exp()
    penalised = torch.zeros_like(mask)
    with torch.no_grad():
        n_valid = int(mask.sum())
        if n_valid:
            cov = token_covariance(advantages, logp, mask).masked_fill(mask == 0, -torch.inf).flatten()
            top = cov.topk(max(int(cov_ratio * n_valid), 1)).indices
            penalised.view(-1)[top] = 1.0
    loss = loss + cov_kl_coef * log_ratio.abs() * penalised
    zero = torch.zeros((), device=logp.device)
    metrics = {"clip_frac_low": zero, "clip_frac_high": zero, "clip_frac_dual": zero,
               "cov_frac": masked_mean(penalised, mask)}
    metrics.update(_ratio_metrics(log_ratio.detach(), mask))
    return _apply_weights(loss, is_weights, mask), metrics


@POLICY_LOSSES.register("reinforce")
def reinforce(*, logp, old_logp, advantages, response_mask, clip_low=0.2, clip_high=0.2,
              clip_ratio_c=None, is_weights=None):
    """Plain on-policy REINFORCE: L_t = -A_t * logp_t (clip arguments are ignored).

    Valid with one update per batch (data from the current policy), where it has PPO's gradient
    at r = 1. `old_logp` may be None; when given, ratio metrics report how far off-policy the
    batch is. Shapes: (B, T) -> loss (B, T). Paper: Williams 1992, doi:10.1007/BF00992696.
    """
    mask = response_mask.to(logp.dtype)
    loss = -advantages * logp
    zero = torch.zeros((), device=logp.device)
    metrics = {"clip_frac_low": zero, "clip_frac_high": zero, "clip_frac_dual": zero}
    if old_logp is not None:
        metrics.update(_ratio_metrics((logp - old_logp).detach().clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP), mask))
    return _apply_weights(loss, is_weights, mask), metrics


def truncated_is_weights(old_logp: torch.Tensor, rollout_logp: torch.Tensor, cap: float = 2.0) -> torch.Tensor:
    """Truncated importance-sampling weights min(pi_old / pi_rollout, cap), (B, T), detached.

    Corrects for the rollout engine (vLLM) sampling from slightly different probabilities than
    the trainer computes. Pass as `is_weights` to a policy loss. Reference: Yao et al. 2025,
    "Your efficient RL framework secretly brings you off-policy RL training"
    (https://fengyao.notion.site/off-policy-rl).
    """
    if cap <= 0:
        raise ValueError(f"cap must be > 0, got {cap}")
    log_w = (old_logp - rollout_logp).detach().clamp(max=_LOG_RATIO_CLAMP)
    return log_w.exp().clamp(max=cap)


def logprob_mismatch_metrics(trainer_logp: torch.Tensor, rollout_logp: torch.Tensor,
                             response_mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Rollout-vs-trainer drift over valid tokens (all (B, T) in): k3 KL, mean |diff|, ratio tail.

    `ratio_p99` / `ratio_max` of pi_trainer / pi_rollout show the tail that truncated IS caps.
    """
    with torch.no_grad():
        log_ratio = (trainer_logp - rollout_logp).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
        valid = response_mask > 0
        ratio = log_ratio[valid].exp()
        if ratio.numel() == 0:
            ratio = torch.ones(1, device=log_ratio.device)
        return {
            "mismatch_kl": masked_mean(k3(rollout_logp, trainer_logp), response_mask),
            "mismatch_abs_diff": masked_mean(log_ratio.abs(), response_mask),
            "mismatch_ratio_p99": torch.quantile(ratio.float(), 0.99),
            "mismatch_ratio_max": ratio.max(),
        }
