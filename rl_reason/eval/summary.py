"""Turn graded per-sample records into the summary of one suite (``summary.json``).

A graded record (one line of ``samples.jsonl``)::

    {"suite": "math500", "id": "test/algebra/1.json", "sample": 0, "text": "...",
     "extracted": "42" | null, "extracted_by": "boxed" | "phrase" | ... | null,
     "status": "correct" | "wrong" | "no_answer" | "timeout" | ..., "correct": true, "score": 1.0,
     "status_strict": "no_answer" | ..., "correct_strict": false,
     "tokens": 123 | null, "finish_reason": "stop" | "length" | null}

``correct`` is the full extraction chain's grade, ``correct_strict`` the grade when only
committed answers count (``answer_format="strict"``); the summary reports both side by side
(``metrics`` and ``strict.metrics``) plus the share of each extraction rule (``extracted_by``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from rl_reason.data_pipelines.schema import Example
from rl_reason.eval.metrics import avg_at_n, maj_at_k, mean_with_ci, pass_at_k

# Example.metadata keys that get a per-group breakdown when a suite has them.
BREAKDOWN_KEYS = ("level", "subject", "year")


def group_by_problem(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Records per problem id, each list sorted by sample index; a repeated (id, sample) keeps
    its first record (a resumed run may have regenerated a sample that was already written)."""
    groups: dict[str, dict[int, Mapping[str, Any]]] = defaultdict(dict)
    for rec in records:
        groups[rec["id"]].setdefault(int(rec["sample"]), rec)
    return {pid: [s[i] for i in sorted(s)] for pid, s in groups.items()}


def summarize(
    records: Iterable[Mapping[str, Any]],
    examples: Mapping[str, Example],
    ks: Iterable[int],
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics of one suite from its graded records.

    ``examples`` maps problem id to its Example (for metadata breakdowns and the task kind).
    Every pass@k/maj@k needs ``k`` <= the number of samples of every problem; problems of the
    suite without any record are an error (a partial run must not look like a full one).
    """
    groups = group_by_problem(records)
    missing = [pid for pid in examples if pid not in groups]
    if missing:
        raise ValueError(f"{len(missing)} problems have no graded samples, e.g. {missing[:3]}")
    unknown = [pid for pid in groups if pid not in examples]
    if unknown:
        raise ValueError(f"{len(unknown)} sample ids are not in the suite, e.g. {unknown[:3]}")
    ks = sorted(set(int(k) for k in ks))
    min_n = min(len(g) for g in groups.values())
    if ks and ks[-1] > min_n:
        short = next(pid for pid, g in groups.items() if len(g) == min_n)
        raise ValueError(f"k={ks[-1]} exceeds the {min_n} samples of problem {short!r}")

    pids = sorted(groups)
    is_math = all(examples[pid].task == "math" for pid in pids)
    all_recs = [r for pid in pids for r in groups[pid]]
    has_strict = all("correct_strict" in r for r in all_recs)
    per_problem: dict[str, dict[str, float]] = {}
    per_problem_strict: dict[str, dict[str, float]] = {}
    for pid in pids:
        group = groups[pid]
        per_problem[pid] = _problem_metrics(group, [bool(r["correct"]) for r in group], ks, is_math)
        if has_strict:
            per_problem_strict[pid] = _problem_metrics(group, [bool(r["correct_strict"]) for r in group], ks, is_math)

    metric_names = list(next(iter(per_problem.values())))
    tokens = [r["tokens"] for r in all_recs if r.get("tokens") is not None]
    summary: dict[str, Any] = {
        "num_problems": len(pids),
        "num_samples": len(all_recs),
        "samples_per_problem": sorted({len(g) for g in groups.values()}),
        "ks": ks,
        "metrics": {m: mean_with_ci([per_problem[p][m] for p in pids], seed=seed) for m in metric_names},
        "status_counts": dict(sorted(Counter(r.get("status", "unknown") for r in all_recs).items())),
        "finish_reasons": dict(sorted(Counter(str(r.get("finish_reason")) for r in all_recs).items())),
        "mean_tokens": float(np.mean(tokens)) if tokens else None,
        "breakdown": _breakdown(pids, per_problem, examples, metric_names),
        "strict": None,
        "extracted_by": _rule_shares(all_recs) if is_math else {},
    }
    if has_strict:
        summary["strict"] = {
            "metrics": {m: mean_with_ci([per_problem_strict[p][m] for p in pids], seed=seed) for m in metric_names},
            "status_counts": dict(sorted(Counter(r.get("status_strict", "unknown") for r in all_recs).items())),
        }
    return summary


def _problem_metrics(group: list[Mapping[str, Any]], correct: list[bool], ks: list[int], is_math: bool) -> dict[str, float]:
    """avg@n, pass@k and (math) maj@k of one problem's samples graded ``correct``; a sample's
    score is its verifier score where this grading agrees with the record's own."""
    scores = [float(r["score"]) if c == bool(r["correct"]) else float(c) for r, c in zip(group, correct)]
    row = {"avg@n": avg_at_n(scores)}
    for k in ks:
        row[f"pass@{k}"] = pass_at_k(len(group), sum(correct), k)
        if is_math:
            row[f"maj@{k}"] = maj_at_k([r.get("extracted") for r in group], correct, k)
    return row


def _rule_shares(records: list[Mapping[str, Any]]) -> dict[str, float]:
    """Share of the samples whose answer each extraction rule found (``none``: no answer)."""
    counts = Counter(r.get("extracted_by") or "none" for r in records)
    return {rule: n / len(records) for rule, n in sorted(counts.items())}


def flat_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """One suite's headline numbers as flat names, both graders side by side: ``pass@1``,
    ``strict/pass@1``, ..., ``no_answer`` and ``strict/no_answer`` (shares of samples), and
    ``extracted_by/<rule>`` (share of samples whose answer that rule found), and
    ``status/<status>`` (share of samples with each verifier status: passed, compile_error, ...)."""
    out = {name: float(v["mean"]) for name, v in summary["metrics"].items()}
    n = max(int(summary["num_samples"]), 1)
    out["no_answer"] = summary["status_counts"].get("no_answer", 0) / n
    out.update({f"status/{status}": count / n for status, count in summary["status_counts"].items()})
    if summary.get("strict"):
        out.update({f"strict/{name}": float(v["mean"]) for name, v in summary["strict"]["metrics"].items()})
        out["strict/no_answer"] = summary["strict"]["status_counts"].get("no_answer", 0) / n
    out.update({f"extracted_by/{rule}": float(share) for rule, share in summary.get("extracted_by", {}).items()})
    return out


def _breakdown(
    pids: list[str], per_problem: dict[str, dict[str, float]], examples: Mapping[str, Example], metric_names: list[str]
) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key in BREAKDOWN_KEYS:
        by_value: dict[str, list[str]] = defaultdict(list)
        for pid in pids:
            value = examples[pid].metadata.get(key)
            if value is not None:
                by_value[str(value)].append(pid)
        if not by_value:
            continue
        out[key] = {
            value: {"count": len(members), **{m: float(np.mean([per_problem[p][m] for p in members])) for m in metric_names}}
            for value, members in sorted(by_value.items())
        }
    return out
