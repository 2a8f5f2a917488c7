"""RL algorithms as pure tensor functions (torch only), looked up by name in registries.

    from rl_reason.algorithms import ADVANTAGES, POLICY_LOSSES, aggregate_loss, kl_penalty
    adv, ret = ADVANTAGES.get("grpo")(scores=s, response_mask=m, group_ids=g)
    loss_mat, metrics = POLICY_LOSSES.get("ppo_clip")(logp=lp, old_logp=olp, advantages=adv,
                                                      response_mask=m, clip_low=0.2, clip_high=0.28)
    loss = aggregate_loss(loss_mat, m, "token-mean", global_num_tokens=n)
    losses, metrics = PREFERENCE_LOSSES.get("dpo")(chosen_logps=..., rejected_logps=..., ...)
    seq_scores = STEP_AGGREGATIONS.get("min")(step_scores=s, step_mask=m)   # process reward models
"""

from rl_reason.algorithms.advantages import ADVANTAGES
from rl_reason.algorithms.aggregation import (
    AGGREGATION_MODES,
    LossNormalisers,
    aggregate_loss,
    all_reduce_normalisers,
    local_counts,
    step_normalisers,
)
from rl_reason.algorithms.dapo import GroupFilter, filter_groups_by_std, overlong_filter_mask, soft_overlong_penalty
from rl_reason.algorithms.entropy import adaptive_entropy_coef, token_covariance
from rl_reason.algorithms.kl import (
    KL_ESTIMATORS,
    entropy_bonus_loss,
    entropy_from_logits,
    kl_penalised_rewards,
    kl_penalty,
)
from rl_reason.algorithms.masked import masked_mean, masked_sum, masked_var, masked_whiten
from rl_reason.algorithms.policy_loss import (
    POLICY_LOSSES,
    logprob_mismatch_metrics,
    truncated_is_weights,
)
from rl_reason.algorithms.preference import PREFERENCE_LOSSES, UNPAIRED_LOSSES, bradley_terry_loss, kto_loss
from rl_reason.algorithms.process import (
    IGNORE_INDEX,
    STEP_AGGREGATIONS,
    distill_advantages,
    distill_loss,
    mix_process_outcome,
    prm_loss,
    step_probabilities,
)
from rl_reason.algorithms.registry import Registry
from rl_reason.algorithms.shaping import REWARD_MIXES, length_penalty, repetition_penalty, repetition_share
from rl_reason.algorithms.value import clipped_value_loss, explained_variance

__all__ = [
    "ADVANTAGES",
    "AGGREGATION_MODES",
    "GroupFilter",
    "IGNORE_INDEX",
    "KL_ESTIMATORS",
    "LossNormalisers",
    "POLICY_LOSSES",
    "PREFERENCE_LOSSES",
    "REWARD_MIXES",
    "Registry",
    "STEP_AGGREGATIONS",
    "UNPAIRED_LOSSES",
    "adaptive_entropy_coef",
    "aggregate_loss",
    "all_reduce_normalisers",
    "bradley_terry_loss",
    "clipped_value_loss",
    "distill_advantages",
    "distill_loss",
    "entropy_bonus_loss",
    "entropy_from_logits",
    "explained_variance",
    "filter_groups_by_std",
    "kl_penalised_rewards",
    "kl_penalty",
    "kto_loss",
    "length_penalty",
    "local_counts",
    "logprob_mismatch_metrics",
    "masked_mean",
    "masked_sum",
    "masked_var",
    "masked_whiten",
    "mix_process_outcome",
    "overlong_filter_mask",
    "prm_loss",
    "repetition_penalty",
    "repetition_share",
    "soft_overlong_penalty",
    "step_normalisers",
    "step_probabilities",
    "token_covariance",
    "truncated_is_weights",
]
