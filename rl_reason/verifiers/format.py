"""Format checks, used as an extra reward next to correctness.

- ``boxed``: the response commits to a non-empty ``\\boxed{}`` answer (after any ``</think>``).
- ``think_answer``: ``<think> reasoning </think> answer``, one think block with content, then
  a boxed answer. With ``prompt_opens_think=True`` (chat templates that end the prompt with
  ``<think>``) the response must contain only the closing tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rl_reason.verifiers.extract import answer_region, find_boxes

FormatPattern = Literal["boxed", "think_answer"]
FORMAT_PATTERNS: tuple[str, ...] = ("boxed", "think_answer")


@dataclass(frozen=True)
class FormatResult:
    ok: bool
    score: float
    reason: str


def _has_boxed_answer(text: str) -> bool:
    return any(content.strip() for _, _, content in find_boxes(text))


def check_format(response: str, pattern: FormatPattern = "boxed", prompt_opens_think: bool = False) -> FormatResult:
    """Score 1.0 when ``response`` follows ``pattern``, else 0.0, with the reason."""
    if pattern not in FORMAT_PATTERNS:
        raise ValueError(f"unknown format pattern {pattern!r}; choose from {FORMAT_PATTERNS}")
    if not isinstance(response, str):
        return FormatResult(False, 0.0, f"response is {type(response).__name__}, not text")
    if pattern == "think_answer":
        opens = len(re.findall(r"<think>", response, re.I))
        closes = len(re.findall(r"</think>", response, re.I))
        want_opens = 0 if prompt_opens_think else 1
        if opens != want_opens or closes != 1:
            return FormatResult(False, 0.0, f"expected {want_opens} <think> and 1 </think>, found {opens} and {closes}")
        head, _, tail = re.split(r"(</think>)", response, maxsplit=1, flags=re.I)
        if not prompt_opens_think and not head.lstrip().lower().startswith("<think>"):
            return FormatResult(False, 0.0, "response does not start with <think>")
        if not re.sub(r"<think>", "", head, flags=re.I).strip():
            return FormatResult(False, 0.0, "empty <think> block")
        if not tail.strip():
            return FormatResult(False, 0.0, "no answer after </think>")
    if not _has_boxed_answer(answer_region(response)):
        return FormatResult(False, 0.0, "no non-empty \\boxed{} answer" + (" after </think>" if pattern == "think_answer" else ""))
    return FormatResult(True, 1.0, "ok")


def format_reward(completions: list, pattern: FormatPattern = "boxed", prompt_opens_think: bool = False, **kwargs) -> list[float]:
    """TRL reward-function shape: one format score per completion (plain or conversational)."""
    from rl_reason.verifiers.rewards import completion_text

    return [check_format(completion_text(c), pattern, prompt_opens_think).score for c in completions]
