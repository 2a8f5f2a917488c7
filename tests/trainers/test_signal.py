"""The learning-signal check: hand-computed stats, the one-off warning of a run that cannot learn,
and ``train --validate --probe``."""

from pathlib import Path

import pytest

from rl_reason.cli.main import main
from rl_reason.io import read_jsonl_records
from rl_reason.trainers.signal import (
    GroupOutcome,
    SignalMonitor,
    diagnose,
    expected_signal_rate,
    signal_stats,
)


def outcome(rewards, statuses, finish=None):
    return GroupOutcome(rewards, statuses, finish or ["stop"] * len(rewards))


def test_stats_by_hand():
    groups = [
        outcome([1, 0, 0, 0], ["correct", "wrong", "no_answer", "no_answer"]),  # signal
        outcome([0, 0, 0, 0], ["no_answer"] * 4, ["length", "length", "length", "stop"]),
        outcome([1, 1, 1, 1], ["correct"] * 4),  # too easy: same non-zero reward
    ]
    s = signal_stats(groups)
    assert (s.groups, s.groups_with_signal, s.samples, s.rewarded, s.correct) == (3, 1, 12, 5, 5)
    assert (s.truncated, s.no_answer, s.wrong, s.all_same_nonzero) == (3, 6, 1, 1)
    m = s.metrics()
    assert m["signal/groups_with_variance"] == pytest.approx(1 / 3)
    assert m["signal/samples_with_reward"] == pytest.approx(5 / 12)
    assert m["signal/no_answer"] == pytest.approx(0.5)


def test_expected_rate():
    assert expected_signal_rate(0.5, 2) == pytest.approx(0.5)
    assert expected_signal_rate(0.0, 8) == 0.0
    assert expected_signal_rate(0.1, 8) == pytest.approx(1 - 0.1**8 - 0.9**8)


def test_diagnosis_names_the_measured_causes():
    truncated = signal_stats([outcome([0] * 4, ["no_answer"] * 4, ["length"] * 4)] * 3)
    text = "\n".join(diagnose(truncated, max_new_tokens=64, n=4))
    assert "0 of 3 groups" in text and "100% of the answers were cut" in text and "max_new_tokens (e.g. 128)" in text
    assert "no answer the verifier could extract" in text and "every answer given was wrong" not in text
    wrong = "\n".join(diagnose(signal_stats([outcome([0] * 4, ["wrong"] * 4)]), 64, 4))
    assert "every answer given was wrong" in wrong and "were cut" not in wrong
    easy = "\n".join(diagnose(signal_stats([outcome([1] * 4, ["correct"] * 4)]), 64, 4))
    assert "too easy" in easy


def test_monitor_pools_its_window_and_warns_once():
    quiet = signal_stats([outcome([0] * 4, ["wrong"] * 4)] * 4)
    busy = signal_stats([outcome([1, 0, 0, 0], ["correct", "wrong", "wrong", "wrong"])] * 4)
    # one group of 6 with signal in a step is 17%, but 1 in 18 (6%) over three steps
    sparse = signal_stats(
        [outcome([1, 0, 0, 0], ["correct", "wrong", "wrong", "wrong"])] + [outcome([0] * 4, ["wrong"] * 4)] * 5
    )
    mon = SignalMonitor(patience=2)
    assert mon.update(quiet, 64, 4) is None  # the window is not full yet
    assert mon.update(busy, 64, 4) is None  # 4 of 8 groups in the window have signal
    assert mon.update(quiet, 64, 4) is None  # still 4 of 8
    msg = mon.update(quiet, 64, 4)
    assert msg.startswith("WARNING: almost no learning signal in the last 2 steps") and "0 of 8 groups" in msg
    assert mon.update(quiet, 64, 4) is None  # once
    assert SignalMonitor(patience=0).update(quiet, 64, 4) is None
    mon = SignalMonitor(patience=3)
    quiet6 = signal_stats([outcome([0] * 4, ["wrong"] * 4)] * 6)
    assert [mon.update(s, 64, 4) is None for s in (sparse, quiet6, quiet6)] == [True, True, False]
    assert SignalMonitor(patience=1).update(sparse, 64, 4) is None  # 1 of 6 = 17% > 10%


QUICKSTART = str(Path(__file__).resolve().parents[2] / "recipes" / "quickstart.yaml")
TINY = [
    "model.name=tiny:llama",
    "model.max_prompt_tokens=256",
    "data.train=arithmetic:train",
    "data.template=base_boxed",
    "data.train_limit=16",
    "rollout.n=4",
    "rollout.max_new_tokens=6",
    "train.prompts_per_step=2",
    "train.micro_batch_size=8",
    "log.tensorboard=false",
    "log.samples_every=0",
    "checkpoint.every=0",
    "reward.verifier_workers=1",
    # committed answers only: the full extraction chain reads a random model's stray digits as
    # answers, now and then right, which would give a task it cannot solve some signal
    "reward.answer_format=strict",
    "warm_start.steps=0",  # the signal check itself, on a task the model cannot solve
]


def test_run_that_cannot_learn_warns_in_its_first_steps(tmp_path, capsys):
    # A random tiny model, graded strictly (TINY), never answers: no group has signal.
    args = [
        "train",
        "--config",
        QUICKSTART,
        f"output_dir={tmp_path}",
        *TINY,
        "train.steps=3",
        "eval.every=0",
        "data.eval=",
        "signal.warn_after=2",
        "log.progress=false",
    ]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count("WARNING: almost no learning signal in the last 2 steps") == 1
    assert "likely cause:" in err and "were cut at rollout.max_new_tokens=6" in err
    rows = read_jsonl_records(tmp_path / "metrics.jsonl")
    assert [r["signal/groups_with_variance"] for r in rows if r["step"] > 0] == [0.0, 0.0, 0.0]
    assert all(r["signal/samples_with_reward"] == 0.0 for r in rows if r["step"] > 0)


def test_validate_probe_prints_the_diagnosis(tmp_path, capsys):
    args = ["train", "--config", QUICKSTART, "--validate", "--probe", "3", f"output_dir={tmp_path}/run", *TINY]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "probe: 3 prompts x 4 samples of arithmetic:train" in out
    assert "expected signal rate: 0% of groups (0 of 3)" in out and "likely cause:" in out
    assert not (tmp_path / "run").exists()  # the probe trains nothing and writes no run folder
    assert main(["train", "--config", QUICKSTART, "--probe", "3"]) == 2


def test_time_budget_stops_with_a_final_eval_and_checkpoint(tmp_path):
    # A budget of ~0 minutes: training stops after its first step, which then evaluates and saves.
    args = [
        "train",
        "--config",
        QUICKSTART,
        f"output_dir={tmp_path}",
        *TINY,
        "train.steps=5",
        "train.time_budget_min=1e-6",
        "eval.every=4",
        "data.eval=arithmetic:heldout",
        "data.eval_limit=2",
        "eval.max_new_tokens=4",
        "log.progress=false",
        "signal.warn_after=0",
    ]
    assert main(args) == 0
    rows = read_jsonl_records(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1]
    assert "eval/pass@1" in rows[1] and "eval/no_answer" in rows[1] and "eval/truncated" in rows[1]
    assert (tmp_path / "checkpoints" / "step_000001").is_dir()
