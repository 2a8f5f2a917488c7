"""The policy's own samples, graded by the verifiers: DPO/RM pairs (both a correct and an
incorrect answer to the same prompt), KTO's unpaired rows (every answer, labelled by
correctness) and rejection-sampling SFT data (correct answers only).

Sampling and grading are the eval harness's (``rl_reason.eval.evaluate``, resumable
``samples.jsonl``); pairing is the data pipeline's ``build_dpo_pairs`` / ``build_unpaired_rows``.
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
    from rl_reason.data_pipelines import build_dpo_pairs

    summary, prompts, records = sample_and_grade(model, tokenizer, mint.data, mint.limit, mint.n, mint.template,
                                                 mint.temperature, mint.max_new_tokens, out_dir, seed, progress)
    pairs = build_dpo_pairs(records, prompts, max_pairs_per_prompt=mint.max_pairs_per_prompt or None)
    write_rows(Path(out_dir) / "pairs.jsonl", pairs)
    return pairs


def mint_unpaired(model, tokenizer, mint, out_dir: str | Path, seed: int = 0, progress: bool = True) -> list[dict[str, Any]]:
    """KTO rows from ``mint`` (a ``MintPairsConfig``): every distinct sampled answer with
    ``label`` = verified correct, written to ``out_dir/unpaired.jsonl`` (TRL format plus ``id``)."""
    from rl_reason.data_pipelines import build_unpaired_rows

    _, prompts, records = sample_and_grade(model, tokenizer, mint.data, mint.limit, mint.n, mint.template,
                                           mint.temperature, mint.max_new_tokens, out_dir, seed, progress)
    rows = build_unpaired_rows(records, prompts)
    write_rows(Path(out_dir) / "unpaired.jsonl", rows)
    return rows


def mint_step_pairs(model, tokenizer, mint, out_dir: str | Path, seed: int = 0, progress: bool = True, k: int = 4,
                    fail_rate: float = 0.0) -> list[dict[str, Any]]:
    """Step-DPO pairs (``data_pipelines.steps``): the wrong answers among ``mint``'s graded samples,
    searched for their first wrong step with ``k`` sampled continuations per step prefix (same
    temperature and token limit as the samples), graded by the same grader; written to
    ``out_dir/pairs.jsonl`` (DPO format plus ``id``, ``step``, ``rates``) and returned."""
    import itertools

    from rl_reason.data_pipelines import build_unpaired_rows, load_dataset
    from rl_reason.data_pipelines.steps import build_step_pairs
    from rl_reason.eval.grader import Grader
    from rl_reason.rollout import SamplingParams, get_engine

    _, prompts, records = sample_and_grade(model, tokenizer, mint.data, mint.limit, mint.n, mint.template,
                                           mint.temperature, mint.max_new_tokens, out_dir, seed, progress)
    examples = {ex.id: ex for ex in load_dataset(mint.data, limit=mint.limit or None)}
    wrong: dict[str, list[str]] = {}
    for row in build_unpaired_rows(records, prompts):
        if not row["label"]:
            wrong.setdefault(row["id"], []).append(row["completion"])
    engine = get_engine("hf", model=model, tokenizer=tokenizer)
    call = itertools.count(1)

    def sample(text: str, n: int) -> list[str]:
        params = SamplingParams(temperature=mint.temperature, max_new_tokens=mint.max_new_tokens, seed=seed + next(call))
        return [c.text for c in engine.generate([text], n, params)[0]]

    from tqdm.auto import tqdm

    with Grader() as grader:
        def grade(pid: str, texts: list[str]) -> list[bool]:
            return [bool(r["correct"]) for r in grader.grade([{"id": pid, "text": t} for t in texts], examples)]

        problems = ((pid, prompts[pid], wrong[pid]) for pid in tqdm(sorted(wrong), desc="step pairs", disable=not progress))
        rows = build_step_pairs(problems, sample, grade, k, fail_rate, mint.max_pairs_per_prompt or None)
    write_rows(Path(out_dir) / "pairs.jsonl", rows)
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` as one JSON object per line, written atomically."""
    import json

    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def correct_samples(model, tokenizer, mint, out_dir: str | Path, seed: int = 0, progress: bool = True) -> list[dict[str, Any]]:
    """Rejection sampling: ``{"prompt", "completion"}`` rows of verified-correct answers (one per
    distinct text), written to ``out_dir/sft.jsonl`` and returned."""
    _, prompts, records = sample_and_grade(model, tokenizer, mint.data, mint.limit, mint.n, mint.template,
                                           mint.temperature, mint.max_new_tokens, out_dir, seed, progress)
    seen, rows = set(), []
    for rec in sorted(records, key=lambda r: (str(r["id"]), int(r["sample"]))):
        key = (str(rec["id"]), rec["text"])
        if rec.get("correct") and key not in seen:
            seen.add(key)
            rows.append({"id": rec["id"], "prompt": prompts[str(rec["id"])], "completion": rec["text"]})
    write_rows(Path(out_dir) / "sft.jsonl", rows)
    return rows


def task_accuracy(model, tokenizer, task_eval, seed: int, progress: bool) -> dict[str, float]:
    """Greedy pass@1 and no-answer share on held-out prompts under both graders (full chain, strict)."""
    from rl_reason.data_pipelines import load_dataset
    from rl_reason.eval import evaluate, flat_metrics
    from rl_reason.rollout import SamplingParams, get_engine

    examples = load_dataset(task_eval.data, limit=task_eval.limit or None)
    engine = get_engine("hf", model=model, tokenizer=tokenizer)
    params = SamplingParams(temperature=0.0, max_new_tokens=task_eval.max_new_tokens, seed=seed)
    summary = evaluate(engine, examples, n=1, ks=[1], sampling_params=params, template=task_eval.template,
                       tokenizer=tokenizer, suite="task_eval", progress=progress)
    flat = flat_metrics(summary)
    return {f"task/{name}": flat[name] for name in ("pass@1", "strict/pass@1", "no_answer", "strict/no_answer")
            if name in flat}


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
    from rl_reason.trainers.common.seeding import seed_everything

    seed_everything(cfg.seed)
    run_dir = Path(cfg.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model, tokenizer = base_policy(cfg.model, cfg.seed)
    if cfg.task_eval.data and not (run_dir / "task_eval.jsonl").exists():
        log_task(run_dir, "before", task_accuracy(model, tokenizer, cfg.task_eval, cfg.seed, cfg.log.progress))
    return run_dir, model, tokenizer
