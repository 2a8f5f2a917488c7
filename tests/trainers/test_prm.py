"""The process reward model: step layout, training on step ends, scoring, Monte-Carlo labels."""

import json
import math

import pytest
import torch

from rl_reason.algorithms import IGNORE_INDEX
from rl_reason.config import load_config
from rl_reason.models import tiny_model
from rl_reason.trainers.common.encoding import encode_steps
from rl_reason.trainers.post_config import PRMConfig


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_encode_steps_labels_each_separator_and_drops_steps_that_do_not_fit():
    _, tok = tiny_model(seed=0)
    sep = _ids(tok, "\n")
    enc = encode_steps(tok, ["q"], [["a b", "c"]], "\n", 16, 64, labels=[[True, False]])
    resp = _ids(tok, "a b") + sep + _ids(tok, "c") + sep
    row = enc.input_ids[0].tolist()
    assert row[-len(resp):] == resp and row[: -len(resp)][-len(_ids(tok, "q\n")):] == _ids(tok, "q\n")
    labelled = (enc.labels[0] != IGNORE_INDEX).nonzero().flatten().tolist()
    T = len(row)
    assert labelled == [T - len(_ids(tok, "c")) - len(sep) - 1, T - 1]  # the two separators' last tokens
    assert enc.labels[0, labelled].tolist() == [1, 0] and enc.step_end[0].nonzero().flatten().tolist() == labelled
    # A budget that fits only the first step keeps it whole and drops the second.
    short = encode_steps(tok, ["q"], [["a b", "c"]], "\n", 16, len(_ids(tok, "a b") + sep), labels=[[True, False]])
    assert int(short.step_end.sum()) == 1 and short.labels[short.step_end].tolist() == [1]
    scoring = encode_steps(tok, ["q"], [["a b", "c"]], "\n", 16, 64)
    assert (scoring.labels == IGNORE_INDEX).all() and int(scoring.step_end.sum()) == 2


def _step_rows(path, n=40):
    # Learnable labels: steps that say "good" are good, "bad" ones are not.
    rows = []
    for i in range(n):
        kinds = ["good", "bad" if i % 2 else "good", "good" if i % 3 else "bad"]
        rows.append({"prompt": f"question {i}?", "completions": [f"{k} {i % 7}" for k in kinds],
                     "labels": [k == "good" for k in kinds]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_prm_trainer_learns_step_labels_saves_and_scores(tmp_path):
    from rl_reason.models.heads import load_step_model, step_model_from_lm
    from rl_reason.trainers.prm import PRMTrainer, ProcessScorer

    data = _step_rows(tmp_path / "steps.jsonl")
    cfg = load_config(PRMConfig, None, [f"output_dir={tmp_path / 'run'}", f"data.train={data}", "data.eval_fraction=0.25",
                                        "model.max_prompt_tokens=16", "model.max_seq_len=64", "train.steps=30",
                                        "train.batch_size=8", "train.micro_batch_size=4", "train.lr=3e-3", "eval_every=30",
                                        "log.tensorboard=false", "log.progress=false", "checkpoint.every=0"])
    lm, tok = tiny_model(seed=0)
    t = PRMTrainer(cfg, step_model_from_lm(lm), tok)
    before = t.evaluate()
    t.train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["train/loss"]) for r in rows if "train/loss" in r)
    assert rows[-1]["eval/step_accuracy"] == 1.0 and rows[-1]["eval/balanced_accuracy"] == 1.0
    assert rows[-1]["eval/auroc"] == 1.0
    assert before["eval/balanced_accuracy"] == 0.5  # the zero head calls every step one class
    assert before["eval/auroc"] == 0.5  # ... with equal scores: every good/bad pair ties
    final = t.save_final()
    loaded, _ = load_step_model(final)
    assert loaded.config.prm_step_separator == "\n"
    scorer = ProcessScorer(final, aggregation="min")
    scores = scorer(["question 3?", "question 3?", "question 3?"], ["good 3\ngood 3", "good 3\nbad 3\ngood 3", ""])
    assert scores[0] > 0.5 > scores[1] and scores[2] == 0.0  # the weakest step decides; no steps -> 0
    last = ProcessScorer(final, aggregation="last")(["question 3?"], ["bad 3\ngood 3"])
    assert last[0] > 0.5


def test_prm_label_cli_writes_stepwise_rows_whose_labels_match_their_values(tmp_path, capsys):
    from rl_reason.cli.main import main
    from rl_reason.data_pipelines.step_labels import load_step_rows

    lm, tok = tiny_model(seed=0)
    lm.save_pretrained(tmp_path / "policy")
    tok.save_pretrained(tmp_path / "policy")
    out = tmp_path / "labels"
    assert main(["prm-label", "--model", str(tmp_path / "policy"), "--data", "arithmetic:train", "--limit", "2",
                 "--n", "2", "--k", "2", "--max-new-tokens", "6", "--separator", " ", "--max-steps", "3",
                 "--out", str(out), "--quiet"]) == 0
    raw = [json.loads(x) for x in (out / "steps.jsonl").read_text().splitlines()]
    samples = {(s["id"], s["sample"]): s for s in map(json.loads, (out / "samples.jsonl").read_text().splitlines())}
    assert raw and all(1 <= len(r["completions"]) <= 3 for r in raw)
    for r in raw:
        assert r["labels"] == [v > 0 for v in r["values"]] and all(v in (0.0, 0.5, 1.0) for v in r["values"])
        assert r["values"][-1] == float(samples[(r["id"], r["sample"])]["correct"])  # the last step: the solution's grade
    assert load_step_rows(str(out / "steps.jsonl"))[0]["completions"] == raw[0]["completions"]
    assert f"{len(raw)} solutions" in capsys.readouterr().out


