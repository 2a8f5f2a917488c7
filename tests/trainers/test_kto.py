"""KTO as a training mode: unpaired rows, the cached reference, the batch reference point, the run."""

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from rl_reason.algorithms import kto_loss
from rl_reason.cli.train import load_train_config
from rl_reason.config import load_config
from rl_reason.models import tiny_model
from rl_reason.trainers.pair_data import UNPAIRED_KEYS, UNPAIRED_TYPES, load_rows, mismatched_indices
from rl_reason.trainers.post_config import KTOConfig

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _rows(path: Path, n: int = 12) -> Path:
    # Unpaired and unbalanced on purpose: "yes" answers are desirable, "no" answers undesirable.
    rows = [
        {"prompt": f"question {i // 2}?", "completion": f"{'yes' if i % 3 else 'no'} {i % 5}", "label": bool(i % 3)}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cfg(tmp_path, *extra):
    return load_config(
        KTOConfig,
        None,
        [
            f"output_dir={tmp_path / 'run'}",
            "model.max_prompt_tokens=16",
            "model.max_seq_len=32",
            "log.tensorboard=false",
            "log.progress=false",
            "seed=0",
            f"data.train={tmp_path / 'rows.jsonl'}",
            "eval_every=0",
            *extra,
        ],
    )


def test_mismatched_indices_take_the_nearest_earlier_row_of_another_prompt():
    prompts = ["a", "a", "b", "c", "c"]
    # Walk order 0,1,2,3,4: row 0 wraps to row 4 (c); row 1 skips row 0 (same prompt a) and wraps to 4;
    # row 2 takes 1; row 3 takes 2; row 4 skips 3 (c) and takes 2.
    assert mismatched_indices(prompts, [0, 1, 2, 3, 4]) == [4, 4, 1, 2, 2]
    # Order 2,0,3,1,4 (positions): row 2 wraps to 4; row 0 takes 2; row 3 takes 0; row 1 takes 3; row 4 takes 1.
    assert mismatched_indices(prompts, [2, 0, 3, 1, 4]) == [2, 3, 4, 0, 1]
    with pytest.raises(ValueError, match="two different prompts"):
        mismatched_indices(["a", "a"], [0, 1])
    with pytest.raises(ValueError, match="permutation"):
        mismatched_indices(prompts, [0, 1, 2])


def test_loader_errors_name_file_row_and_key(tmp_path):
    p = tmp_path / "rows.jsonl"
    p.write_text(
        '{"prompt": "q", "completion": "a", "label": true}\n{"prompt": "q", "completion": "b", "label": "yes"}\n'
    )
    with pytest.raises(ValueError, match=rf"{p}:2: key 'label' must be a bool, got str 'yes'"):
        load_rows(str(p), UNPAIRED_KEYS, types=UNPAIRED_TYPES)
    p.write_text('{"prompt": "q", "label": false}\n')
    with pytest.raises(ValueError, match=rf"{p}:1: row has no 'completion'"):
        load_rows(str(p), UNPAIRED_KEYS, types=UNPAIRED_TYPES)
    p.write_text('{"prompt": "q", "completion": "a", "label": 1}\n')  # 1 is not a label: JSON true/false only
    with pytest.raises(ValueError, match=r":1: key 'label' must be a bool, got int 1"):
        load_rows(str(p), UNPAIRED_KEYS, types=UNPAIRED_TYPES)


def test_recipe_parses():
    name, cfg = load_train_config(str(RECIPES / "kto_verified.yaml"), [])
    assert name == "kto" and isinstance(cfg, KTOConfig) and cfg.pairs.data and cfg.loss.beta > 0


def test_trainer_loss_is_the_pure_kto_loss_with_cached_reference_and_batch_reference_point(tmp_path):
    from rl_reason.trainers.dpo import response_logps
    from rl_reason.trainers.kto import KTOTrainer

    rows = load_rows(str(_rows(tmp_path / "rows.jsonl")), UNPAIRED_KEYS, types=UNPAIRED_TYPES)
    cfg = _cfg(
        tmp_path,
        "train.steps=1",
        "train.batch_size=8",
        "train.micro_batch_size=4",
        "train.lr=1e-2",
        "loss.beta=0.5",
        "loss.desirable_weight=0.7",
        "loss.undesirable_weight=1.3",
    )
    lm, tok = tiny_model(seed=0)
    ref = copy.deepcopy(lm)
    t = KTOTrainer(cfg, lm, tok, rows, [])
    assert all(
        r["kl_completion"] in {x["completion"] for x in rows if x["prompt"] != r["prompt"]} for r in t.train_rows
    )
    t.train()  # one update: the policy now differs from the reference
    lm.eval()
    batch = t.train_rows[:8]
    t.step_rows = batch
    loss, stats = t.micro_loss(batch[:4])

    def sums(model, key, rows):
        with torch.no_grad():
            return response_logps(model, tok, [r["prompt"] for r in rows], [r[key] for r in rows], 16, 16, "cpu")[0]

    expected, metrics = kto_loss(
        policy_logps=sums(lm, "completion", batch[:4]),
        ref_logps=sums(ref, "completion", batch[:4]),
        desirable=torch.tensor([r["label"] for r in batch[:4]]),
        kl_policy_logps=sums(lm, "kl_completion", batch),
        kl_ref_logps=sums(ref, "kl_completion", batch),
        beta=0.5,
        desirable_weight=0.7,
        undesirable_weight=1.3,
    )
    assert loss.item() == pytest.approx(expected.mean().item(), rel=1e-5)
    assert stats["train/kl"] == pytest.approx(metrics["kl"].item(), rel=1e-5, abs=1e-7)
    assert not math.isclose(expected.mean().item(), 0.5 * (0.7 + 1.3) / 2, rel_tol=1e-4)  # the policy moved


def test_gradient_accumulation_does_not_change_the_step(tmp_path):
    from rl_reason.trainers.kto import KTOTrainer

    rows = load_rows(str(_rows(tmp_path / "rows.jsonl")), UNPAIRED_KEYS, types=UNPAIRED_TYPES)
    results = []
    for mb in (8, 2):
        cfg = _cfg(
            tmp_path / f"mb{mb}", "train.steps=1", "train.batch_size=8", f"train.micro_batch_size={mb}", "train.lr=1e-2"
        )
        lm, tok = tiny_model(seed=0)
        t = KTOTrainer(cfg, lm, tok, rows, [])
        with torch.no_grad():  # move the policy off its cached reference, rows by different amounts
            noise = torch.Generator().manual_seed(1)
            for p in lm.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=noise))
        for r in t.train_rows:  # and lower the mismatched pairs' reference, so that z0 > 0 (not clamped)
            r["ref_kl_logps"] -= 3.0
        stats = t.update([t.train_rows[i] for i in range(8)])
        results.append(stats)
    one, acc = results
    # grad_norm: the accumulated gradient is the one-batch gradient (z0 is not per micro-batch).
    for key in (
        "train/loss",
        "train/grad_norm",
        "train/kl",
        "train/rewards/chosen",
        "train/rewards/rejected",
        "train/logps/chosen",
        "train/logps/rejected",
    ):
        assert acc[key] == pytest.approx(one[key], rel=1e-4, abs=1e-6), key
    assert one["train/kl"] > 0


