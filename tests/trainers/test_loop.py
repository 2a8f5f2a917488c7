"""The shared step loop on a trainer of counters: phase order, eval and checkpoint cadence,
timers, after_step, resume and close, with no model at all."""

from dataclasses import dataclass, field

import pytest

from rl_reason.io import read_jsonl_records
from rl_reason.trainers.common.loop import LoopSchedule, run_loop
from rl_reason.trainers.common.timers import PhaseTimers
from rl_reason.trainers.grpo_config import LogConfig


@dataclass
class _Cfg:
    log: LogConfig = field(default_factory=lambda: LogConfig(tensorboard=False, progress=False))


class CountingTrainer:
    def __init__(self, start: int = 0):
        self.step, self.timers, self.calls = start, PhaseTimers(), []

    def resume(self):
        self.calls.append(("resume", self.step))

    def train_step(self):
        with self.timers("update"):
            self.calls.append(("train_step", self.step))
        return {"train/loss": 1.0 / self.step, "perf/tokens": 10.0}

    def evaluate(self):
        self.calls.append(("evaluate", self.step))
        return {"eval/score": float(self.step)}

    def after_step(self, stats):
        assert "time/update" in stats and "time/step" in stats  # after the timers, before logging
        return {"after/seen_loss": stats["train/loss"]}

    def save(self):
        self.calls.append(("save", self.step))

    def close(self):
        self.calls.append(("close", self.step))


def test_loop_runs_phases_in_order_with_eval_and_checkpoint_cadence(tmp_path):
    trainer = CountingTrainer()
    run_loop(trainer, tmp_path, _Cfg(), LoopSchedule("t", steps=5, eval_every=2, checkpoint_every=3), progress=False)
    assert trainer.calls == [
        ("resume", 0),
        ("evaluate", 0),
        ("train_step", 1),
        ("train_step", 2),
        ("evaluate", 2),
        ("train_step", 3),
        ("save", 3),
        ("train_step", 4),
        ("evaluate", 4),
        ("train_step", 5),
        ("evaluate", 5),
        ("save", 5),
        ("close", 5),
    ]
    rows = read_jsonl_records(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4, 5]
    assert rows[2]["eval/score"] == 2.0 and "eval/score" not in rows[3] and rows[3]["after/seen_loss"] == 1 / 3
    assert "time/eval" in rows[2] and "time/checkpoint" in rows[4]  # a checkpoint's time is logged with the next step
    assert rows[1]["perf/tokens_per_s"] == pytest.approx(10.0 / rows[1]["time/step"])
    assert "perf/tokens" not in rows[1]


def test_a_resumed_loop_continues_from_the_trainer_step_without_a_step_0_eval(tmp_path):
    trainer = CountingTrainer(start=3)
    run_loop(trainer, tmp_path, _Cfg(), LoopSchedule("t", steps=4, eval_every=2, checkpoint_every=0), progress=False)
    assert trainer.calls == [("resume", 3), ("train_step", 4), ("evaluate", 4), ("save", 4), ("close", 4)]
