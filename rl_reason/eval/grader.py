"""The one grader: turns responses into graded records for `rl-reason eval`, `rl-reason grade`
and the trainers' eval hook, so a reported number means the same thing everywhere.

Math problems go through ``MathVerifier`` (math-verify in killable worker processes, so a
pathological answer becomes a counted ``timeout``, not a hang); code problems go through
``verify_code`` in the sandbox.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from rl_reason.data_pipelines.schema import Example


def grade_records(
    records: Iterable[Mapping[str, Any]],
    examples: Mapping[str, Example],
    *,
    timeout: float = 5.0,
    workers: int = 2,
    sandbox: Any = None,
) -> list[dict[str, Any]]:
    """Grade records that carry at least ``id`` and ``text``; returns copies with ``extracted``,
    ``status``, ``correct`` and ``score`` set (any previous grading is replaced).

    ``examples`` maps problem id to its Example. Code examples use ``sandbox`` (default: the
    sandbox ``get_sandbox()`` picks).
    """
    out = [dict(r) for r in records]
    for i, rec in enumerate(out):
        if rec.get("id") not in examples:
            raise KeyError(f"record {i}: id {rec.get('id')!r} is not a problem of this suite")
        if not isinstance(rec.get("text"), str):
            raise TypeError(f"record {i} (id {rec['id']!r}): 'text' must be a string")
    math_idx = [i for i, r in enumerate(out) if examples[r["id"]].task == "math"]
    code_idx = [i for i, r in enumerate(out) if examples[r["id"]].task == "code"]
    if math_idx:
        _grade_math([out[i] for i in math_idx], examples, timeout, workers)
    if code_idx:
        _grade_code([out[i] for i in code_idx], examples, sandbox)
    return out


def _grade_math(records: list[dict[str, Any]], examples: Mapping[str, Example], timeout: float, workers: int) -> None:
    from rl_reason.verifiers import MathVerifier

    with MathVerifier(workers=workers, timeout=timeout) as verifier:
        results = verifier.verify_batch([r["text"] for r in records], [examples[r["id"]].answer for r in records])
    for rec, res in zip(records, results):
        rec.update(extracted=res.extracted, status=res.status, correct=bool(res.correct), score=float(res.score))


def _grade_code(records: list[dict[str, Any]], examples: Mapping[str, Example], sandbox: Any) -> None:
    from rl_reason.verifiers import verify_code

    if sandbox is None:
        from rl_reason.sandbox import get_sandbox

        sandbox = get_sandbox()
    for rec in records:
        res = verify_code(rec["text"], examples[rec["id"]].tests, sandbox=sandbox)
        rec.update(
            extracted=None,
            status=res.status,
            correct=res.total > 0 and res.passed == res.total,
            score=float(res.score),
            tests_passed=res.passed,
            tests_total=res.total,
        )
