"""Training-set cleaning: dedup, n-gram decontamination against eval sets, difficulty filtering.

Each step returns the kept examples and a list of report rows saying what was dropped and
why, so `rl-reason data prepare` can write an auditable report.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rl_reason.data_pipelines.schema import Example
from rl_reason.io import JsonlError, read_jsonl

_WORD = re.compile(r"\w+")


def normalize_text(text: str) -> str:
    """Case-, width- and spacing-insensitive form used by normalised dedup: NFKC, casefold,
    every run of whitespace or punctuation collapsed to one space (LaTeX spacing such as
    ``\\,`` or ``$ x $`` vs ``$x$`` does not make two problems different)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(text))


def dedup(examples: Sequence[Example], normalized: bool = True) -> tuple[list[Example], list[dict[str, Any]]]:
    """Drop later copies of a prompt: exact string matches first, then (if ``normalized``)
    matches of ``normalize_text``. The first occurrence is kept; each dropped row names it."""
    kept: list[Example] = []
    report: list[dict[str, Any]] = []
    exact: dict[str, str] = {}
    norm: dict[str, str] = {}
    for ex in examples:
        if ex.prompt in exact:
            report.append({"id": ex.id, "reason": "exact_duplicate", "duplicate_of": exact[ex.prompt]})
            continue
        key = normalize_text(ex.prompt)
        if normalized and key in norm:
            report.append({"id": ex.id, "reason": "normalized_duplicate", "duplicate_of": norm[key]})
            continue
        exact[ex.prompt] = ex.id
        norm.setdefault(key, ex.id)
        kept.append(ex)
    return kept, report


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Word n-grams of ``normalize_text(text)``; a text shorter than ``n`` words gives its
    whole word sequence as one gram, so short eval problems can still match."""
    words = normalize_text(text).split()
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def decontaminate(
    train: Sequence[Example], eval_sets: Mapping[str, Sequence[Example]], n: int = 13, progress: bool = False
) -> tuple[list[Example], list[dict[str, Any]]]:
    """Drop training examples that share a word ``n``-gram (13 as in GPT-3 and open-r1) with
    any problem of the eval sets. Each report row names the eval set, the eval problem id and
    the shared n-gram. Eval problems shorter than ``n`` words match only a training prompt
    whose whole normalised text is equal to theirs."""
    index: dict[tuple[str, ...], tuple[str, str]] = {}
    short: dict[tuple[str, ...], tuple[str, str]] = {}
    for set_name, examples in eval_sets.items():
        for ex in examples:
            grams = ngrams(ex.prompt, n)
            target = short if grams and len(next(iter(grams))) < n else index
            for g in grams:
                target.setdefault(g, (set_name, ex.id))
    kept: list[Example] = []
    report: list[dict[str, Any]] = []
    for ex in _maybe_progress(train, progress, "decontaminate"):
        grams = ngrams(ex.prompt, n)
        hit = next(((g, index[g]) for g in sorted(grams) if g in index), None)
        if hit is None:
            whole = tuple(normalize_text(ex.prompt).split())
            hit = (whole, short[whole]) if whole in short else None
        if hit is None:
            kept.append(ex)
            continue
        gram, (set_name, eval_id) = hit
        report.append({"id": ex.id, "reason": "contaminated", "eval_set": set_name, "eval_id": eval_id, "ngram": " ".join(gram)})
    return kept, report


def pass_rates_from_samples(path: str | Path) -> dict[str, float]:
    """Mean score per problem id from a graded ``samples.jsonl`` (the eval harness's records,
    e.g. from ``rl-reason eval`` on the training set). Rows need ``id`` and ``score`` or
    ``correct``; a bad row is an error naming file and line."""
    scores: dict[str, list[float]] = defaultdict(list)
    for line_no, row in read_jsonl(path):
        if isinstance(row, JsonlError):
            raise row
        value = row.get("score", row.get("correct"))
        if "id" not in row or not isinstance(value, (int, float)):
            raise ValueError(f"{path}:{line_no}: a graded sample needs 'id' and a numeric 'score' (or boolean 'correct')")
        scores[str(row["id"])].append(float(value))
    return {pid: sum(v) / len(v) for pid, v in scores.items()}


def difficulty_filter(
    examples: Sequence[Example], pass_rates: Mapping[str, float], low: float = 0.0, high: float = 1.0, keep_unmeasured: bool = False
) -> tuple[list[Example], list[dict[str, Any]]]:
    """Keep examples whose measured pass rate lies strictly between ``low`` and ``high``: with
    the defaults, prompts the policy neither always nor never solves, the only ones that give
    a GRPO group a non-zero advantage."""
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
    kept: list[Example] = []
    report: list[dict[str, Any]] = []
    for ex in examples:
        rate = pass_rates.get(ex.id)
        if rate is None:
            if keep_unmeasured:
                kept.append(ex)
            else:
                report.append({"id": ex.id, "reason": "unmeasured"})
        elif rate <= low:
            report.append({"id": ex.id, "reason": "too_hard", "pass_rate": rate})
        elif rate >= high:
            report.append({"id": ex.id, "reason": "too_easy", "pass_rate": rate})
        else:
            kept.append(ex)
    return kept, report


def _maybe_progress(items: Iterable, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="example")
