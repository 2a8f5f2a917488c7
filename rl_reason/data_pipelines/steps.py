"""Step-DPO pairs: preference over the first wrong reasoning step of a wrong solution.

A solution is split into steps (``split_steps``). For a wrong solution, the success rate of a
step prefix is the share of ``k`` continuations sampled from problem + prefix that the verifier
accepts (a Monte-Carlo estimate, as Math-Shepherd labels steps). The first wrong step is the
first step after which that rate falls to ``fail_rate`` or below while the prefix before it was
still above (``first_wrong_step``). A pair is then

    prompt   = problem prompt + the shared prefix (the steps before the wrong one)
    chosen   = the first step of a continuation from that prefix which the verifier accepts
    rejected = the wrong step

trained with plain DPO (Step-DPO: Lai et al. 2024, https://arxiv.org/abs/2406.18629).
Sampling and grading are passed in as functions, so the search is model-free (and testable
with a scripted sampler).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


def split_steps(text: str) -> list[str]:
    """Reasoning steps of ``text``, each keeping its trailing whitespace, so that
    ``"".join(split_steps(text)) == text``.

    The rule: one step per line (a line break ends a step; blank lines stay with the step
    before them). A text on one line is split into sentences instead, after ``.``, ``!``, ``?``
    or ``;`` followed by whitespace (a decimal point such as ``3.5`` does not end a sentence).
    Leading whitespace stays with the first step; an empty or whitespace-only text has no steps.
    """
    if not text.strip():
        return []
    lines = text.splitlines(keepends=True)
    if sum(1 for line in lines if line.strip()) > 1:
        return _merge_blank(lines)
    parts, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        parts.append(text[start : m.end()])
        start = m.end()
    parts.append(text[start:])
    return _merge_blank(parts)


def _merge_blank(parts: list[str]) -> list[str]:
    """Whitespace-only parts join the step before them (or, at the start, the step after)."""
    steps: list[str] = []
    lead = ""
    for part in parts:
        if not part.strip():
            if steps:
                steps[-1] += part
            else:
                lead += part
        else:
            steps.append(lead + part)
            lead = ""
    return steps


def first_wrong_step(rate_of: Callable[[int], float], n_steps: int, fail_rate: float = 0.0) -> int | None:
    """Index (0-based) of the first wrong step of a wrong solution of ``n_steps`` steps, or None.

    ``rate_of(i)`` is the verified success rate of continuations from the first ``i`` steps
    (``i = 0``: from the bare problem). Step ``j`` is the first wrong one when the rate after
    it, ``rate_of(j + 1)``, is at most ``fail_rate`` while every earlier prefix's rate is above
    it; the full wrong solution counts as rate 0, so ``rate_of(n_steps)`` is never asked. None
    when even the bare problem's rate is at most ``fail_rate`` (no correct continuation to
    prefer). The prefixes are probed left to right and the scan stops at the first failure,
    so ``rate_of`` is called for prefixes ``0 .. j`` only.
    """
    if n_steps < 1:
        raise ValueError("a solution needs at least one step")
    if rate_of(0) <= fail_rate:
        return None
    for j in range(n_steps - 1):
        if rate_of(j + 1) <= fail_rate:
            return j
    return n_steps - 1


def build_step_pairs(
    problems: Iterable[tuple[str, str, Sequence[str]]],
    sample: Callable[[str, int], list[str]],
    grade: Callable[[str, list[str]], list[bool]],
    k: int,
    fail_rate: float = 0.0,
    max_pairs_per_problem: int | None = None,
) -> list[dict[str, Any]]:
    """Step-DPO pairs from wrong solutions.

    ``problems``: (id, prompt, wrong solutions in order) triples. ``sample(text, k)`` returns
    ``k`` continuations of ``text`` (problem prompt + prefix); ``grade(id, solutions)`` says
    which full solutions (prefix + continuation) the verifier accepts. Per problem, wrong
    solutions are searched in order until ``max_pairs_per_problem`` pairs (None = all). Rows:
    ``id``, ``prompt`` (problem prompt + prefix), ``chosen``, ``rejected``, ``step`` (index of
    the wrong step) and ``rates`` (success rate of each probed prefix, from the bare problem on).
    A solution gives no pair when no prefix is above ``fail_rate``, or when every accepted
    continuation starts with the wrong step itself.
    """
    if k < 1:
        raise ValueError(f"k (continuations per prefix) must be >= 1, got {k}")
    rows = []
    for pid, prompt, wrong in problems:
        made = 0
        for solution in wrong:
            if max_pairs_per_problem is not None and made >= max_pairs_per_problem:
                break
            row = _step_pair(pid, prompt, split_steps(solution), sample, grade, k, fail_rate)
            if row is not None:
                rows.append(row)
                made += 1
    return rows


def _step_pair(pid, prompt, steps, sample, grade, k, fail_rate) -> dict[str, Any] | None:
    """The pair of one wrong solution (``build_step_pairs``), or None."""
    if not steps:
        return None
    probed: dict[int, tuple[list[str], list[bool]]] = {}

    def rate_of(i: int) -> float:
        prefix = "".join(steps[:i])
        conts = sample(prompt + prefix, k)
        probed[i] = (conts, grade(pid, [prefix + c for c in conts]))
        return sum(probed[i][1]) / k

    j = first_wrong_step(rate_of, len(steps), fail_rate)
    if j is None:
        return None
    conts, ok = probed[j]
    firsts = [split_steps(c) for c, good in zip(conts, ok) if good]
    chosen = next((s[0] for s in firsts if s and s[0].strip() != steps[j].strip()), None)
    if chosen is None:
        return None
    rates = [sum(probed[i][1]) / k for i in sorted(probed)]
    return {
        "id": pid,
        "prompt": prompt + "".join(steps[:j]),
        "chosen": chosen,
        "rejected": steps[j],
        "step": j,
        "rates": rates,
    }
