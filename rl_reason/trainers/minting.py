"""The policy's own samples, graded by the verifiers: DPO/RM pairs (both a correct and an
incorrect answer to the same prompt) and rejection-sampling SFT data (correct answers only).

Sampling and grading are the eval harness's (``rl_reason.eval.evaluate``, resumable
``samples.jsonl``); pairing is the data pipeline's ``build_dpo_pairs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rl_reason.io import atomic_write_text


def sample_and_grade(model, tokenizer, data: str, limit: int, n: int, template: str, temperature: float,
                     max_new_tokens: int, out_dir: str | Path, seed: int = 0, progress: bool = True):
    """Sample ``n`` answers per prompt and grade them; returns (examples, prompts by id, records)."""
    from rl_reason.data_pipelines import load_dataset, render_prompt
    from rl_reason.eval import evaluate
    from rl_reason.eval.harness import SAMPLES_FILE, read_samples
    from rl_reason.rollout import SamplingParams, get_engine

    examples = load_dataset(data, limit=limit or None)
    engine = get_engine("hf", model=model, tokenizer=tokenizer)
    params = SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    summary = evaluate(engine, examples, n=n, ks=[1], sampling_params=params, template=template, out_dir=out_dir,
                       tokenizer=tokenizer, suite="pairs", progress=progress)
    prompts = {ex.id: render_prompt(ex, template, tokenizer=tokenizer) for ex in examples}
    return summary, prompts, read_samples(Path(out_dir) / SAMPLES_FILE, "pairs")


def mint_pairs(model, tokenizer, mint, out_dir: str | Path, seed: int = 0, progress: bool = True) -> list[dict[str, Any]]:
    """Verifier-filtered pairs from ``mint`` (a ``MintPairsConfig``), written to
    ``out_dir/pairs.jsonl`` (TRL format plus ``id``) and returned."""
    import json

    from rl_reason.data_pipelines import build_dpo_pairs

    summary, prompts, records = sample_and_grade(model, tokenizer, mint.data, mint.limit, mint.n, mint.template,
                                                 mint.temperature, mint.max_new_tokens, out_dir, seed, progress)
    pairs = build_dpo_pairs(records, prompts, max_pairs_per_prompt=mint.max_pairs_per_prompt or None)
    atomic_write_text(Path(out_dir) / "pairs.jsonl", "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
    return pairs


def correct_samples(model, tokenizer, mint, out_dir: str | Path, seed: int = 0, progress: bool = True) -> list[dict[str, Any]]:
    """Rejection sampling: ``{"prompt", "completion"}`` rows of verified-correct answers (one per
    distinct text), written to ``out_dir/sft.jsonl`` and returned."""
    import json

    _, prompts, records = sample_and_grade(model, tokenizer, mint.data, mint.limit, mint.n, mint.template,
                                           mint.temperature, mint.max_new_tokens, out_dir, seed, progress)
    seen, rows = set(), []
    for rec in sorted(records, key=lambda r: (str(r["id"]), int(r["sample"]))):
        key = (str(rec["id"]), rec["text"])
        if rec.get("correct") and key not in seen:
            seen.add(key)
            rows.append({"id": rec["id"], "prompt": prompts[str(rec["id"])], "completion": rec["text"]})
    atomic_write_text(Path(out_dir) / "sft.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return rows


def task_accuracy(model, tokenizer, task_eval, seed: int, progress: bool) -> dict[str, float]:
    """Greedy pass@1 on held-out prompts through the eval harness's grader."""
    from rl_reason.data_pipelines import load_dataset
    from rl_reason.eval import evaluate
    from rl_reason.rollout import SamplingParams, get_engine

    examples = load_dataset(task_eval.data, limit=task_eval.limit or None)
    engine = get_engine("hf", model=model, tokenizer=tokenizer)
    params = SamplingParams(temperature=0.0, max_new_tokens=task_eval.max_new_tokens, seed=seed)
    summary = evaluate(engine, examples, n=1, ks=[1], sampling_params=params, template=task_eval.template,
                       tokenizer=tokenizer, suite="task_eval", progress=progress)
    return {"task/pass@1": float(summary["metrics"]["pass@1"]["mean"])}


def log_task(run_dir: Path, key: str, value: dict[str, float]) -> None:
    import json

    from rl_reason.io import JsonlAppender

    with JsonlAppender(run_dir / "task_eval.jsonl", fsync=False) as out:
        out.write({"stage": key, **value})
    print(f"{key}: {json.dumps(value)}")


def start_policy_run(cfg):
    """Seed, create the run folder, load the policy, and log its held-out task accuracy before
    any training (once: a resumed run keeps its first measurement)."""
    from rl_reason.models import base_policy
    from rl_reason.trainers.offline import seed_everything

    seed_everything(cfg.seed)
    run_dir = Path(cfg.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model, tokenizer = base_policy(cfg.model, cfg.seed)
    if cfg.task_eval.data and not (run_dir / "task_eval.jsonl").exists():
        log_task(run_dir, "before", task_accuracy(model, tokenizer, cfg.task_eval, cfg.seed, cfg.log.progress))
    return run_dir, model, tokenizer
