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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rl_reason.data_pipelines.schema import Example
from rl_reason.io.closing import Closing
from rl_reason.verifiers.math_verifier import VERIFY_TIMEOUT_S


@dataclass
class Grade:
    """One response's grade under one answer format (what the trainers' reward is built from)."""

    score: float
    status: str
    correct: bool
    extracted: str | None = None
    extracted_by: str | None = None
    tests_passed: int | None = None
    tests_total: int | None = None
    slot_wait_s: float = 0.0  # code: seconds the tests waited for a sandbox slot


class Grader(Closing):
    """Grades responses to math and code examples; keeps one math verifier pool (started on
    first use) and one sandbox across calls, so a long eval or training run pays their start-up
    once. ``sandbox``: a sandbox object (left open), or a backend name whose sandbox the grader
    opens and closes. Use as a context manager, or call ``close()``."""

    def __init__(self, timeout: float = VERIFY_TIMEOUT_S, workers: int = 2, sandbox: Any = None):
        self.timeout = timeout
        self.workers = workers
        self._sandbox = None if isinstance(sandbox, str) else sandbox
        self._sandbox_backend = sandbox if isinstance(sandbox, str) else "process"
        self._own_sandbox = False
        self._math: Any = None

    def grade_texts(self, texts: Sequence[str], examples: Sequence[Example], answer_format: str = "full") -> list[Grade]:
        """The grade of ``texts[i]`` as an answer to ``examples[i]``: math answers read under
        ``answer_format`` (``"full"`` or ``"strict"``), code by its tests in the sandbox."""
        out: list[Grade | None] = [None] * len(texts)
        math_idx = [i for i, ex in enumerate(examples) if ex.task == "math"]
        if math_idx:
            if self._math is None:
                from rl_reason.verifiers import MathVerifier

                self._math = MathVerifier(workers=self.workers, timeout=self.timeout).__enter__()
            results = self._math.verify_batch([texts[i] for i in math_idx], [examples[i].answer for i in math_idx],
                                              answer_format=answer_format)
            for i, res in zip(math_idx, results):
                out[i] = Grade(float(res.score), res.status, bool(res.correct), res.extracted, res.extracted_by)
        for i, ex in enumerate(examples):
            if ex.task == "code":
                from rl_reason.verifiers import verify_code

                res = verify_code(texts[i], ex.tests, sandbox=self._code_sandbox())
                out[i] = Grade(float(res.score), res.status, res.total > 0 and res.passed == res.total,
                               tests_passed=res.passed, tests_total=res.total, slot_wait_s=res.slot_wait_s)
        missing = [i for i, g in enumerate(out) if g is None]
        if missing:
            raise ValueError(f"example {examples[missing[0]].id!r} has task {examples[missing[0]].task!r}: "
                             "only math and code are graded")
        return out  # type: ignore[return-value]

    def grade(self, records: Iterable[Mapping[str, Any]], examples: Mapping[str, Example]) -> list[dict[str, Any]]:
        """Copies of ``records`` (each with at least ``id`` and ``text``) with ``extracted``,
        ``extracted_by``, ``status``, ``correct``, ``score``, ``status_strict`` and
        ``correct_strict`` set (any previous grading is replaced); ``examples`` maps problem id
        to its Example. Code problems also get ``tests_passed`` and ``tests_total``."""
        out = [dict(r) for r in records]
        for i, rec in enumerate(out):
            if rec.get("id") not in examples:
                raise KeyError(f"record {i}: id {rec.get('id')!r} is not a problem of this suite")
            if not isinstance(rec.get("text"), str):
                raise TypeError(f"record {i} (id {rec['id']!r}): 'text' must be a string")
        graded = [r for r in out if examples[r["id"]].task in ("math", "code")]
        texts, exs = [r["text"] for r in graded], [examples[r["id"]] for r in graded]
        full = self.grade_texts(texts, exs, "full")
        # Code has no answer format: its strict grade is its grade (the tests run once).
        math_idx = [i for i, ex in enumerate(exs) if ex.task == "math"]
        strict = dict(zip(math_idx, self.grade_texts([texts[i] for i in math_idx], [exs[i] for i in math_idx], "strict")))
        for i, (rec, g) in enumerate(zip(graded, full)):
            s = strict.get(i, g)
            rec.update(extracted=g.extracted, extracted_by=g.extracted_by, status=g.status, correct=g.correct,
                       score=g.score, status_strict=s.status, correct_strict=s.correct)
            if g.tests_total is not None:
                rec.update(tests_passed=g.tests_passed, tests_total=g.tests_total)
        return out

    def _code_sandbox(self):
        if self._sandbox is None:
            from rl_reason.sandbox import get_sandbox

            self._sandbox = get_sandbox(self._sandbox_backend)
            self._own_sandbox = True
        return self._sandbox

    def close(self) -> None:
        if self._math is not None:
            self._math.__exit__(None, None, None)
            self._math = None
        if self._own_sandbox:
            close = getattr(self._sandbox, "close", None)
            if close is not None:
                close()
            self._sandbox, self._own_sandbox = None, False



def grade_records(
    records: Iterable[Mapping[str, Any]],
    examples: Mapping[str, Example],
    *,
    timeout: float = VERIFY_TIMEOUT_S,
    workers: int = 2,
    sandbox: Any = None,
) -> list[dict[str, Any]]:
    """Grade ``records`` once (see ``Grader.grade``); code problems use ``sandbox`` (default:
    a process sandbox)."""
    with Grader(timeout=timeout, workers=workers, sandbox=sandbox) as grader:
        return grader.grade(records, examples)
