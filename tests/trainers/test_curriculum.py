"""The online difficulty curriculum: pass-rate table, the steered samplers, and the GRPO loop
(table checkpointed and restored, works with dynamic sampling's carry-over buffer)."""

from collections import Counter

import pytest

from rl_reason.io import read_jsonl_records
from rl_reason.trainers.common.sampler import CurriculumSampler, PassRateTable
from rl_reason.trainers.grpo import GRPOTrainer
from tests.trainers.test_grpo import TextHashReward, make_cfg

KEYS = [f"p{i}" for i in range(6)]


def table_with(**rates):
    table = PassRateTable()
    for key, (correct, total) in rates.items():
        table.observe(key, correct, total)
    return table


def test_skip_sampler_passes_over_solved_and_hopeless_prompts():
    table = table_with(p0=(4, 4), p1=(0, 4), p2=(2, 4))
    sampler = CurriculumSampler(6, 0, KEYS, table, "skip")
    drawn = sampler.take(12)
    assert set(drawn) == {2, 3, 4, 5} and sampler.skipped > 0 and sampler.fallbacks == 0
    # once everything is solved, draws fall back to the plain epoch order instead of stalling
    for key in KEYS:
        table.observe(key, 4, 4)
    assert len(sampler.take(3)) == 3 and sampler.fallbacks == 3


def test_middle_sampler_prefers_prompts_solved_half_the_time():
    table = table_with(p0=(4, 4), p1=(0, 4), p2=(2, 4), p3=(2, 4), p4=(1, 4), p5=(3, 4))
    sampler = CurriculumSampler(6, 0, KEYS, table, "middle", floor=0.05)
    counts = Counter(i for _ in range(300) for i in sampler.take(2))
    assert len(set(sampler.take(6))) == 6  # distinct within a draw
    assert min(counts[2], counts[3]) > max(counts[0], counts[1]) * 4
    assert counts[0] > 0  # the floor keeps re-measuring solved prompts


def test_curriculum_sampler_resumes_exactly():
    table = table_with(p0=(4, 4), p2=(2, 4))
    for mode in ("skip", "middle"):
        straight = CurriculumSampler(6, 1, KEYS, table, mode)
        first = straight.take(4)
        resumed = CurriculumSampler(6, 1, KEYS, table, mode)
        resumed.load_state_dict(straight.state_dict())
        assert first and straight.take(5) == resumed.take(5)


def test_pass_rate_table_state_round_trip():
    table = table_with(p0=(1, 4))
    table.observe("p0", 3, 4)
    copy = PassRateTable()
    copy.load_state_dict(table.state_dict())
    assert copy.get("p0") == 0.75 and copy.get("p1") is None


CURRICULUM = ["curriculum.mode=skip", "dapo.dynamic_sampling=true", "train.prompts_per_step=3", "train.micro_batch_size=4"]


def test_grpo_skips_hopeless_prompts_with_dynamic_sampling(tmp_path):
    # TextHashReward: even answers always score 0 (wrong) -> pass rate 0 -> hopeless after one group
    trainer = GRPOTrainer(make_cfg(tmp_path, "train.steps=4", "data.train_limit=12", *CURRICULUM), reward_fn=TextHashReward())
    take, drawn_measured = trainer.sampler.take, []

    def spy(k):
        rates = dict(trainer.pass_rates.rates)  # the table when the draw is made
        out = take(k)
        drawn_measured.extend(rates.get(trainer.train_examples[trainer.prompt_shard[i]].id) for i in out)
        return out

    trainer.sampler.take = spy
    trainer.train()
    assert 0.0 in trainer.pass_rates.rates.values()
    assert drawn_measured and all(r is None or 0.0 < r < 1.0 for r in drawn_measured), drawn_measured
    rows = read_jsonl_records(tmp_path / "metrics.jsonl")
    assert rows[-1]["curriculum/skipped"] > 0 and rows[-1]["curriculum/fallbacks"] == 0
    assert rows[-1]["curriculum/hopeless_frac"] > 0


@pytest.mark.slow
def test_pass_rate_table_is_checkpointed_and_restored(tmp_path):
    # 32 prompts over 6 steps: groups are carried over and, from step 5, measured prompts skipped
    straight = GRPOTrainer(make_cfg(tmp_path / "straight", "train.steps=6", *CURRICULUM), reward_fn=TextHashReward())
    straight.train()
    cut = make_cfg(tmp_path / "cut", "train.steps=3", "checkpoint.every=1", *CURRICULUM)
    GRPOTrainer(cut, reward_fn=TextHashReward()).train()
    resumed = GRPOTrainer(make_cfg(tmp_path / "cut", "train.steps=6", *CURRICULUM), reward_fn=TextHashReward())
    resumed.train()
    assert resumed.pass_rates.rates == pytest.approx(straight.pass_rates.rates)
    a = read_jsonl_records(tmp_path / "straight" / "metrics.jsonl")
    b = read_jsonl_records(tmp_path / "cut" / "metrics.jsonl")
    assert any(r["dapo/carried_in"] > 0 for r in a), "the run should exercise the carried-group buffer"
    assert a[-1]["curriculum/skipped"] > 0 and [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(a, b):
        for k in ("curriculum/prompts_seen", "curriculum/skipped", "dapo/carried_in", "reward/mean"):
            assert rb[k] == pytest.approx(ra[k], rel=1e-6), (ra["step"], k)
