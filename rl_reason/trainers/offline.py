"""The loop shared by the offline trainers (reward model, DPO family, SFT).

Each step draws ``train.batch_size`` rows with the resumable ``PromptSampler``, accumulates
the subclass's loss over micro-batches, and takes one optimizer step in ``optimizer_step``:
the single place a DeepSpeed engine replaces. Checkpoints, metrics and resume are the GRPO
trainer's (``trainers.common``).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import yaml

from rl_reason.config import to_dict
from rl_reason.trainers.common.checkpoint import CheckpointManager
from rl_reason.trainers.common.metrics import MetricsLogger
from rl_reason.trainers.common.sampler import PromptSampler
from rl_reason.trainers.common.schedule import lr_factor
from rl_reason.trainers.common.timers import PhaseTimers


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class OfflineTrainer:
    """Subclasses set ``self.model``, ``self.tokenizer``, ``self.train_rows``, ``self.eval_rows``
    before calling ``setup()``, and implement ``micro_loss`` (and optionally ``evaluate``)."""

    name = "offline"

    def setup(self, cfg) -> None:
        self.cfg = cfg
        self.run_dir = Path(cfg.output_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self.train_rows:
            raise ValueError(f"{self.name}: no training rows")
        if cfg.train.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        t = cfg.train
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=t.lr,
                                           betas=tuple(t.betas), weight_decay=t.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(t.steps, t.warmup_steps, t.lr_schedule))
        self.sampler = PromptSampler(len(self.train_rows), cfg.seed)
        self.checkpoints = CheckpointManager(self.run_dir / "checkpoints", cfg.checkpoint.keep_last)
        self.timers = PhaseTimers()
        self.step = 0

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
    def train(self, steps: int | None = None, metrics_offset: int = 0) -> Path:
        cfg = self.cfg
        steps = cfg.train.steps if steps is None else steps
        self._resume()
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        self.metrics = MetricsLogger(self.run_dir, cfg.log.tensorboard, cfg.log.wandb, cfg.log.wandb_project, to_dict(cfg))
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=self.step, desc=self.name, unit="step", disable=not cfg.log.progress)
        try:
            if self.step == 0 and cfg.eval_every:
                self.metrics.log(0, self.evaluate())
            while self.step < steps:
                self.step += 1
                start = time.perf_counter()
                self.model.train()
                with self.timers("update"):
                    stats = self.update([self.train_rows[i] for i in self.sampler.take(cfg.train.batch_size)])
                self.model.eval()
                if cfg.eval_every and (self.step % cfg.eval_every == 0 or self.step == steps):
                    with self.timers("eval"):
                        stats.update(self.evaluate())
                stats.update(self.timers.pop())
                stats["time/step"] = time.perf_counter() - start
                self.metrics.log(self.step, stats)
                if self.step == steps or (cfg.checkpoint.every and self.step % cfg.checkpoint.every == 0):
                    self.save()
                bar.set_postfix(loss=f"{stats['train/loss']:.4f}")
                bar.update(1)
        finally:
            bar.close()
            self.metrics.close()
        return self.run_dir

    def update(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        self.optimizer.zero_grad(set_to_none=True)
        sums: Counter[str] = Counter()
        for i in range(0, len(rows), self.cfg.train.micro_batch_size):
            micro = rows[i : i + self.cfg.train.micro_batch_size]
            loss, stats = self.micro_loss(micro)
            weight = len(micro) / len(rows)
            (loss * weight).backward()
            sums["train/loss"] += float(loss.detach()) * weight
            for k, v in stats.items():
                sums[k] += float(v) * weight
        sums["train/grad_norm"] = self.optimizer_step()
        sums["train/lr"] = self.scheduler.get_last_lr()[0]
        return dict(sums)

    def optimizer_step(self) -> float:
        """Clip, step, schedule; returns the pre-clip gradient norm."""
        clip = self.cfg.train.max_grad_norm if self.cfg.train.max_grad_norm > 0 else float("inf")
        norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        self.optimizer.step()
        self.scheduler.step()
        return norm

    # ------------------------------------------------------------ checkpoints
    def save(self) -> None:
        with self.timers("checkpoint"):
            self.checkpoints.save(self.step, self.model, self.tokenizer, self.optimizer, self.scheduler,
                                  {"sampler": self.sampler.state_dict()})

    def save_final(self, folder: str = "final") -> Path:
        """The trained model as a plain HF folder (what `rl-reason score`, PPO and eval load)."""
        from rl_reason.io import atomic_dir

        target = self.run_dir / folder
        with atomic_dir(target) as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
        return target

    def _resume(self) -> None:
        from rl_reason.distributed.engine import TorchEngine

        engine = TorchEngine(self.model, self.optimizer, self.scheduler)
        state = self.checkpoints.resume(self.cfg.resume, engine, self.run_dir / "metrics.jsonl")
        if state is not None:
            self.step = int(state["step"])
            self.sampler.load_state_dict(state["sampler"])
