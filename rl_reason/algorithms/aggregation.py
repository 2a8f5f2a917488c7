"""Reduce a per-token loss matrix (B, T) to the scalar that is back-propagated.

Modes (the length-bias story: GRPO's per-sequence mean gives each token of a long response
less weight, so long wrong answers are under-penalised; DAPO and Dr.GRPO remove that):
    token-mean                sum of all valid token losses / number of valid tokens in the
                              whole optimiser-step batch (DAPO, https://arxiv.org/abs/2503.14476)
    seq-mean-token-mean       mean over sequences of each sequence's token mean (original GRPO,
                              https://arxiv.org/abs/2402.03300)
    seq-mean-token-sum-norm   sum of token losses / (number of sequences * max_len), max_len a
                              constant (Dr.GRPO, https://arxiv.org/abs/2503.20783)

Invariance. One optimiser step sees a mini-batch split over `dp_size` ranks and, on each rank,
over gradient-accumulation micro-batches. Calling `aggregate_loss` on every micro-batch with
the *global* normalisers of the step (`step_normalisers` over the rank's micro-batches, then
`all_reduce_normalisers` over the ranks), summing the micro-batch losses'
gradients on each rank (plain `backward()` accumulation, no division by the number of
micro-batches) and averaging across ranks (what DDP/DeepSpeed do) gives exactly the gradient of
the full-batch loss. Hence the `* dp_size` below: it cancels the ranks' averaging. DeepSpeed's
`engine.backward(loss)` divides by its gradient-accumulation steps by default; call it with
`scale_wrt_gas=False` (DeepSpeed 0.19) or the step is scaled down by that factor.
Sequences with no valid token (e.g. removed by overlong filtering) count in no normaliser.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

AGGREGATION_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")


@dataclass(frozen=True)
class LossNormalisers:
    """Counts over the whole optimiser step (all micro-batches, all ranks)."""

    num_tokens: int
    num_seqs: int

    def __add__(self, other: LossNormalisers) -> LossNormalisers:
        return LossNormalisers(self.num_tokens + other.num_tokens, self.num_seqs + other.num_seqs)


def local_counts(mask: torch.Tensor) -> LossNormalisers:
    """Valid tokens and sequences with >= 1 valid token in one micro-batch mask (B, T).

    In data-parallel training all-reduce (sum) both numbers across ranks to get the step's
    normalisers.
    """
    return LossNormalisers(int((mask > 0).sum()), int(((mask > 0).sum(-1) > 0).sum()))


def step_normalisers(masks: Iterable[torch.Tensor]) -> LossNormalisers:
    """Sum of `local_counts` over the micro-batch masks of one optimiser step."""
    total = LossNormalisers(0, 0)
    for mask in masks:
        total = total + local_counts(mask)
    return total


def all_reduce_normalisers(local: LossNormalisers, group=None, device: torch.device | str = "cpu") -> LossNormalisers:
    """Sum this rank's `step_normalisers` over the ranks of a torch.distributed `group`.

    Every rank must call it (a collective). `device` must suit the backend: "cpu" for gloo,
    the rank's CUDA device for NCCL.
    """
    import torch.distributed as dist

    counts = torch.tensor([local.num_tokens, local.num_seqs], dtype=torch.long, device=device)
    dist.all_reduce(counts, op=dist.ReduceOp.SUM, group=group)
    return LossNormalisers(int(counts[0]), int(counts[1]))


def aggregate_loss(loss_mat: torch.Tensor, mask: torch.Tensor, mode: str, *,
                   global_num_tokens: int | None = None, global_num_seqs: int | None = None,
                   max_len: int | None = None, dp_size: int = 1) -> torch.Tensor:
    """Scalar loss from per-token losses `loss_mat` (B, T) over `mask` (B, T).

    global_num_tokens / global_num_seqs: the step's counts (see `step_normalisers`); when None,
    this micro-batch's own counts are used (right only when it is the whole step on one rank).
    max_len: the constant of `seq-mean-token-sum-norm` (the max response length), required there.
    dp_size: number of data-parallel ranks whose gradients are averaged.
    """
    mask = mask.to(loss_mat.dtype)
    counts = local_counts(mask)
    num_tokens = counts.num_tokens if global_num_tokens is None else global_num_tokens
    num_seqs = counts.num_seqs if global_num_seqs is None else global_num_seqs
    if mode == "token-mean":
        total = (loss_mat * mask).sum()
        denominator = num_tokens
    elif mode == "seq-mean-token-mean":
        seq_tokens = mask.sum(-1)
        total = ((loss_mat * mask).sum(-1) / seq_tokens.clamp(min=1)).sum()
        denominator = num_seqs
    elif mode == "seq-mean-token-sum-norm":
        if max_len is None or max_len <= 0:
            raise ValueError(f"seq-mean-token-sum-norm needs a positive constant max_len, got {max_len}")
        total = (loss_mat * mask).sum()
        denominator = num_seqs * max_len
    else:
        raise ValueError(f"unknown loss aggregation mode {mode!r}; valid: {', '.join(AGGREGATION_MODES)}")
    # An all-masked step has no gradient signal: return a zero that still backpropagates.
    return total * dp_size / max(denominator, 1)
