"""On-policy distillation wired through the GRPO loop: per-token reverse-KL advantages from a teacher."""

import pytest
import torch

from rl_reason.config import load_config
from rl_reason.io import read_jsonl
from rl_reason.models import tiny_model
from rl_reason.trainers.grpo import GRPOTrainer
from rl_reason.trainers.grpo_config import GRPOConfig
from rl_reason.trainers.rewards import Scored


def _constant(examples, responses):
    return [Scored(1.0, "correct", True) for _ in responses]


def _trainer(tmp_path, teacher_seed):
    lm, tok = tiny_model(arch="llama", seed=teacher_seed)
    lm.save_pretrained(tmp_path / "teacher")
    tok.save_pretrained(tmp_path / "teacher")
    cfg = load_config(GRPOConfig, None, [
        f"output_dir={tmp_path / 'run'}", "model.name=tiny:llama", "seed=0", "data.train=arithmetic:train",
        "data.template=base_boxed", "data.train_limit=8", "rollout.n=4", "rollout.max_new_tokens=8",
        "train.prompts_per_step=2", "train.micro_batch_size=8", "train.lr=1e-2", "train.steps=1",
        "log.tensorboard=false", "log.progress=false", "log.samples_every=0", "checkpoint.every=0",
        f"distill.teacher={tmp_path / 'teacher'}", "distill.coef=1.0", "signal.warn_after=0"])
    # A constant verifier reward: every group advantage is 0, so only distillation can move the policy.
    return GRPOTrainer(cfg, reward_fn=_constant)


def _params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_teacher_equal_to_student_gives_zero_advantage_and_no_update(tmp_path):
    t = _trainer(tmp_path, teacher_seed=0)  # tiny:llama with seed 0 is the policy's own initial weights
    before = _params(t.model)
    t.train()
    row = [r for _, r in read_jsonl(tmp_path / "run" / "metrics.jsonl")][-1]
    assert row["distill/reverse_kl"] == pytest.approx(0.0, abs=1e-6)
    for k, v in _params(t.model).items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=1e-7)


def test_a_different_teacher_moves_the_policy_by_per_token_advantages(tmp_path):
    t = _trainer(tmp_path, teacher_seed=1)
    before = _params(t.model)
    t.train()
    row = [r for _, r in read_jsonl(tmp_path / "run" / "metrics.jsonl")][-1]
    assert abs(row["distill/reverse_kl"]) > 1e-3
    assert any(not torch.equal(v, before[k]) for k, v in _params(t.model).items())


def test_a_teacher_with_another_tokenizer_is_refused(tmp_path):
    lm, tok = tiny_model(arch="llama", seed=0)
    tok.add_tokens(["<extra_token>"])
    lm.save_pretrained(tmp_path / "teacher")
    tok.save_pretrained(tmp_path / "teacher")
    cfg = load_config(GRPOConfig, None, [f"output_dir={tmp_path / 'run'}", "model.name=tiny:llama", "data.train_limit=4",
                                         "log.tensorboard=false", f"distill.teacher={tmp_path / 'teacher'}"])
    with pytest.raises(ValueError, match="tokenizer differs"):
        GRPOTrainer(cfg, reward_fn=_constant)
