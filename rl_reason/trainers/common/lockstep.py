"""Data-parallel lockstep: every rank runs the same number of forwards and backwards.

ZeRO-3 and FSDP2 gather a module's parameter shards in a collective on each forward, and the engines
all-reduce gradients once per optimizer step after a fixed number of backward passes. A rank
whose share of a step is smaller (dynamic sampling dropped its groups, or all of them) must
still take part in each of those calls: it repeats a chunk whose result is dropped (no-grad
forwards) or back-propagated with weight 0 (updates). No trainer returns early before a
collective; a step every rank skips is decided from global counts (``step_token_count``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rl_reason.algorithms.aggregation import local_counts
from rl_reason.distributed import setup as dist


def lockstep_chunks(index: torch.Tensor, size: int, count: int | None) -> tuple[list[torch.Tensor], int]:
    """``index`` cut into chunks of ``size`` rows, padded to ``count`` chunks, and how many are real.

    The padding repeats the last chunk; an empty ``index`` pads with row 0 of the batch (every
    trainer batch has one: ``Batch.placeholder`` on a rank left without rows). ``count`` None:
    no padding (a module no other rank waits on, such as an unsharded frozen reference).
    """
    chunks = list(index.split(size)) if index.numel() else []
    real = len(chunks)
    count = real if count is None else count
    if real > count:
        raise ValueError(f"{real} chunks of {size} rows on rank {dist.rank()}, more than the {count} every rank runs")
    filler = chunks[-1] if chunks else index.new_zeros(1)
    return chunks + [filler] * (count - real), real


@torch.no_grad()
def lockstep_forward(
    forward: Callable[[torch.Tensor], torch.Tensor],
    rows: int,
    size: int,
    count: int | None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``forward(index)`` over ``rows`` rows in chunks of ``size``, run ``count`` times on every
    rank (see ``lockstep_chunks``); the real chunks' results concatenated along dim 0."""
    chunks, real = lockstep_chunks(torch.arange(rows, device=device), size, count)
    outputs = [forward(ix) for ix in chunks]
    return torch.cat(outputs[:real])


def step_token_count(response_mask: torch.Tensor, device: torch.device | str = "cpu") -> int:
    """Loss tokens of the step over all ranks (a collective every rank joins): 0 means every
    rank skips the update together, the only early return that keeps ranks in step."""
    return dist.global_normalisers(local_counts(response_mask), device).num_tokens