def test_one_step_run_trains_writes_metrics_and_final_model(tmp_path):
    from rl_reason.trainers.kto import train

    _rows(tmp_path / "rows.jsonl", 16)
    lm, tok = tiny_model(seed=0)
    lm.save_pretrained(tmp_path / "policy")
    tok.save_pretrained(tmp_path / "policy")
    cfg = _cfg(
        tmp_path,
        f"model.name={tmp_path / 'policy'}",
        "train.steps=2",
        "train.batch_size=4",
        "train.micro_batch_size=2",
        "train.lr=1e-3",
        "eval_every=2",
        "data.eval_fraction=0.25",
    )
    run = train(cfg)
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if "train/loss" in m]
    assert len(steps) == 2 and all(math.isfinite(m["train/loss"]) and "train/kl" in m for m in steps)
    assert any("eval/loss" in m for m in metrics)
    assert (run / "final" / "config.json").is_file()


def test_train_help_covers_kto_and_step_level_pairs(capsys):
    from rl_reason.cli.main import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for text in ("trainer: kto", "loss.desirable_weight", "loss.undesirable_weight", "--step-level", "Step-DPO"):
        assert text in out, text


def test_a_side_absent_from_the_step_is_not_logged(tmp_path):
    from rl_reason.trainers.kto import KTOTrainer

    rows = load_rows(str(_rows(tmp_path / "rows.jsonl")), UNPAIRED_KEYS, types=UNPAIRED_TYPES)
    cfg = _cfg(tmp_path, "train.steps=1", "train.batch_size=4", "train.micro_batch_size=2")
    lm, tok = tiny_model(seed=0)
    t = KTOTrainer(cfg, lm, tok, rows, [])
    stats = t.update([r for r in t.train_rows if not r["label"]][:4])
    assert "train/rewards/chosen" not in stats and "train/logps/chosen" not in stats
    assert stats["train/rewards/rejected"] == 0.0 and stats["train/desirable_share"] == 0.0  # policy == reference
