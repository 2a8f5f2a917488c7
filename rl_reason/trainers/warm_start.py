"""Rejection-sampling warm start before RL (expert iteration, RFT).

A weak policy on a new task often answers too few prompts right for GRPO's groups to differ,
so RL gets no gradient. Fine-tuning first on the policy's own verified-correct samples (the SFT
trainer's rejection sampling, with the RL run's prompts, template and sampling settings) teaches
the task's answer shape from the few successes there are, then RL starts from that model.
The stage writes ``OUTPUT_DIR/warm_start/`` (its samples, metrics and ``final/`` model); a resumed
run finds ``final/`` and does not repeat it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from rl_reason.config.loader import from_dict
from rl_reason.trainers.grpo_config import GRPOConfig


def warm_start_config(cfg: GRPOConfig) -> dict:
    """The SFT config of the warm-start stage, derived from the RL config (nothing retyped)."""
    ws = cfg.warm_start
    return {
        "trainer": "sft",
        "output_dir": str(Path(cfg.output_dir) / "warm_start"),
        "resume": "never",
        "seed": cfg.seed,
        "model": {"name": cfg.model.name, "dtype": cfg.model.dtype, "device": cfg.model.device,
                  "max_prompt_tokens": cfg.model.max_prompt_tokens,
                  "max_seq_len": cfg.model.max_prompt_tokens + cfg.rollout.max_new_tokens + 1},
        "rejection_sampling": {"data": cfg.data.train, "limit": ws.prompts, "n": ws.n, "template": cfg.data.template,
                               "temperature": cfg.rollout.temperature, "max_new_tokens": cfg.rollout.max_new_tokens},
        "data": {"eval_fraction": 0.0},
        "train": {"steps": ws.steps, "batch_size": ws.batch_size,
                  "micro_batch_size": min(ws.batch_size, cfg.train.micro_batch_size), "lr": ws.lr},
        "eval_every": 0,
        # The base model's held-out accuracy, as the RL run's eval measures it (its step 0 is after the warm start).
        "task_eval": {"data": cfg.data.eval, "limit": cfg.data.eval_limit, "template": cfg.data.template,
                      "max_new_tokens": cfg.eval.max_new_tokens or cfg.rollout.max_new_tokens},
        "log": {"tensorboard": False, "progress": cfg.log.progress},
        "checkpoint": {"every": 0, "keep_last": 1},
    }


def run_warm_start(cfg: GRPOConfig) -> tuple[Path | None, float]:
    """The warm-started model folder (trained now, or found from an earlier attempt; None when off)
    and the seconds its sampling and fine-tuning took. The base model's held-out accuracy is logged
    first (``warm_start/task_eval.jsonl``, both graders), outside that time."""
    if not cfg.warm_start.steps:
        return None, 0.0
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("warm_start runs in one process; for a multi-process run, run the SFT recipe with "
                         "rejection_sampling first and start RL from its final/ folder (model.name=RUN/final)")
    if cfg.data.fields or cfg.data.data_dir:
        raise ValueError("warm_start samples data.train as a dataset name or JSONL with its default fields; "
                         "data.fields / data.data_dir are not supported with it")
    from rl_reason.trainers.minting import start_policy_run
    from rl_reason.trainers.post_config import SFTConfig
    from rl_reason.trainers.sft import fine_tune, rejection_sampled_rows

    sft_cfg = from_dict(SFTConfig, warm_start_config(cfg))
    final = Path(sft_cfg.output_dir) / "final"
    if (final / "config.json").exists():
        return final, 0.0
    run_dir, model, tokenizer = start_policy_run(sft_cfg)
    started = time.perf_counter()
    rows = rejection_sampled_rows(sft_cfg, run_dir, model, tokenizer)
    if not rows:
        # Not an error: RL still runs, and its learning-signal check explains the likely causes.
        print(f"warning: warm start skipped: none of the {cfg.warm_start.prompts} x {cfg.warm_start.n} samples was "
              f"verified correct ({run_dir / 'rejection_sampling'}); RL starts from the base model", file=sys.stderr)
        return None, time.perf_counter() - started
    fine_tune(sft_cfg, model, tokenizer, rows)
    return final, time.perf_counter() - started
