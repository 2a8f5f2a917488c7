"""The offline trainers' phases (reward model, DPO family, SFT) in the shared step loop
(``trainers.common.loop``).

Each step draws ``train.batch_size`` rows with the resumable ``PromptSampler``, accumulates
the subclass's loss over micro-batches, and takes one optimizer step, all through the
``rl_reason.distributed`` train engine GRPO uses (``distributed.engine``: torch AdamW or
DeepSpeed ZeRO). Checkpoints, metrics and resume are the GRPO trainer's (``trainers.common``).
With several data-parallel ranks every rank draws the same seeded rows and trains on its
share of them (rows rank, rank + world, ...); the engine averages the gradients, which gives the
one-process update over the whole batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from rl_reason.distributed import setup as dist
from rl_reason.trainers.common.checkpoint import CheckpointManager, shared_atomic_dir
from rl_reason.trainers.common.engine import adamw_engine
from rl_reason.trainers.common.loop import LoopSchedule, run_loop
from rl_reason.trainers.common.sampler import PromptSampler
from rl_reason.trainers.common.timers import PhaseTimers


class OfflineTrainer:
    """Subclasses set ``self.model``, ``self.tokenizer``, ``self.train_rows``, ``self.eval_rows``
    before calling ``setup()``, and implement ``micro_loss`` (and optionally ``evaluate``).
    ``setup`` puts LoRA adapters on the model when ``model.lora.r`` > 0 (``lora_task``: what
    peft trains besides them; "seq_cls" adds a scalar model's score head)."""

    name = "offline"
    lora_task = "causal_lm"

    def setup(self, cfg) -> None:
        self.cfg = cfg
        self.run_dir = Path(cfg.output_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self.train_rows:
            raise ValueError(f"{self.name}: no training rows")
        if cfg.train.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        from rl_reason.models.lora import apply_lora

        self.model = apply_lora(self.model, cfg.model.lora, task=self.lora_task)
        self.dist = dist.init_distributed(cfg.distributed.backend, cfg.distributed.timeout_s, cfg.model.device)
        t = cfg.train
        if t.batch_size % (self.dist.world_size * t.micro_batch_size):
            raise ValueError(f"train.batch_size={t.batch_size} must split into {self.dist.world_size} ranks x whole "
                             f"micro-batches of train.micro_batch_size={t.micro_batch_size}")
        self.train_engine = adamw_engine(self.model, cfg.distributed, t, total_updates=t.steps,
                                         micro_batch_size=t.micro_batch_size,
                                         grad_accum_steps=t.batch_size // self.dist.world_size // t.micro_batch_size,
                                         dtype=cfg.model.dtype)
        self.sampler = PromptSampler(len(self.train_rows), cfg.seed)
        self.checkpoints = CheckpointManager(self.run_dir / "checkpoints", cfg.checkpoint.keep_last)
        self.timers = PhaseTimers()
        self.step = 0

    @property
    def max_response_tokens(self) -> int:
        """Response tokens kept per row: what ``model.max_seq_len`` leaves after the prompt's share."""
        return self.cfg.model.max_seq_len - self.cfg.model.max_prompt_tokens

    # ------------------------------------------------------------ hooks
    def micro_loss(self, rows: list[dict[str, Any]]) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean loss over ``rows`` and per-row-mean metrics."""
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        return {}

    def eval_batches(self) -> Iterator[list[dict[str, Any]]]:
        """``self.eval_rows`` in micro-batches, with the model in eval mode."""
        self.model.eval()
        mb = self.cfg.train.micro_batch_size
        for i in range(0, len(self.eval_rows), mb):
            yield self.eval_rows[i : i + mb]

    # ------------------------------------------------------------ loop
    def train(self, steps: int | None = None) -> Path:
        """Train to ``train.steps`` (or stop after ``steps``, as an interrupted run would)."""
        cfg = self.cfg
        steps = cfg.train.steps if steps is None else steps
        run_loop(self, self.run_dir, cfg, LoopSchedule(self.name, steps, cfg.eval_every, cfg.checkpoint.every,
                                                       postfix={"loss": "train/loss"}), cfg.log.progress)
        return self.run_dir

    def train_step(self) -> dict[str, float]:
        self.model.train()
        with self.timers("update"):
            stats = self.update([self.train_rows[i] for i in self.sampler.take(self.cfg.train.batch_size)])
        self.model.eval()
        return stats

    def after_step(self, stats: dict[str, float]) -> dict[str, float]:
        return {}

    def close(self) -> None:
        pass

    def update(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        """One optimizer step on ``rows`` (the whole step's batch, equal on every rank)."""
        engine = self.train_engine
        engine.zero_grad()
        sums: Counter[str] = Counter()
        self.step_rows = rows  # the whole step's batch, for losses normalised over it (SFT's token mean)
        rows = rows[self.dist.rank :: self.dist.world_size]  # this rank's share; ranks' gradients are averaged
        for i in range(0, len(rows), self.cfg.train.micro_batch_size):
            micro = rows[i : i + self.cfg.train.micro_batch_size]
            loss, stats = self.micro_loss(micro)
            weight = len(micro) / len(rows)
            engine.backward(loss * weight)
            sums["train/loss"] += float(loss.detach()) * weight
            for k, v in stats.items():
                sums[k] += float(v) * weight
        sums["train/grad_norm"] = engine.step()
        sums["train/lr"] = engine.lr
        return dict(sums)

    # ------------------------------------------------------------ checkpoints
    def save(self) -> None:
        self.checkpoints.save_engine(self.step, self.train_engine, self.tokenizer, {"sampler": self.sampler.state_dict()})

    def save_final(self, folder: str = "final") -> Path:
        """The trained model as a plain HF folder (what `rl-reason score`, PPO and eval load);
        a LoRA adapter is merged into it."""
        target = self.run_dir / folder
        with shared_atomic_dir(target) as tmp:
            self.train_engine.export_model(tmp, self.tokenizer, merged=True)
        return target

    def resume(self) -> None:
        state = self.checkpoints.resume(self.cfg.resume, self.train_engine, self.run_dir)
        if state is not None:
            self.step = int(state["step"])
            self.sampler.load_state_dict(state["sampler"])
