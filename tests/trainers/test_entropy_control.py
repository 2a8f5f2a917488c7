"""Entropy control in the GRPO loop: entropy always logged, the adaptive bonus coefficient
checkpointed and restored, the covariance losses selectable by config."""

import pytest

from rl_reason.io import read_jsonl_records
from rl_reason.trainers.grpo import GRPOTrainer
from tests.trainers.test_grpo import TextHashReward, make_cfg


def test_adaptive_entropy_coef_rises_below_target_and_survives_resume(tmp_path):
    # a target far above a tiny model's entropy: the coefficient rises by coef_step every step
    knobs = ["entropy.target=100", "entropy.coef_step=0.01", "entropy.max_coef=1", "checkpoint.every=1"]
    GRPOTrainer(make_cfg(tmp_path, "train.steps=2", *knobs), reward_fn=TextHashReward()).train()
    resumed = GRPOTrainer(make_cfg(tmp_path, "train.steps=3", *knobs), reward_fn=TextHashReward())
    resumed.train()
    rows = read_jsonl_records(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert [r["actor/entropy_coef"] for r in rows] == pytest.approx([0.0, 0.01, 0.02])
    assert all(r["actor/entropy"] > 0 for r in rows)  # entropy is logged every step
    assert resumed.entropy_control.coef == pytest.approx(0.03)


def test_fixed_entropy_coef_stays_fixed(tmp_path):
    GRPOTrainer(make_cfg(tmp_path, "train.steps=2", "algorithm.entropy_coef=0.003"), reward_fn=TextHashReward()).train()
    assert [r["actor/entropy_coef"] for r in read_jsonl_records(tmp_path / "metrics.jsonl")] == [0.003, 0.003]


@pytest.mark.parametrize("loss", ["clip_cov", "kl_cov"])
def test_covariance_losses_train_from_config(tmp_path, loss):
    trainer = GRPOTrainer(make_cfg(tmp_path, f"algorithm.policy_loss={loss}", "entropy.cov_ratio=0.1",
                                   "entropy.clip_cov_lb=1e-9", "entropy.clip_cov_ub=1e9"), reward_fn=TextHashReward())
    trainer.train()
    row = read_jsonl_records(tmp_path / "metrics.jsonl")[-1]
    assert row["actor/cov_frac"] > 0 and row["actor/grad_norm"] > 0
