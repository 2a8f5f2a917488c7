"""The reward path between the verifiers and the advantage: mixing several rewards and shaping.

Kept out of the trainer loop so the loop reads as the algorithm: one call turns a rollout
round's scored responses into the rewards the advantage estimator sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rl_reason.algorithms.shaping import (
    REWARD_MIXES,
    length_penalty,
    repetition_penalty,
)
from rl_reason.trainers.grpo_config import GRPOConfig
from rl_reason.trainers.rewards import Scored


def _mix_weights(cfg: GRPOConfig) -> dict[str, float]:
    r = cfg.reward
    return {"math": r.math_weight, "code": r.code_weight, "format": r.format_weight}


def shaped_rewards(cfg: GRPOConfig, scored: list[Scored], completions: Sequence[Any], group_size: int) -> torch.Tensor:
    """Rewards (B,) of one rollout round: B = groups * group_size responses, group-major.

    ``mix=weighted_sum`` keeps each ``Scored.reward`` (the verifier's weighted sum); ``gdpo``
    recomputes it from ``Scored.components``. Then the length and repetition penalties are
    added and recorded in ``components`` (for logging). Unscorable responses (``valid`` False)
    take no part in their group's statistics; they are dropped from the loss anyway.
    """
    sh = cfg.shaping
    rewards = torch.tensor([s.reward for s in scored], dtype=torch.float32)
    valid = torch.tensor([s.valid for s in scored], dtype=torch.bool)
    group_ids = torch.arange(len(scored)) // group_size
    if not valid.any():
        return rewards
    if sh.mix != "weighted_sum":
        weights = _mix_weights(cfg)
        names = sorted({k for s in scored for k in s.components if k in weights and weights[k]})
        if not names:
            raise ValueError(f"shaping.mix={sh.mix} needs per-reward components (Scored.components), and the reward "
                             "function gave none with a non-zero weight")
        comps = torch.tensor([[s.components.get(k, 0.0) for k in names] for s in scored], dtype=torch.float32)
        mixed = REWARD_MIXES.get(sh.mix)(components=comps[valid], weights=torch.tensor([weights[k] for k in names]),
                                        group_ids=group_ids[valid], eps=cfg.dapo.std_eps)
        rewards[valid] = mixed
    if sh.length_penalty:
        lengths = torch.tensor([len(c.token_ids) for c in completions])
        correct = torch.tensor([s.correct for s in scored], dtype=torch.bool)
        pen = torch.zeros_like(rewards)
        pen[valid] = length_penalty(lengths[valid], correct[valid], group_ids[valid], coef=sh.length_penalty)
        rewards += pen
        for s, p in zip(scored, pen.tolist()):
            s.components["length_penalty"] = p
    if sh.repetition_penalty:
        pen = repetition_penalty([list(c.token_ids) for c in completions], n=sh.repetition_ngram, coef=sh.repetition_penalty)
        rewards += pen * valid
        for s, p in zip(scored, pen.tolist()):
            s.components["repetition_penalty"] = p
    return rewards


def component_metrics(scored: Sequence[Scored]) -> dict[str, float]:
    """``reward/<name>``: the mean of each named reward component over the scorable responses."""
    names = sorted({k for s in scored if s.valid for k in s.components})
    return {f"reward/{k}": float(np.mean([s.components[k] for s in scored if s.valid and k in s.components]))
            for k in names}
