"""The online difficulty curriculum in the GRPO loop: which sampler draws the prompts, how each
rollout group updates the pass-rate table, and what is logged about it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rl_reason.trainers.common.sampler import CurriculumSampler, PassRateTable, PromptSampler
from rl_reason.trainers.grpo_config import GRPOConfig


def prompt_sampler(cfg: GRPOConfig, keys: list[str], table: PassRateTable) -> PromptSampler:
    """The seeded epoch sampler, or with ``curriculum.mode`` set one steered by ``table``."""
    c = cfg.curriculum
    if c.mode == "off":
        return PromptSampler(len(keys), cfg.seed)
    return CurriculumSampler(len(keys), cfg.seed, keys, table, c.mode, solved=c.solved, hopeless=c.hopeless,
                             floor=c.floor)


def observe_groups(table: PassRateTable, groups: Sequence[Any], examples: Sequence[Any]) -> None:
    """Update the table from every freshly rolled-out group: correct / scorable completions
    (groups dynamic sampling drops count too: they are the solved and hopeless prompts)."""
    for g in groups:
        valid = [s for s in g.scored if s.valid]
        table.observe(examples[g.example_index].id, sum(s.correct for s in valid), len(valid))


def curriculum_metrics(cfg: GRPOConfig, table: PassRateTable, sampler: PromptSampler) -> dict[str, float]:
    c = cfg.curriculum
    out = table.metrics(c.solved, c.hopeless)
    if isinstance(sampler, CurriculumSampler):
        out.update({"curriculum/skipped": float(sampler.skipped), "curriculum/fallbacks": float(sampler.fallbacks)})
    return out
