"""The math verifier in the shapes RL frameworks call.

- TRL: ``math_accuracy_reward(completions, answer, **kwargs) -> list[float | None]``; plain or
  conversational completions; ``None`` (TRL skips it) when the gold is unusable or the check
  timed out or failed, so those never look like a wrong answer.
- verl: ``compute_score(data_source, solution_str, ground_truth, extra_info=None)`` -> dict
  with ``score`` plus ``acc``, ``pred``, ``extracted_by`` and ``status`` (verl logs the extra keys).

Both take ``answer_format`` (``"full"`` by default, or ``"strict"``: committed answers only; bind
it with ``functools.partial`` for TRL, or verl's ``reward_kwargs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rl_reason.verifiers.extract import AnswerFormat
from rl_reason.verifiers.math_verifier import MathResult, MathVerifier, _default_verifier

_NO_REWARD = ("invalid_gold", "timeout", "error")


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a conversation whose last message's
    content is a string or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else completion[-1]
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return content if isinstance(content, str) else ""
    return ""


def reward_from_result(result: MathResult) -> float | None:
    return None if result.status in _NO_REWARD else result.score


def math_accuracy_reward(
    completions: Sequence[Any],
    answer: Sequence[str] | None = None,
    verifier: MathVerifier | None = None,
    answer_format: AnswerFormat | None = None,
    **kwargs,
) -> list[float | None]:
    """TRL reward function: 1.0 for a correct final answer, 0.0 for wrong or missing, None
    when the sample cannot be judged. The gold column may also be named ``solution``.
    ``verifier`` (e.g. bound with ``functools.partial``) sets workers, timeout, tolerance;
    ``answer_format`` overrides the verifier's (``"full"`` unless it was built otherwise).

    >>> math_accuracy_reward([[{"role": "assistant", "content": "$\\\\boxed{4}$"}]], answer=["4"])
    [1.0]
    """
    golds = answer if answer is not None else kwargs.get("solution")
    if golds is None:
        raise ValueError("math_accuracy_reward needs the gold answers as `answer=` (or `solution=`)")
    results = (verifier or _default_verifier()).verify_batch(
        [completion_text(c) for c in completions], list(golds), answer_format=answer_format
    )
    return [reward_from_result(r) for r in results]


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict | None = None,
    answer_format: AnswerFormat = "full",
) -> dict:
    """verl custom reward function. A timeout scores 0.0 (verl needs a number) but is visible
    as ``status``."""
    r = _default_verifier().verify(solution_str, ground_truth, answer_format=answer_format)
    return {"score": r.score, "acc": r.correct, "pred": r.extracted or "", "extracted_by": r.extracted_by or "", "status": r.status}
