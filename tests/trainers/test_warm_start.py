"""The rejection-sampling warm start before RL: SFT on verified-correct samples, RL starts from it."""

import pytest
import torch

from rl_reason.config import ConfigError, load_config
from rl_reason.io import read_jsonl_records
from rl_reason.models import load_model
from rl_reason.trainers import minting
from rl_reason.trainers.grpo import GRPOTrainer
from rl_reason.trainers.grpo_config import GRPOConfig
from rl_reason.trainers.warm_start import run_warm_start, warm_start_config


def _cfg(tmp_path, policy, *overrides):
    base = [
        f"output_dir={tmp_path / 'run'}", f"model.name={policy}", "data.train=arithmetic:train", "data.template=base_boxed",
        "data.train_limit=16", "rollout.n=4", "rollout.max_new_tokens=8", "rollout.temperature=0.7",
        "train.prompts_per_step=2", "train.micro_batch_size=8", "train.steps=1", "log.tensorboard=false",
        "log.progress=false", "log.samples_every=0", "checkpoint.every=0", "warm_start.steps=2",
        "warm_start.prompts=6", "warm_start.n=3", "warm_start.batch_size=4", "warm_start.lr=1e-2",
    ]
    return load_config(GRPOConfig, None, base + list(overrides))


def test_warm_start_config_takes_the_rl_runs_prompts_and_sampling(tmp_path, saved_policy):
    cfg = _cfg(tmp_path, saved_policy)
    sft = warm_start_config(cfg)
    rs = sft["rejection_sampling"]
    assert (rs["data"], rs["template"], rs["temperature"], rs["max_new_tokens"], rs["limit"], rs["n"]) == (
        "arithmetic:train", "base_boxed", 0.7, 8, 6, 3)
    assert sft["train"]["steps"] == 2 and sft["output_dir"] == str(tmp_path / "run" / "warm_start")


def test_rl_starts_from_the_warm_started_model_and_a_rerun_reuses_it(tmp_path, saved_policy, monkeypatch):
    calls = []

    def fake_correct_samples(model, tokenizer, mint, out_dir, seed=0, progress=True):  # a policy that got 8 right
        calls.append((mint.data, mint.limit, mint.n))
        return [{"id": i, "prompt": f"Problem: {i} + 1 =", "completion": f"\\boxed{{{i + 1}}}"} for i in range(kept)]

    monkeypatch.setattr(minting, "correct_samples", fake_correct_samples)
    kept = 3  # fewer than warm_start.batch_size: skipped, RL starts from the base
    assert run_warm_start(_cfg(tmp_path / "few", saved_policy))[0] is None
    kept = 8
    calls.clear()
    cfg = _cfg(tmp_path, saved_policy, "data.eval=arithmetic:heldout", "data.eval_limit=3")
    final, seconds = run_warm_start(cfg)
    assert calls == [("arithmetic:train", 6, 3)] and seconds > 0
    assert (final / "config.json").is_file()
    # The base model's held-out accuracy under both graders, logged before the fine-tuning.
    (base,) = read_jsonl_records(tmp_path / "run" / "warm_start" / "task_eval.jsonl")
    assert base["stage"] == "before" and {"task/pass@1", "task/strict/pass@1", "task/no_answer"} <= set(base)
    warm, _ = load_model(str(final))
    base, _ = load_model(str(saved_policy))
    assert any(not torch.equal(a, b) for a, b in zip(warm.parameters(), base.parameters()))

    trainer = GRPOTrainer(cfg, init_from=final)
    assert all(torch.equal(a, b) for a, b in zip(trainer.model.parameters(), warm.parameters()))
    assert run_warm_start(cfg) == (final, 0.0) and len(calls) == 1  # a resumed run does not sample or train again


def test_warm_start_without_a_correct_sample_warns_and_rl_starts_from_the_base(tmp_path, saved_policy, capsys):
    # A random tiny model answers no arithmetic problem right: nothing to fine-tune on.
    final, seconds = run_warm_start(_cfg(tmp_path, saved_policy))
    assert final is None and seconds > 0
    assert "warm start skipped: 0 of the 6 x 3 samples were verified correct, fewer than one batch" in (
        capsys.readouterr().err)


def test_off_by_default_and_bad_values_name_the_key(tmp_path, saved_policy):
    assert run_warm_start(_cfg(tmp_path, saved_policy, "warm_start.steps=0")) == (None, 0.0)
    with pytest.raises(ConfigError, match="warm_start.n"):
        _cfg(tmp_path, saved_policy, "warm_start.n=0")