def _saved_prm(path):
    from rl_reason.models.heads import step_model_from_lm

    lm, tok = tiny_model(seed=1)
    prm = step_model_from_lm(lm)
    torch.nn.init.normal_(prm.score.weight, std=0.5)  # scores that differ between responses
    prm.config.prm_step_separator = " "
    prm.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_grpo_mixes_the_prm_score_into_the_verifier_reward(tmp_path):
    from rl_reason.io import read_jsonl
    from rl_reason.trainers.grpo import GRPOTrainer
    from rl_reason.trainers.grpo_config import GRPOConfig
    from rl_reason.trainers.rewards import Scored

    prm = _saved_prm(tmp_path / "prm")
    cfg = load_config(GRPOConfig, None, [
        f"output_dir={tmp_path / 'run'}", "model.name=tiny:llama", "data.train=arithmetic:train", "data.template=base_boxed",
        "data.train_limit=8", "rollout.n=4", "rollout.max_new_tokens=8", "train.prompts_per_step=2",
        "train.micro_batch_size=8", "train.steps=1", "log.tensorboard=false", "log.progress=false",
        "log.samples_every=0", "checkpoint.every=0", f"reward.prm.path={prm}", "reward.prm.weight=0.25",
        "reward.prm.aggregation=last"])
    trainer = GRPOTrainer(cfg, reward_fn=lambda examples, responses: [Scored(1.0, "correct", True) for _ in responses])
    trainer.train()
    row = [r for _, r in read_jsonl(tmp_path / "run" / "metrics.jsonl")][-1]
    assert 0.0 < row["reward/prm"] < 1.0
    # every verifier reward is 1: the step's mean reward is 0.75 + 0.25 * the mean PRM score
    assert row["reward/mean"] == pytest.approx(0.75 + 0.25 * row["reward/prm"], abs=1e-5)


def test_eval_rerank_picks_the_prm_top_sample_per_problem(tmp_path, capsys):
    from rl_reason.cli.main import main

    lm, tok = tiny_model(seed=0)
    lm.save_pretrained(tmp_path / "policy")
    tok.save_pretrained(tmp_path / "policy")
    prm = _saved_prm(tmp_path / "prm")
    out = tmp_path / "eval"
    assert main(["eval", "--model", str(tmp_path / "policy"), "--suite", "arithmetic:heldout", "--limit", "3", "--n", "3",
                 "--max-new-tokens", "6", "--template", "base_boxed", "--device", "cpu", "--out", str(out),
                 "--rerank", str(prm), "--rerank-aggregation", "last"]) == 0
    summary = json.loads((out / "summary.json").read_text())["suites"]["arithmetic:heldout"]
    rerank = summary["rerank"]
    scores = [json.loads(x) for x in (out / "rerank_scores.jsonl").read_text().splitlines()]
    samples = {(s["id"], s["sample"]): s for s in map(json.loads, (out / "samples.jsonl").read_text().splitlines())}
    assert len(scores) == 9 and len(rerank["picked"]) == 3
    for pid, pick in rerank["picked"].items():
        mine = [s for s in scores if s["id"] == pid]
        assert pick == max(mine, key=lambda s: (s["score"], -s["sample"]))["sample"]
    expected = sum(samples[(pid, pick)]["correct"] for pid, pick in rerank["picked"].items()) / 3
    assert rerank["rerank@3"]["mean"] == pytest.approx(expected)
    assert "best-of-3 by the PRM" in capsys.readouterr().out
    # a policy folder is not a PRM: refused before sampling
    assert main(["eval", "--model", str(tmp_path / "policy"), "--suite", "arithmetic:heldout", "--limit", "1", "--n", "1",
                 "--out", str(tmp_path / "e2"), "--rerank", str(tmp_path / "policy")]) == 2
    assert "not a trained process reward model" in capsys.readouterr().err


def test_prm_loss_matches_the_token_classification_loss_trl_trains_with():
    # TRL's PRMTrainer optimises the HF token-classification model's own loss (cross-entropy with
    # ignore_index -100 over the step-end labels); without padding the head reads the same logits.
    from rl_reason.algorithms import prm_loss
    from rl_reason.models.heads import head_outputs, step_model_from_lm

    lm, tok = tiny_model(seed=2)
    model = step_model_from_lm(lm)
    torch.nn.init.normal_(model.score.weight, std=0.3)
    enc = encode_steps(tok, ["q 1", "q 2"], [["a b", "c d e"], ["f", "g h"]], "\n", 16, 64, labels=[[1, 0], [0, 1]])
    full = enc.attention_mask.bool().all(-1)
    ids, mask, labels = enc.input_ids[full], enc.attention_mask[full], enc.labels[full]
    assert len(ids) >= 1
    hf = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    ours, _ = prm_loss(head_outputs(model, ids, mask), labels)
    torch.testing.assert_close(ours, hf, rtol=1e-5, atol=1e-6)
