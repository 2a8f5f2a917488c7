"""Preference losses over (chosen, rejected) pairs, registered in PREFERENCE_LOSSES; KTO's loss
over unpaired desirable / undesirable responses (`kto_loss`); the Bradley-Terry reward-model loss.

Every preference loss is called as

    losses, metrics = PREFERENCE_LOSSES.get(name)(
        chosen_logps=..., rejected_logps=...,            # (B,) policy log-prob SUMS over each response
        ref_chosen_logps=..., ref_rejected_logps=...,    # (B,) reference sums (None when reference-free)
        chosen_lengths=..., rejected_lengths=...,        # (B,) response token counts
        beta=0.1, label_smoothing=0.0, gamma=0.0)

and returns per-pair losses (B,) (reduce with .mean(), or sum / global pair count under
gradient accumulation) and detached scalar metrics: rewards/chosen, rewards/rejected (the
loss's implicit rewards), rewards/accuracy (share of pairs with chosen > rejected),
rewards/margin, logps/chosen, logps/rejected. Each loss reads only what its docstring names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rl_reason.algorithms.registry import Registry

PREFERENCE_LOSSES = Registry("preference loss")
# Losses over unpaired labelled responses (a different signature from the pairwise ones).
UNPAIRED_LOSSES = Registry("unpaired preference loss")


def _need(name: str, **tensors) -> None:
    missing = [k for k, v in tensors.items() if v is None]
    if missing:
        raise ValueError(f"{name} needs {', '.join(missing)}")


def _metrics(chosen_rewards, rejected_rewards, chosen_logps, rejected_logps) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {
            "rewards/chosen": chosen_rewards.mean(),
            "rewards/rejected": rejected_rewards.mean(),
            "rewards/accuracy": (chosen_rewards > rejected_rewards).float().mean(),
            "rewards/margin": (chosen_rewards - rejected_rewards).mean(),
            "logps/chosen": chosen_logps.mean(),
            "logps/rejected": rejected_logps.mean(),
        }


@PREFERENCE_LOSSES.register("dpo")
def dpo(*, chosen_logps, rejected_logps, ref_chosen_logps=None, ref_rejected_logps=None,
        chosen_lengths=None, rejected_lengths=None, beta=0.1, label_smoothing=0.0, gamma=0.0):
    """DPO (sigmoid) and, with label_smoothing > 0, conservative DPO (cDPO).

        h    = (chosen_logps - ref_chosen_logps) - (rejected_logps - ref_rejected_logps)
        loss = -(1 - eps) * log sigmoid(beta * h) - eps * log sigmoid(-beta * h)
    eps = label_smoothing, the assumed probability that a pair's labels are flipped.
    Reads the four (B,) log-prob sums, beta, label_smoothing. Implicit rewards
    beta * (logps - ref_logps). Papers: DPO https://arxiv.org/abs/2305.18290; cDPO
    https://ericmitchell.ai/cdpo.pdf.
    """
    _need("dpo", ref_chosen_logps=ref_chosen_logps, ref_rejected_logps=ref_rejected_logps)
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    chosen_ratio = chosen_logps - ref_chosen_logps
    rejected_ratio = rejected_logps - ref_rejected_logps
    logits = beta * (chosen_ratio - rejected_ratio)
    losses = -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)
    return losses, _metrics(beta * chosen_ratio, beta * rejected_ratio, chosen_logps, rejected_logps)


@PREFERENCE_LOSSES.register("ipo")
def ipo(*, chosen_logps, rejected_logps, ref_chosen_logps=None, ref_rejected_logps=None,
        chosen_lengths=None, rejected_lengths=None, beta=0.1, label_smoothing=0.0, gamma=0.0):
    """IPO: a squared loss that regresses the (per-token) log-ratio gap to 1 / (2 beta).

        h    = (chosen_logps - ref_chosen_logps) / chosen_lengths
               - (rejected_logps - ref_rejected_logps) / rejected_lengths
        loss = (h - 1 / (2 * beta)) ** 2
    The per-token normalisation follows TRL (confirmed there with the IPO authors; without it
    the loss scales with length). Reads the four (B,) sums, both lengths (B,), beta (= tau).
    Paper: Azar et al. 2023, https://arxiv.org/abs/2310.12036 (eq. 17).
    """
    _need("ipo", ref_chosen_logps=ref_chosen_logps, ref_rejected_logps=ref_rejected_logps,
          chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths)
    chosen_ratio = chosen_logps - ref_chosen_logps
    rejected_ratio = rejected_logps - ref_rejected_logps
    h = chosen_ratio / chosen_lengths.clamp(min=1) - rejected_ratio / rejected_lengths.clamp(min=1)
    losses = (h - 1 / (2 * beta)) ** 2
    return losses, _metrics(beta * chosen_ratio, beta * rejected_ratio, chosen_logps, rejected_logps)


@PREFERENCE_LOSSES.register("simpo")
def simpo(*, chosen_logps, rejected_logps, ref_chosen_logps=None, ref_rejected_logps=None,
          chosen_lengths=None, rejected_lengths=None, beta=2.0, label_smoothing=0.0, gamma=0.5):
    """SimPO: reference-free, length-normalised rewards with a target margin gamma.

        r_c  = beta * chosen_logps / chosen_lengths,  r_r = beta * rejected_logps / rejected_lengths
        loss = -(1 - eps) * log sigmoid(r_c - r_r - gamma) - eps * log sigmoid(-(r_c - r_r - gamma))
    Reads the policy sums and lengths (B,), beta, gamma, label_smoothing (eps; 0 in the paper).
    The defaults beta=2, gamma=0.5 are the paper's. Paper: https://arxiv.org/abs/2405.14734.
    """
    _need("simpo", chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths)
    chosen_rewards = beta * chosen_logps / chosen_lengths.clamp(min=1)
    rejected_rewards = beta * rejected_logps / rejected_lengths.clamp(min=1)
    logits = chosen_rewards - rejected_rewards - gamma
    losses = -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)
    return losses, _metrics(chosen_rewards, rejected_rewards, chosen_logps, rejected_logps)


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, branching at -log 2 to avoid cancellation (Maechler 2012)."""
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


