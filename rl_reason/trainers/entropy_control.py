"""Entropy control in the GRPO/PPO update: the entropy bonus's coefficient over a run (fixed or
adapted toward a target entropy, checkpointed) and the extra arguments of the covariance losses."""

from __future__ import annotations

import math
from typing import Any

import torch

from rl_reason.algorithms.entropy import adaptive_entropy_coef
from rl_reason.trainers.grpo_config import GRPOConfig


class EntropyControl:
    """The coefficient of the entropy bonus: ``algorithm.entropy_coef``, moved after every step
    toward ``entropy.target`` when that is set. Its state goes into the checkpoint."""

    def __init__(self, cfg: GRPOConfig) -> None:
        self.cfg = cfg.entropy
        self.coef = cfg.algorithm.entropy_coef

    def after_step(self, mean_entropy: float | None) -> dict[str, float]:
        """Update from the step's mean token entropy (averaged over ranks, so every rank agrees);
        returns the coefficient the step used and the next one, for the metrics."""
        used = self.coef
        if self.cfg.target > 0 and mean_entropy is not None:
            self.coef = adaptive_entropy_coef(self.coef, float(mean_entropy), target=self.cfg.target,
                                              step=self.cfg.coef_step, max_coef=self.cfg.max_coef)
        return {"actor/entropy_coef": used}

    def state_dict(self) -> dict[str, float]:
        return {"coef": self.coef}

    def load_state_dict(self, state: dict[str, float] | None) -> None:
        if state is not None and math.isfinite(state["coef"]):
            self.coef = float(state["coef"])


def policy_loss_kwargs(cfg: GRPOConfig, seed: int) -> dict[str, Any]:
    """Keyword arguments the configured policy loss takes beyond the common ones."""
    e = cfg.entropy
    if cfg.algorithm.policy_loss == "clip_cov":
        # seeded per step: a resumed run cuts the same tokens
        return {"cov_ratio": e.cov_ratio, "cov_lb": e.clip_cov_lb, "cov_ub": e.clip_cov_ub,
                "generator": torch.Generator().manual_seed(seed)}
    if cfg.algorithm.policy_loss == "kl_cov":
        return {"cov_ratio": e.cov_ratio, "cov_kl_coef": e.kl_cov_coef}
    return {}
