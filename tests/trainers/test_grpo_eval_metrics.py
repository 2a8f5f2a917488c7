"""GRPO's held-out eval logs both graders: eval/pass@1 (full chain) next to eval/strict/pass@1."""

import contextlib
from types import SimpleNamespace

from rl_reason.data_pipelines import Example
from rl_reason.eval import summarize
from rl_reason.trainers.grpo import GRPOTrainer
from rl_reason.trainers.grpo_config import GRPOConfig


def test_evaluate_reports_full_chain_and_strict(monkeypatch, tmp_path):
    examples = {"p1": Example("p1", "q1", "4"), "p2": Example("p2", "q2", "9")}
    records = [
        {"id": "p1", "sample": 0, "text": "", "extracted": "4", "extracted_by": "boxed", "correct": True, "score": 1.0,
         "status": "correct", "correct_strict": True, "status_strict": "correct", "tokens": 8},
        {"id": "p2", "sample": 0, "text": "", "extracted": "9", "extracted_by": "last_number", "correct": True, "score": 1.0,
         "status": "correct", "correct_strict": False, "status_strict": "no_answer", "tokens": 12},
    ]
    summary = summarize(records, examples, ks=[1])
    monkeypatch.setattr("rl_reason.eval.evaluate", lambda *a, **k: summary)
    cfg = GRPOConfig()
    fake = SimpleNamespace(cfg=cfg, train_engine=SimpleNamespace(full_weights=contextlib.nullcontext), engine=None,
                           eval_examples=list(examples.values()), run_dir=tmp_path, step=0, tokenizer=None)
    out = GRPOTrainer.evaluate(fake)
    assert out["eval/pass@1"] == 1.0 and out["eval/strict/pass@1"] == 0.5
    assert out["eval/no_answer"] == 0.0 and out["eval/strict/no_answer"] == 0.5
    assert out["eval/extracted_by/boxed"] == 0.5 and out["eval/mean_tokens"] == 10.0
