"""The one place a trainer's optimizer engine is built (policy, critic, reward model, DPO, SFT)."""

from __future__ import annotations

import torch

from rl_reason.distributed.engine import build_train_engine
from rl_reason.trainers.common.schedule import lr_factor


def adamw_engine(
    model: torch.nn.Module,
    dist_cfg,
    opt,
    *,
    total_updates: int,
    micro_batch_size: int,
    grad_accum_steps: int,
    dtype: str,
):
    """The engine ``dist_cfg.engine`` names (torch or DeepSpeed ZeRO) with AdamW over the trainable
    parameters and ``opt``'s LR schedule (an ``AdamWConfig``) over ``total_updates`` optimizer steps."""
    betas = tuple(opt.betas)
    return build_train_engine(
        model,
        dist_cfg,
        optimizer_fn=lambda params: torch.optim.AdamW(
            [p for p in params if p.requires_grad], lr=opt.lr, betas=betas, weight_decay=opt.weight_decay
        ),
        scheduler_fn=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_factor(total_updates, opt.warmup_steps, opt.lr_schedule)
        ),
        micro_batch_size=micro_batch_size,
        grad_accum_steps=grad_accum_steps,
        max_grad_norm=opt.max_grad_norm,
        lr=opt.lr,
        betas=betas,
        weight_decay=opt.weight_decay,
        dtype=dtype,
    )
