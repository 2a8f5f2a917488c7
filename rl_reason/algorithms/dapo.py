"""DAPO's data-side parts as pure functions (https://arxiv.org/abs/2503.14476).

Clip-higher lives in `policy_loss.ppo_clip` (clip_high) and the token-level loss in
`aggregation` (token-mean); here are dynamic sampling's group filter, soft overlong
punishment and overlong filtering. The resampling loop with its carry-over buffer belongs to
the trainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rl_reason.algorithms.advantages import group_moments


@dataclass(frozen=True)
class GroupFilter:
    """Result of `filter_groups_by_std`."""

    keep: torch.Tensor  # (B,) bool, True for responses of kept groups
    kept_groups: torch.Tensor  # (G_kept,) group ids with reward spread, in first-appearance order
    dropped_groups: torch.Tensor  # (G_dropped,) group ids whose rewards are (numerically) all equal


def filter_groups_by_std(scores: torch.Tensor, group_ids: torch.Tensor, eps: float = 1e-6) -> GroupFilter:
    """Dynamic sampling: keep the groups whose reward std exceeds `eps`.

    scores (B,), group_ids (B,) int. A group whose responses all got the same reward has zero
    advantage under GRPO and only dilutes the batch. The test is std > eps, not std != 0
    (floating-point noise in summed rewards would let constant groups through, NeMo-RL #4158),
    and not the group mean (OpenRLHF #1270: fails for non-binary rewards). Population std, so a
    singleton group is dropped.
    """
    if scores.shape != group_ids.shape or scores.dim() != 1:
        raise ValueError(f"scores and group_ids must both be (B,), got {tuple(scores.shape)} "
                         f"and {tuple(group_ids.shape)}")
    unique, index = torch.unique(group_ids, return_inverse=True)
    size, _, sq_dev = group_moments(scores.to(torch.float64), index, len(unique))
    group_keep = (sq_dev / size).sqrt() > eps
    first_seen = torch.full((len(unique),), len(scores), dtype=torch.long, device=scores.device).scatter_reduce_(
        0, index, torch.arange(len(scores), device=scores.device), reduce="amin")
    order = first_seen.argsort()
    return GroupFilter(
        keep=group_keep[index],
        kept_groups=unique[order][group_keep[order]],
        dropped_groups=unique[order][~group_keep[order]],
    )


def soft_overlong_penalty(response_lengths: torch.Tensor, max_len: int, buffer: int,
                          penalty_factor: float = 1.0) -> torch.Tensor:
    """DAPO soft overlong punishment (paper eq. 13), (B,) lengths -> (B,) penalties <= 0.

        0                                         if len <= max_len - buffer
        -(len - (max_len - buffer)) / buffer * f  if max_len - buffer < len <= max_len
        -f                                        if len > max_len
    Added to the outcome reward; `max_len` is the generation limit.
    """
    if not 0 < buffer <= max_len:
        raise ValueError(f"overlong buffer must be in (0, max_len={max_len}], got {buffer}")
    expected = max_len - buffer
    exceed = (response_lengths.to(torch.float32) - expected).clamp(min=0, max=buffer)
    return -exceed / buffer * penalty_factor


def overlong_filter_mask(*, finish_reasons: Sequence[str] | None = None,
                         response_lengths: torch.Tensor | None = None,
                         max_len: int | None = None) -> torch.Tensor:
    """Overlong filtering: (B,) bool, False for truncated responses, to be removed from the loss.

    Truncated = finish_reason "length" when finish reasons are given (preferred: a response
    may end with EOS exactly at the limit), else response_length >= max_len. Multiply the
    response mask by it: `response_mask * keep[:, None]`.
    """
    if finish_reasons is not None:
        unknown = sorted({r for r in finish_reasons if r not in ("stop", "length")})
        if unknown:
            raise ValueError(f"finish reasons must be 'stop' or 'length', got {unknown}")
        return torch.tensor([r != "length" for r in finish_reasons], dtype=torch.bool)
    if response_lengths is None or max_len is None:
        raise ValueError("pass finish_reasons, or response_lengths and max_len")
    return response_lengths < max_len