@PREFERENCE_LOSSES.register("orpo")
def orpo(*, chosen_logps, rejected_logps, ref_chosen_logps=None, ref_rejected_logps=None,
         chosen_lengths=None, rejected_lengths=None, beta=0.1, label_smoothing=0.0, gamma=0.0):
    """ORPO: SFT on the chosen response plus an odds-ratio preference term, no reference.

        p_c = chosen_logps / chosen_lengths (mean token log-prob), likewise p_r
        log_odds = (p_c - p_r) - (log(1 - exp(p_c)) - log(1 - exp(p_r)))
        loss = -p_c - beta * log sigmoid(log_odds)          (beta = the paper's lambda)
    Reads the policy sums and lengths (B,), beta. The SFT term here is each pair's mean token
    NLL (TRL instead averages it over all chosen tokens of the batch). Rewards beta * p.
    Paper: Hong et al. 2024, https://arxiv.org/abs/2403.07691 (eqs. 4-7).
    """
    _need("orpo", chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths)
    avg_chosen = chosen_logps / chosen_lengths.clamp(min=1)
    avg_rejected = rejected_logps / rejected_lengths.clamp(min=1)
    log_odds = (avg_chosen - avg_rejected) - (_log1mexp(avg_chosen) - _log1mexp(avg_rejected))
    losses = -avg_chosen - beta * F.logsigmoid(log_odds)
    metrics = _metrics(beta * avg_chosen, beta * avg_rejected, chosen_logps, rejected_logps)
    metrics["log_odds"] = log_odds.detach().mean()
    return losses, metrics


