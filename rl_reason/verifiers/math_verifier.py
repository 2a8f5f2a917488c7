"""``verify_math`` and ``MathVerifier``: grade a response's final answer against a gold answer.

Pipeline per pair: extract the committed answer (``extract.py``, in the caller), try the exact
fast path (``fastpath.py``, in the caller), and only then send the pair to a killable worker
process for the symbolic comparison (``symbolic.py``). Results of the symbolic path are cached
per (answer, gold), since RL groups repeat the same answers many times.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Literal

from rl_reason.io.closing import Closing
from rl_reason.verifiers.extract import ANSWER_FORMATS, AnswerFormat, extract_answer, extract_gold, split_top_level
from rl_reason.verifiers.fastpath import fast_compare, normalize_latex
from rl_reason.verifiers.guards import MAX_DEPTH, defuse, nesting_depth, unwrap, wraps_whole
from rl_reason.verifiers.pool import WorkerDied, WorkerPool, WorkerTimeout

Status = Literal["correct", "wrong", "no_answer", "invalid_gold", "timeout", "error"]
STATUSES: tuple[str, ...] = ("correct", "wrong", "no_answer", "invalid_gold", "timeout", "error")
# Seconds one answer may take to verify before it counts as "timeout": every grader (the
# trainers' reward, eval, `rl-reason verify`) defaults to the same bound, so a reward and an
# eval grade of one answer cannot differ by their time limit.
VERIFY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class MathResult:
    """The grade of one response. ``score`` is 1.0 or 0.0; ``timeout``/``error``/``invalid_gold``
    are not answers judged wrong, and reward shapes report them as ``None``. ``extracted_by``
    names the extraction rule that found the answer (``extract.RULES``), ``None`` without one."""

    correct: bool
    score: float
    status: Status
    extracted: str | None
    reason: str
    extracted_by: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _result(status: Status, extracted: str | None, reason: str, extracted_by: str | None = None) -> MathResult:
    ok = status == "correct"
    return MathResult(ok, 1.0 if ok else 0.0, status, extracted, reason, extracted_by if extracted is not None else None)


def check_answer_format(answer_format: str) -> None:
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")


_AND_RE = re.compile(r"\s*\\text\{\s*and\s*\}\s*|\s+and\s+")
_ASSIGNMENT_PREFIX_RE = re.compile(r"^\s*[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(?=[^=]*$)")


def _top_level_commas(s: str) -> bool:
    return len(_split_top_level_commas(s)) > 1


def brace_set(answer: str) -> str:
    """``{1,2,3}`` (braces as a set, without the backslashes) -> ``\\{1,2,3\\}``."""
    s = answer.strip()
    if wraps_whole(s, "{", "}") and _top_level_commas(s[1:-1]):
        return "\\{" + s[1:-1] + "\\}"
    return answer


def _split_top_level_commas(s: str) -> list[str]:
    return split_top_level(s, ",")


def _same_value(parts: list[str]) -> bool:
    """``1/4 or 25%``: one value spelled twice, decided by the exact fast path alone."""
    return all((fast_compare(p, parts[0]) or (False,))[0] for p in parts[1:])


def _gold_is_multi(gold: str) -> bool:
    """A "find all" gold: a comma list, a ``\\pm`` pair or an explicit set."""
    return _top_level_commas(gold) or "\\pm" in gold or gold.lstrip().startswith("\\{")


class _Pending:
    __slots__ = ("pred", "gold", "key")

    def __init__(self, pred: str, gold: str, rel_tol: float | None):
        self.pred, self.gold = pred, gold
        self.key = (pred, gold, rel_tol)


class MathVerifier(Closing):
    """A reusable grader with its own pool of worker processes.

    ``workers`` bounds the concurrent symbolic comparisons (and worker processes);
    ``timeout`` is the hard wall-clock bound in seconds for one comparison;
    ``rel_tol`` (off by default) accepts numeric answers within that relative tolerance;
    ``answer_format`` is ``"full"`` (the whole extraction chain, the default) or ``"strict"``
    (committed answers only); see ``rl_reason.verifiers.extract``.
    """

    def __init__(
        self,
        workers: int = 4,
        timeout: float = VERIFY_TIMEOUT_S,
        rel_tol: float | None = None,
        cache_size: int = 8192,
        answer_format: AnswerFormat = "full",
    ):
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        check_answer_format(answer_format)
        self.answer_format = answer_format
        self.workers = workers
        self.timeout = timeout
        self.rel_tol = rel_tol
        self._pool = WorkerPool(workers)
        self._cache: OrderedDict[tuple, tuple[str, str]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._owner_pid = os.getpid()

    # -- stages -------------------------------------------------------------------------
    def _prepare(
        self, response: str, gold: str, rel_tol: float | None, answer_format: AnswerFormat
    ) -> MathResult | tuple[tuple[str, str], _Pending]:
        """A final result when extraction or the fast path decides, else the pending work."""
        if not isinstance(gold, str) or not gold.strip():
            return _result("invalid_gold", None, f"gold answer is empty or not text: {gold!r}")
        if not isinstance(response, str):
            return _result("error", None, f"response is {type(response).__name__}, not text")
        gold_ans = brace_set(extract_gold(gold))
        if not gold_ans:
            return _result("invalid_gold", None, f"no answer in gold {gold!r}")
        ex = extract_answer(response, answer_format)
        if ex.answer is None:
            return _result("no_answer", None, ex.how)
        pred = brace_set(ex.answer)
        found = (ex.answer, ex.how)
        if ex.parts:
            gold_ans = _AND_RE.sub(", ", gold_ans)  # "12\text{ and }13" lists two values
            if _gold_is_multi(gold_ans):  # "y_1 = a, y_2 = b" lists the values a, b
                gold_ans = ", ".join(_ASSIGNMENT_PREFIX_RE.sub("", p) for p in _split_top_level_commas(gold_ans))
            parts = [_ASSIGNMENT_PREFIX_RE.sub("", p) for p in ex.parts]
            if _gold_is_multi(gold_ans):
                # "\boxed{2} and \boxed{3}" lists one answer's elements; "\boxed{2, 3} or
                # \boxed{2, 4}" hedges between whole answers.
                if any(_top_level_commas(p) for p in parts) and len({normalize_latex(p) for p in parts}) > 1:
                    return _result("wrong", ex.answer, f"hedged between {len(parts)} candidate answers", ex.how)
                pred = ", ".join(parts)
            elif len({normalize_latex(p) for p in parts}) > 1 and not _same_value(parts):
                return _result("wrong", ex.answer, f"hedged between {len(parts)} candidate answers", ex.how)
            else:
                pred = parts[0]
        fast = fast_compare(pred, gold_ans, rel_tol)
        if fast is not None:
            ok, reason = fast
            return _result("correct" if ok else "wrong", ex.answer, reason, ex.how)
        pred = unwrap(pred)
        depth = max(nesting_depth(pred), nesting_depth(gold_ans))
        if depth > MAX_DEPTH:
            return _result("wrong", ex.answer, f"answer nested {depth} brackets deep, not evaluated", ex.how)
        pred, gold_ans, _ = defuse(pred, gold_ans)
        return found, _Pending(pred, gold_ans, rel_tol)

    def _symbolic(self, pending: _Pending, timeout: float) -> tuple[str, str]:
        if os.getpid() != self._owner_pid:  # forked: another thread may have held the lock
            self._cache_lock, self._owner_pid = threading.Lock(), os.getpid()
        with self._cache_lock:
            hit = self._cache.get(pending.key)
            if hit is not None:
                self._cache.move_to_end(pending.key)
                return hit
        try:
            reply = self._pool.call({"pred": pending.pred, "gold": pending.gold, "rel_tol": pending.key[2]}, timeout)
        except WorkerTimeout:
            return "timeout", f"symbolic comparison exceeded {timeout:g}s; worker killed"
        except WorkerDied as e:
            return "error", str(e)
        outcome = (reply["status"], reply["reason"])
        if outcome[0] != "error":
            with self._cache_lock:
                self._cache[pending.key] = outcome
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return outcome

    # -- public -------------------------------------------------------------------------
    def _grade(
        self, response: str, gold: str, timeout: float, rel_tol: float | None, answer_format: AnswerFormat
    ) -> MathResult:
        prepared = self._prepare(response, gold, rel_tol, answer_format)
        if isinstance(prepared, MathResult):
            return prepared
        (extracted, how), pending = prepared
        status, reason = self._symbolic(pending, timeout)
        return _result(status, extracted, reason, how)  # type: ignore[arg-type]

    def verify(self, response: str, gold: str, answer_format: AnswerFormat | None = None) -> MathResult:
        """Grade one response (``answer_format`` defaults to the verifier's); thread-safe."""
        answer_format = answer_format or self.answer_format
        check_answer_format(answer_format)
        return self._grade(response, gold, self.timeout, self.rel_tol, answer_format)

    def verify_batch(
        self,
        responses: Sequence[str],
        golds: Sequence[str],
        on_result: Callable[[int, MathResult], None] | None = None,
        answer_format: AnswerFormat | None = None,
    ) -> list[MathResult]:
        """Grade pairs in input order, ``workers`` symbolic comparisons at a time;
        ``on_result(index, result)`` is called as each one finishes (for progress bars)."""
        if len(responses) != len(golds):
            raise ValueError(f"{len(responses)} responses but {len(golds)} golds")
        answer_format = answer_format or self.answer_format
        check_answer_format(answer_format)
        results: list[MathResult | None] = [None] * len(responses)
        groups: dict[tuple, list[tuple[int, tuple[str, str], _Pending]]] = {}
        for i, (resp, gold) in enumerate(zip(responses, golds)):
            prepared = self._prepare(resp, gold, self.rel_tol, answer_format)
            if isinstance(prepared, MathResult):
                results[i] = prepared
                if on_result:
                    on_result(i, prepared)
            else:
                groups.setdefault(prepared[1].key, []).append((i, *prepared))

        def run(group: list[tuple[int, tuple[str, str], _Pending]]) -> None:
            status, reason = self._symbolic(group[0][2], self.timeout)
            for i, (extracted, how), _ in group:
                results[i] = _result(status, extracted, reason, how)  # type: ignore[arg-type]
                if on_result:
                    on_result(i, results[i])

        if groups:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(groups))) as ex:
                for f in [ex.submit(run, g) for g in groups.values()]:
                    f.result()
        return results  # type: ignore[return-value]

    @property
    def workers_killed(self) -> int:
        """How many worker processes were killed on timeout or found dead."""
        return self._pool.killed

    def close(self) -> None:
        self._pool.close()



_default: MathVerifier | None = None
_default_lock = threading.Lock()


def _default_verifier() -> MathVerifier:
    global _default
    with _default_lock:
        if _default is None:
            _default = MathVerifier(workers=max(2, os.cpu_count() or 2))
        return _default


def _forget_default_in_child() -> None:
    global _default, _default_lock
    _default, _default_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_default_in_child)


def verify_math(
    response: str, gold: str, timeout: float = VERIFY_TIMEOUT_S, rel_tol: float | None = None, answer_format: AnswerFormat = "full"
) -> MathResult:
    """Grade ``response`` against ``gold``; see ``MathResult``. Safe from any thread, asyncio
    (``asyncio.to_thread``), process pools and DataLoader workers; the symbolic comparison is
    bounded by ``timeout`` seconds of wall clock, enforced by killing a worker process.
    ``answer_format``: ``"full"`` reads the answer by the whole extraction chain, ``"strict"``
    only committed answers (``rl_reason.verifiers.extract``).

    >>> verify_math(r"so the answer is $\\boxed{\\frac{1}{2}}$", "0.5").status
    'correct'
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    check_answer_format(answer_format)
    return _default_verifier()._grade(response, gold, timeout, rel_tol, answer_format)
