"""Step-DPO end to end on a tiny model: `rl-reason pairs --step-level`, and DPO on step pairs."""

import json
import math

import pytest

from rl_reason.cli.main import main
from rl_reason.config import load_config
from rl_reason.data_pipelines.steps import build_step_pairs
from rl_reason.models import tiny_model
from rl_reason.trainers.post_config import DPOConfig


def test_pairs_cli_step_level_and_unpaired_write_what_the_samples_support(tmp_path, capsys, saved_policy):
    policy = saved_policy
    common = [
        "--model",
        str(policy),
        "--data",
        "arithmetic:train",
        "--limit",
        "2",
        "--n",
        "3",
        "--max-new-tokens",
        "4",
        "--quiet",
    ]
    assert main(["pairs", *common, "--out", str(tmp_path / "u"), "--unpaired"]) == 0
    samples = [json.loads(x) for x in (tmp_path / "u" / "samples.jsonl").read_text().splitlines()]
    rows = [json.loads(x) for x in (tmp_path / "u" / "unpaired.jsonl").read_text().splitlines()]
    # Every distinct sampled text of a prompt is one row, labelled by its grade.
    assert len(rows) == len({(s["id"], s["text"]) for s in samples})
    assert all(
        r["label"] == next(s["correct"] for s in samples if (s["id"], s["text"]) == (r["id"], r["completion"]))
        for r in rows
    )
    assert f"{len(rows)} rows" in capsys.readouterr().out

    assert main(["pairs", *common, "--out", str(tmp_path / "s"), "--step-level", "--k", "2"]) == 0
    pairs = [json.loads(x) for x in (tmp_path / "s" / "pairs.jsonl").read_text().splitlines()]
    # A random tiny model never reaches a verified answer, so no prefix has a correct continuation.
    assert pairs == [] and "0 step-level pairs" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["pairs", *common, "--out", str(tmp_path / "x"), "--step-level", "--unpaired"])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_dpo_trains_on_step_pairs_with_the_prefix_in_the_prompt(tmp_path):
    from rl_reason.trainers.dpo import DPOTrainer

    def sample(text, k):  # the bare problem: solved; after "a = 12": one right, one wrong step; after "b = 15": lost
        if text.endswith(":"):
            return ["a = 12\nb = 14\nanswer 14"] * k
        return ["b = 14\nanswer 14", "b = 15\nanswer 15"] if text.endswith("12\n") else ["answer 15"] * k

    problems = [(f"p{i}", f"Q{i}:", ["a = 12\nb = 15\nanswer 15"]) for i in range(4)]
    rows = build_step_pairs(problems, sample, lambda pid, sols: [s.endswith("14") for s in sols], k=2)
    assert len(rows) == 4 and rows[0]["prompt"] == "Q0:a = 12\n"
    assert (rows[0]["chosen"], rows[0]["rejected"]) == ("b = 14\n", "b = 15\n")
    overrides = "model.max_prompt_tokens=16 model.max_seq_len=32 log.tensorboard=false log.progress=false eval_every=0"
    train = "data.train=unused.jsonl train.steps=3 train.batch_size=4 train.micro_batch_size=4 train.lr=5e-3"
    cfg = load_config(DPOConfig, None, [f"output_dir={tmp_path / 'run'}", *overrides.split(), *train.split()])
    lm, tok = tiny_model(seed=0)
    t = DPOTrainer(cfg, lm, tok, rows, [])
    t.train()
    metrics = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(m["train/loss"]) for m in metrics)
    assert metrics[-1]["train/rewards/margin"] > metrics[0]["train/rewards/margin"]


def test_step_dpo_recipe_is_the_dpo_trainer_on_step_pairs():
    from pathlib import Path

    from rl_reason.cli.train import load_train_config

    name, cfg = load_train_config(str(Path(__file__).resolve().parents[2] / "recipes" / "step_dpo.yaml"), [])
    assert name == "dpo" and cfg.data.train.endswith("pairs.jsonl") and not cfg.pairs.data


class _ScriptedEngine:
    """Solves "What is a op b?" in three lines. The first call (the samples) answers wrongly,
    going wrong at line 2; later calls (continuations) take the right or the wrong second line
    half the time each, and nothing recovers after the wrong one (deterministic)."""

    def __init__(self):
        self.calls = 0

    def generate(self, prompts, n, params, on_group_done=None):
        import re

        from rl_reason.rollout import Completion

        groups = []
        self.calls += 1
        for prompt in prompts:
            a, op, b = re.search(r"What is (\d+) ([-+]) (\d+)\?", prompt).groups()
            gold = int(a) + int(b) if op == "+" else int(a) - int(b)
            first, right, wrong = f"We compute {a} {op} {b}.\n", f"It is {gold}.\n", f"It is {gold + 1}.\n"
            rest = [right + f"So \\boxed{{{gold}}}", wrong + f"So \\boxed{{{gold + 1}}}"] * n
            if prompt.endswith(wrong):
                texts = [f"So \\boxed{{{gold + 1}}}"] * n
            elif prompt.endswith(first):
                texts = rest
            elif self.calls == 1:
                texts = [first + wrong + f"So \\boxed{{{gold + 1}}}"] * n
            else:
                texts = [first + t for t in rest]
            groups.append([Completion(t, [1], [0.0], "stop", [1]) for t in texts[:n]])
            if on_group_done is not None:
                on_group_done(len(groups) - 1)
        return groups


def test_mint_step_pairs_finds_the_first_wrong_step_with_the_real_verifier(tmp_path, monkeypatch):
    import rl_reason.rollout
    from rl_reason.trainers.minting import mint_step_pairs
    from rl_reason.trainers.post_config import MintPairsConfig

    engine = _ScriptedEngine()
    monkeypatch.setattr(rl_reason.rollout, "get_engine", lambda *a, **kw: engine)
    lm, tok = tiny_model(seed=0)
    mint = MintPairsConfig(data="arithmetic:train", limit=2, n=2, max_new_tokens=16)
    rows = mint_step_pairs(lm, tok, mint, tmp_path / "out", seed=0, progress=False, k=2)
    # arith-train-0 is "What is 9 - 8?" (1): every sampled answer says 2, wrong at its second line.
    assert [r["id"] for r in rows] == ["arith-train-0", "arith-train-1"]
    r = rows[0]
    assert r["prompt"].endswith("We compute 9 - 8.\n") and (r["chosen"], r["rejected"]) == ("It is 1.\n", "It is 2.\n")
    # Rates: bare problem 1/2, after line 1 1/2, after the wrong line 0 -> the wrong step is line 2 (index 1).
    assert r["step"] == 1 and r["rates"] == [0.5, 0.5, 0.0]
    written = [json.loads(x) for x in (tmp_path / "out" / "pairs.jsonl").read_text().splitlines()]
    assert written == rows