@UNPAIRED_LOSSES.register("kto")
def kto_loss(*, policy_logps, ref_logps, desirable, kl_policy_logps, kl_ref_logps, beta=0.1,
             desirable_weight=1.0, undesirable_weight=1.0):
    """KTO: a loss over UNPAIRED responses, each labelled desirable or undesirable.

        r_i  = policy_logps_i - ref_logps_i                       (implicit reward / beta)
        z0   = max(0, mean_j(kl_policy_logps_j - kl_ref_logps_j)), detached
        loss = desirable_weight   * (1 - sigmoid(beta * (r_i - z0)))   if desirable_i
               undesirable_weight * (1 - sigmoid(beta * (z0 - r_i)))   otherwise
    The reference point z0 is a batch estimate of KL(policy || reference): the KL log-prob sums
    are of MISMATCHED prompt/response pairs (each prompt with another row's response, as TRL's
    collator builds them), so z0 does not reward the labelled responses themselves. Separate
    weights rebalance unequal desirable/undesirable counts (the paper keeps
    desirable_weight * n_desirable / (undesirable_weight * n_undesirable) in [1, 4/3]).
    Shapes: policy_logps, ref_logps, desirable (bool) (B,); kl_* (B',) log-prob sums.
    Returns per-response losses (B,) (reduce with .mean(), as TRL does) and detached metrics:
    kl (= z0), rewards/chosen and rewards/rejected (mean beta * r_i of each side; NaN for a side
    absent from the batch), logps/chosen, logps/rejected.
    Paper: Ethayarajh et al. 2024, https://arxiv.org/abs/2402.01306 (eq. 7).
    """
    if policy_logps.shape != ref_logps.shape or policy_logps.shape != desirable.shape:
        raise ValueError(f"policy_logps, ref_logps and desirable must share one (B,) shape, got "
                         f"{tuple(policy_logps.shape)}, {tuple(ref_logps.shape)}, {tuple(desirable.shape)}")
    if desirable_weight < 0 or undesirable_weight < 0:
        raise ValueError(f"weights must be >= 0, got {desirable_weight}, {undesirable_weight}")
    desirable = desirable.to(torch.bool)
    z0 = (kl_policy_logps - kl_ref_logps).mean().detach().clamp(min=0)
    logratio = policy_logps - ref_logps
    losses = torch.where(desirable, desirable_weight * (1 - torch.sigmoid(beta * (logratio - z0))),
                         undesirable_weight * (1 - torch.sigmoid(beta * (z0 - logratio))))
    with torch.no_grad():
        rewards = beta * logratio

        def side_mean(x, rows):
            return x[rows].mean() if rows.any() else torch.full((), float("nan"), dtype=x.dtype, device=x.device)

        metrics = {"kl": z0, "rewards/chosen": side_mean(rewards, desirable),
                   "rewards/rejected": side_mean(rewards, ~desirable),
                   "logps/chosen": side_mean(policy_logps, desirable), "logps/rejected": side_mean(policy_logps, ~desirable)}
    return losses, metrics


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor,
                       margin: torch.Tensor | None = None, center_coef: float = 0.0):
    """Pairwise reward-model loss: -log sigmoid(r_c - r_r - margin) + c * (r_c + r_r)**2.

    chosen_rewards, rejected_rewards, margin: (B,) scalar rewards and optional per-pair margins
    (e.g. from score differences in ranked data; Llama 2, https://arxiv.org/abs/2307.09288).
    The centring term (coefficient c, Eisenstein et al. 2023, https://arxiv.org/abs/2312.09244)
    keeps rewards near zero mean. Returns per-pair losses (B,) and metrics: accuracy, margin,
    chosen/rejected means. Model: Bradley & Terry 1952; Ouyang et al. https://arxiv.org/abs/2203.02155.
    """
    diff = chosen_rewards - rejected_rewards
    losses = -F.logsigmoid(diff if margin is None else diff - margin)
    if center_coef:
        losses = losses + center_coef * (chosen_rewards + rejected_rewards) ** 2
    with torch.no_grad():
        metrics = {
            "accuracy": (diff > 0).float().mean(),
            "margin": diff.mean(),
            "rewards/chosen": chosen_rewards.mean(),
            "rewards/rejected": rejected_rewards.mean(),
        }
    return losses, metrics
