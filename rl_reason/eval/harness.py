"""Sampled, resumable evaluation of a rollout engine on one suite.

Prompts are generated in fixed chunks of ``batch_size`` problems, and chunk ``j`` is sampled
with seed ``sampling_params.seed + j``. A chunk's output therefore depends only on its own prompts,
so a run killed part-way and restarted regenerates exactly the samples it lost: the records
already in ``samples.jsonl`` are kept, the missing ones are appended, and the summary equals
that of an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from rl_reason.data_pipelines.schema import Example
from rl_reason.data_pipelines.templates import render_prompt
from rl_reason.eval.grader import Grader
from rl_reason.eval.summary import group_by_problem, summarize
from rl_reason.io import JsonlAppender, JsonlError, read_jsonl
from rl_reason.verifiers.math_verifier import VERIFY_TIMEOUT_S

SAMPLES_FILE = "samples.jsonl"


def read_samples(path: str | Path, suite: str | None = None) -> list[dict[str, Any]]:
    """Records of ``samples.jsonl`` (of one suite if given). A torn last line (a crash during
    the write) is skipped; any other malformed line is an error naming file and line."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line_no, row in read_jsonl(path):
        if isinstance(row, JsonlError):
            raise row
        for key in ("id", "sample", "text"):
            if key not in row:
                raise ValueError(f"{path}:{line_no}: record has no {key!r}")
        if suite is None or row.get("suite") == suite:
            rows.append(row)
    return rows


def evaluate(
    engine: Any,
    examples: Sequence[Example],
    n: int,
    ks: Iterable[int],
    sampling_params: Any,
    template: str,
    out_dir: str | Path | None = None,
    tokenizer: Any = None,
    suite: str = "eval",
    batch_size: int = 8,
    grade_timeout: float = VERIFY_TIMEOUT_S,
    grade_workers: int = 2,
    sandbox: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Sample ``n`` responses per example with ``engine`` (a ``RolloutEngine``), grade them and
    return the suite's summary (see ``rl_reason.eval.summary.summarize``).

    ``sampling_params`` is a ``rl_reason.rollout.SamplingParams``. With ``out_dir`` the per-sample
    records go to ``out_dir/samples.jsonl`` (tagged with ``suite``) and a rerun resumes from
    them; without it everything stays in memory (the trainers' eval hook).
    """
    ks = sorted(set(int(k) for k in ks))
    if ks and ks[-1] > n:
        raise ValueError(f"k={ks[-1]} is larger than n={n} samples per problem")
    by_id = {ex.id: ex for ex in examples}
    if len(by_id) != len(examples):
        raise ValueError(f"suite {suite!r} has duplicate problem ids")
    samples_path = Path(out_dir) / SAMPLES_FILE if out_dir is not None else None
    records = read_samples(samples_path, suite) if samples_path else []
    have = {pid: {int(r["sample"]) for r in group} for pid, group in group_by_problem(records).items()}
    for pid, idxs in have.items():
        if pid not in by_id or max(idxs) >= n:
            raise ValueError(
                f"{samples_path} holds sample {max(idxs)} of {pid!r}, which this run (n={n}, "
                f"{len(examples)} problems) would not produce: use a fresh --out for new settings"
            )

    chunks = [list(examples[i : i + batch_size]) for i in range(0, len(examples), batch_size)]
    done = sum(len(have.get(ex.id, ())) == n for ex in examples)
    bar = _progress(len(examples), done, f"eval {suite}", progress)
    appender = JsonlAppender(samples_path) if samples_path else None
    grader = Grader(timeout=grade_timeout, workers=grade_workers, sandbox=sandbox)
    try:
        for chunk_idx, chunk in enumerate(chunks):
            if all(len(have.get(ex.id, ())) == n for ex in chunk):
                continue
            todo = [len(have.get(ex.id, ())) < n for ex in chunk]
            new = _sample_chunk(engine, chunk, n, sampling_params, chunk_idx, template, tokenizer, suite,
                                on_group_done=lambda p, todo=todo: bar.update(int(todo[p])))
            new = [r for r in new if r["sample"] not in have.get(r["id"], ())]
            graded = grader.grade(new, by_id)
            for rec in graded:
                if appender:
                    appender.write(rec)
                records.append(rec)
    finally:
        bar.close()
        grader.close()
        if appender:
            appender.close()
    summary = summarize(records, by_id, ks)
    return {"suite": suite, "n": n, "template": template, **summary}


def _sample_chunk(
    engine: Any, chunk: list[Example], n: int, sampling: Any, chunk_idx: int, template: str, tokenizer: Any, suite: str,
    on_group_done: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    params = sampling
    if getattr(sampling, "seed", None) is not None:
        params = dataclasses.replace(sampling, seed=sampling.seed + chunk_idx)
    prompts = [render_prompt(ex, template, tokenizer) for ex in chunk]
    groups = engine.generate(prompts, n, params, on_group_done=on_group_done)
    if len(groups) != len(chunk):
        raise RuntimeError(f"engine returned {len(groups)} groups for {len(chunk)} prompts")
    out = []
    for ex, group in zip(chunk, groups):
        for i, comp in enumerate(group):
            out.append(
                {
                    "suite": suite,
                    "id": ex.id,
                    "sample": i,
                    "text": comp.text,
                    "tokens": len(comp.token_ids),
                    "finish_reason": comp.finish_reason,
                }
            )
    return out


def _progress(total: int, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="problem", disable=not enabled)


def write_report(out_dir: str | Path, summaries: dict[str, dict[str, Any]], config: dict[str, Any]) -> dict[str, Any]:
    """Write ``summary.json`` (atomic) and ``plot.png`` (when matplotlib is installed) for a run."""
    from rl_reason.io import atomic_write_json

    out_dir = Path(out_dir)
    report = {"config": config, "suites": summaries}
    atomic_write_json(out_dir / "summary.json", report)
    try:
        from rl_reason.eval.plot import plot_summaries
    except ImportError:  # matplotlib is in the [train] extra; a base install gets JSON only
        return report
    plot_summaries(summaries, out_dir / "plot.png")
    return report
