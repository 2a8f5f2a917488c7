"""Step-DPO end to end on a tiny model: `rl-reason pairs --step-level`, and DPO on step pairs."""

import json
import math

import pytest

from rl_reason.cli.main import main
from rl_reason.config import load_config
from rl_reason.data_pipelines.steps import build_step_pairs
from rl_reason.models import tiny_model
from rl_reason.trainers.post_config import DPOConfig


def _saved_policy(tmp_path):
    lm, tok = tiny_model(seed=0)
    lm.save_pretrained(tmp_path / "policy")
    tok.save_pretrained(tmp_path / "policy")
    return tmp_path / "policy"


def test_pairs_cli_step_level_and_unpaired_write_what_the_samples_support(tmp_path, capsys):
    policy = _saved_policy(tmp_path)
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
