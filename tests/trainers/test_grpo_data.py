"""What the GRPO trainer does with its data: field mappings for files, prompts over the length
limit left out (counted, one warning) or an error, stop strings passed to generation."""

import json
import logging

import pytest

from rl_reason.config import load_config
from rl_reason.trainers.grpo import GRPOTrainer
from rl_reason.trainers.grpo_config import GRPOConfig
from rl_reason.trainers.rewards import Scored

TESTS = [{"kind": "call", "fn_name": "f", "inputs": [[1]], "outputs": [2]}]


class ConstantReward:
    def __call__(self, examples, responses):
        return [Scored(1.0, "passed", True) for _ in responses]


def write_tasks(path, prompts):
    path.write_text("".join(json.dumps({"name": f"t{i}", "text": p, "tests": TESTS}) + "\n" for i, p in enumerate(prompts)))


def make_cfg(tmp_path, *overrides):
    base = [f"output_dir={tmp_path / 'run'}", "model.name=tiny:llama", "data.template=base_code", "rollout.n=2",
            "rollout.max_new_tokens=4", "train.prompts_per_step=2", "train.micro_batch_size=4", "train.steps=1",
            "model.max_prompt_tokens=200", "model.max_seq_len=256", "log.tensorboard=false", "log.progress=false"]
    return load_config(GRPOConfig, None, base + list(overrides))


def test_mapped_file_loads_and_overlong_prompts_are_left_out_with_one_warning(tmp_path, caplog):
    # The tiny tokenizer has one token per character: a 300-character task is over 200 tokens.
    write_tasks(tmp_path / "train.jsonl", ["Write f(x) returning x + 1.", "y" * 300, "Write f(x) returning x * 2.", "z" * 400])
    write_tasks(tmp_path / "eval.jsonl", ["Write f(x) returning x.", "w" * 500])
    # data.fields maps the file's own keys; a tests rule alone means rows need no answer
    cfg = make_cfg(tmp_path, f"data.train={tmp_path / 'train.jsonl'}", f"data.eval={tmp_path / 'eval.jsonl'}",
                   "data.fields=id=name,prompt=text,tests=as_is")
    with caplog.at_level(logging.WARNING):
        trainer = GRPOTrainer(cfg, reward_fn=ConstantReward())
    assert [e.id for e in trainer.train_examples] == ["t0", "t2"] and len(trainer.prompts) == 2
    assert [e.id for e in trainer.eval_examples] == ["t0"]
    assert all(e.task == "code" and e.tests == TESTS for e in trainer.train_examples)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "max_prompt_tokens" in r.getMessage()]
    assert len(warnings) == 2
    assert "left out 2 of 4 prompts longer than model.max_prompt_tokens=200" in warnings[0]
    assert str(tmp_path / "train.jsonl") in warnings[0] and "left out 1 of 2" in warnings[1]


def test_overlong_prompt_is_an_error_when_asked_and_when_nothing_fits(tmp_path):
    write_tasks(tmp_path / "train.jsonl", ["Write f(x) returning x + 1.", "y" * 300])
    common = [f"data.train={tmp_path / 'train.jsonl'}", "data.fields=id=name,prompt=text,tests=as_is"]
    with pytest.raises(ValueError, match=r"example 't1' has \d+ prompt tokens > model.max_prompt_tokens=200 \(1 such"):
        GRPOTrainer(make_cfg(tmp_path, *common, "data.on_overlong=error"), reward_fn=ConstantReward())
    with pytest.raises(ValueError, match="all 2 prompts are longer than model.max_prompt_tokens=20"):
        GRPOTrainer(make_cfg(tmp_path, *common, "model.max_prompt_tokens=20"), reward_fn=ConstantReward())


def test_stop_strings_reach_rollouts(tmp_path):
    trainer = GRPOTrainer(make_cfg(tmp_path, "data.train=code_tasks:train", "data.train_limit=4", 'rollout.stop=["\\n```\\n"]'),
                          reward_fn=ConstantReward())
    seen = []
    generate = trainer.engine.generate

    def spy(prompts, n, params):
        seen.append(params.stop)
        return generate(prompts, n, params)

    trainer.engine.generate = spy
    [group] = trainer.rollout_and_score([0], 0)
    assert seen == [["\n```\n"]] and len(group.completions) == 2


def test_eval_logs_status_shares(tmp_path):
    trainer = GRPOTrainer(make_cfg(tmp_path, "data.train=code_tasks:train", "data.eval=code_tasks:heldout",
                                   "data.train_limit=4", "data.eval_limit=3", "eval.every=1"), reward_fn=ConstantReward())
    metrics = trainer.evaluate()
    shares = {k: v for k, v in metrics.items() if k.startswith("eval/status/")}
    # a random tiny model writes no code block: its bare text fails to compile or runs and fails
    assert shares and sum(shares.values()) == pytest.approx(1.0)
    assert metrics["eval/pass@1"] == pytest.approx(shares.get("eval/status/passed", 0.0))


class WaitingReward:
    """Code samples that waited 0.5 s and 1.5 s for a sandbox slot, alternately."""

    def __call__(self, examples, responses):
        return [Scored(1.0, "passed", True, slot_wait_s=0.5 + (i % 2)) for i in range(len(responses))]


def test_sandbox_slot_wait_is_a_metric_of_code_steps(tmp_path):
    trainer = GRPOTrainer(make_cfg(tmp_path, "data.train=code_tasks:train", "data.train_limit=4"),
                          reward_fn=WaitingReward())
    groups = trainer.rollout_and_score([0, 1], 0)
    assert trainer.reward_metrics(groups)["sandbox/slot_wait_s_mean"] == pytest.approx(1.0)
