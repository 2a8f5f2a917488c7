"""The step loop every trainer runs; each trainer supplies its phases.

    resume -> [eval at step 0] -> per step: train_step() (rollout or batch -> reward ->
    advantage -> update, each phase in a named timer) -> eval when due -> timers and
    rank-mean metrics -> after_step -> log -> checkpoint when due

A trainer (GRPO, PPO, reward model, DPO, SFT) implements ``StepTrainer``; the loop owns the
order of the phases, the metric sinks, the progress bar and when to evaluate, checkpoint and stop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rl_reason.distributed import setup as dist
from rl_reason.trainers.common.metrics import open_run_logs
from rl_reason.trainers.common.timers import PhaseTimers


class StepTrainer(Protocol):
    step: int
    timers: PhaseTimers

    def resume(self) -> None: ...
    def train_step(self) -> dict[str, float]: ...
    def evaluate(self) -> dict[str, float]: ...
    def after_step(self, stats: dict[str, float]) -> dict[str, float]: ...
    def save(self) -> None: ...
    def close(self) -> None: ...


@dataclass
class LoopSchedule:
    name: str  # the progress bar's label
    steps: int
    eval_every: int  # 0 = off; else also before step 1 and at the last step
    checkpoint_every: int  # 0 = only at the last step
    time_budget_min: float = 0.0  # stop after the first step ending this late (0 = off)
    postfix: dict[str, str] = field(default_factory=dict)  # progress-bar label -> metric name
    budget_used_s: float = 0.0  # seconds of the time budget spent before the loop (e.g. a warm start)


def run_loop(trainer: StepTrainer, run_dir: Path, cfg: Any, schedule: LoopSchedule, progress: bool) -> None:
    trainer.resume()
    main = dist.is_main()
    metrics = open_run_logs(run_dir, cfg, main)
    from tqdm.auto import tqdm

    bar = tqdm(
        total=schedule.steps, initial=trainer.step, desc=schedule.name, unit="step", disable=not (progress and main)
    )
    try:
        if trainer.step == 0 and schedule.eval_every:
            metrics.log(0, trainer.evaluate())
        budget_end = time.perf_counter() + 60 * schedule.time_budget_min - schedule.budget_used_s
        while trainer.step < schedule.steps:
            trainer.step += 1
            start = time.perf_counter()
            stats = trainer.train_step()
            # Every rank agrees to stop (the clock is rank 0's), so collectives stay in step.
            last = trainer.step == schedule.steps or (
                schedule.time_budget_min > 0 and dist.broadcast_flag(time.perf_counter() >= budget_end)
            )
            if schedule.eval_every and (trainer.step % schedule.eval_every == 0 or last):
                with trainer.timers("eval"):
                    stats.update(trainer.evaluate())
            stats.update(trainer.timers.pop())
            stats["time/step"] = time.perf_counter() - start
            if "perf/tokens" in stats:
                stats["perf/tokens_per_s"] = stats.pop("perf/tokens") / stats["time/step"]
            stats = dist.mean_metrics(stats)  # per-rank figures averaged; tokens/s is then per rank
            stats.update(trainer.after_step(stats))
            metrics.log(trainer.step, stats)
            if last or (schedule.checkpoint_every and trainer.step % schedule.checkpoint_every == 0):
                with trainer.timers("checkpoint"):
                    trainer.save()
            bar.set_postfix({label: f"{stats.get(key, float('nan')):.4g}" for label, key in schedule.postfix.items()})
            bar.update(1)
            if last:
                break
    finally:
        bar.close()
        metrics.close()
        trainer.close()
