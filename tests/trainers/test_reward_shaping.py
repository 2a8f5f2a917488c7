"""The GRPO reward path: mixing (weighted sum / GDPO) and length / repetition shaping from config."""

from types import SimpleNamespace

import pytest
import torch

from rl_reason.config import ConfigError, load_config
from rl_reason.io import read_jsonl_records
from rl_reason.trainers.grpo_config import GRPOConfig
from rl_reason.trainers.reward_shaping import component_metrics, shaped_rewards
from rl_reason.trainers.rewards import Scored


def cfg(*overrides):
    return load_config(GRPOConfig, None, ["rollout.n=2", "reward.format_weight=0.5", *overrides])


def scored(math, fmt, valid=True):
    return Scored(1.0 * math + 0.5 * fmt, "correct" if math else "wrong", bool(math), valid, {"math": math, "format": fmt})


def completions(*lengths):
    return [SimpleNamespace(token_ids=list(range(n))) for n in lengths]


def test_weighted_sum_keeps_the_verifier_reward():
    s = [scored(1.0, 1.0), scored(0.0, 0.0)]
    torch.testing.assert_close(shaped_rewards(cfg(), s, completions(3, 3), 2), torch.tensor([1.5, 0.0]))


def test_gdpo_normalises_each_weighted_reward_in_its_group_and_skips_unscorable_rows():
    # group 0: (math, format) (1,1) vs (0,0) -> 1*(+1) + 0.5*(+1) = 1.5 and -1.5
    # group 1: (1,0) vs unscorable -> a group of one: every z is 0
    s = [scored(1.0, 1.0), scored(0.0, 0.0), scored(1.0, 0.0), scored(0.0, 1.0, valid=False)]
    out = shaped_rewards(cfg("shaping.mix=gdpo"), s, completions(3, 3, 3, 3), 2)
    torch.testing.assert_close(out[:3], torch.tensor([1.5, -1.5, 0.0]), rtol=1e-5, atol=1e-5)


def test_gdpo_without_components_is_a_clear_error():
    with pytest.raises(ValueError, match="components"):
        shaped_rewards(cfg("shaping.mix=gdpo"), [Scored(1.0, "correct", True)] * 2, completions(1, 1), 2)


def test_length_and_repetition_penalties_are_added_and_logged():
    s = [scored(1.0, 0.0), scored(1.0, 0.0)]
    comps = [SimpleNamespace(token_ids=[1, 2, 3, 4]), SimpleNamespace(token_ids=[5, 5, 5, 5, 5, 5, 5, 5])]
    out = shaped_rewards(cfg("shaping.length_penalty=0.2", "shaping.repetition_penalty=1.0",
                             "shaping.repetition_ngram=1"), s, comps, 2)
    # row 1: longest correct -> -0.2; unigram repetition 1 - 1/8 = 0.875
    torch.testing.assert_close(out, torch.tensor([1.0, 1.0 - 0.2 - 0.875]))
    m = component_metrics(s)
    assert m["reward/length_penalty"] == pytest.approx(-0.1) and m["reward/repetition_penalty"] == pytest.approx(-0.4375)
    assert m["reward/math"] == pytest.approx(1.0)


def test_length_penalty_of_one_or_more_is_rejected():
    with pytest.raises(ConfigError, match="length_penalty"):
        cfg("shaping.length_penalty=1.0")


def test_trainer_logs_reward_components(tmp_path):
    from rl_reason.trainers.grpo import GRPOTrainer
    from tests.trainers.test_grpo import make_cfg

    class Mixed:
        def __call__(self, examples, responses):
            return [scored(float(len(r) % 2), float(len(r) % 3 == 0)) for r in responses]

    trainer = GRPOTrainer(make_cfg(tmp_path, "shaping.mix=gdpo", "reward.format_weight=0.5", "shaping.length_penalty=0.1",
                                   "shaping.repetition_penalty=0.1"), reward_fn=Mixed())
    trainer.train()
    row = read_jsonl_records(tmp_path / "metrics.jsonl")[-1]
    assert {"reward/math", "reward/format", "reward/length_penalty", "reward/repetition_penalty"} <= row.keys()
    assert row["reward/length_penalty"] <= 0 and row["reward/repetition_penalty"] <= 0
