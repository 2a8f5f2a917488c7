"""The one grader: turns responses into graded records for `rl-reason eval`, `rl-reason grade`
and the trainers' eval hook, so a reported number means the same thing everywhere.

Math problems go through ``MathVerifier`` (math-verify in killable worker processes, so a
pathological answer becomes a counted ``timeout``, not a hang) under both answer formats: the
full extraction chain (``correct``, ``status``, ``extracted``, ``extracted_by``) and ``strict``,
committed answers only (``correct_strict``, ``status_strict``), so that a report can tell a model
that learned the answer from one that learned the format. Code problems go through
``verify_code`` in the sandbox (both fields are the same there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rl_reason.data_pipelines.schema import Example


class Grader:
    """Grades records that carry at least ``id`` and ``text``; keeps one math verifier pool
    (started on first use) and one sandbox across calls, so a long eval pays their start-up
    once. Use as a context manager, or call ``close()``."""

    def __init__(self, timeout: float = 5.0, workers: int = 2, sandbox: Any = None):
        self.timeout = timeout
        self.workers = workers
        self._sandbox = sandbox
        self._math: Any = None

    def grade(self, records: Iterable[Mapping[str, Any]], examples: Mapping[str, Example]) -> list[dict[str, Any]]:
        """Copies of ``records`` with ``extracted``, ``extracted_by``, ``status``, ``correct``,
        ``score``, ``status_strict`` and ``correct_strict`` set (any previous grading is
        replaced); ``examples`` maps problem id to its Example."""
        out = [dict(r) for r in records]
        for i, rec in enumerate(out):
            if rec.get("id") not in examples:
                raise KeyError(f"record {i}: id {rec.get('id')!r} is not a problem of this suite")
            if not isinstance(rec.get("text"), str):
                raise TypeError(f"record {i} (id {rec['id']!r}): 'text' must be a string")
        math_recs = [r for r in out if examples[r["id"]].task == "math"]
        code_recs = [r for r in out if examples[r["id"]].task == "code"]
        if math_recs:
            self._grade_math(math_recs, examples)
        if code_recs:
            self._grade_code(code_recs, examples)
        return out

    def _grade_math(self, records: list[dict[str, Any]], examples: Mapping[str, Example]) -> None:
        if self._math is None:
            from rl_reason.verifiers import MathVerifier

            self._math = MathVerifier(workers=self.workers, timeout=self.timeout).__enter__()
        texts, golds = [r["text"] for r in records], [examples[r["id"]].answer for r in records]
        results = self._math.verify_batch(texts, golds, answer_format="full")
        strict = self._math.verify_batch(texts, golds, answer_format="strict")
        for rec, res, res_strict in zip(records, results, strict):
            rec.update(
                extracted=res.extracted,
                extracted_by=res.extracted_by,
                status=res.status,
                correct=bool(res.correct),
                score=float(res.score),
                status_strict=res_strict.status,
                correct_strict=bool(res_strict.correct),
            )

    def _grade_code(self, records: list[dict[str, Any]], examples: Mapping[str, Example]) -> None:
        from rl_reason.verifiers import verify_code

        if self._sandbox is None:
            from rl_reason.sandbox import get_sandbox

            self._sandbox = get_sandbox()
        for rec in records:
            res = verify_code(rec["text"], examples[rec["id"]].tests, sandbox=self._sandbox)
            passed = res.total > 0 and res.passed == res.total
            rec.update(
                extracted=None,
                extracted_by=None,
                status=res.status,
                correct=passed,
                status_strict=res.status,
                correct_strict=passed,
                score=float(res.score),
                tests_passed=res.passed,
                tests_total=res.total,
            )

    def close(self) -> None:
        if self._math is not None:
            self._math.__exit__(None, None, None)
            self._math = None

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def grade_records(
    records: Iterable[Mapping[str, Any]],
    examples: Mapping[str, Example],
    *,
    timeout: float = 5.0,
    workers: int = 2,
    sandbox: Any = None,
) -> list[dict[str, Any]]:
    """Grade ``records`` once (see ``Grader.grade``); code problems use ``sandbox`` (default:
    the one ``get_sandbox()`` picks)."""
    with Grader(timeout=timeout, workers=workers, sandbox=sandbox) as grader:
        return grader.grade(records, examples)
