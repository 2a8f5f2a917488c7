"""Verifier rewards for RL: math, code and format scores combined by a weighted sum.

A timed-out or crashed verifier never turns into a silent reward of 0: the sample is marked
``valid=False`` and the trainer drops it from its group (baseline and loss) and counts it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from rl_reason.data_pipelines.schema import Example

# Verifier statuses that say nothing about the answer's quality.
UNSCORABLE = ("timeout", "error", "invalid_gold")


@dataclass
class Scored:
    """One response's reward; ``status`` is the verifier's (counted as a metric).

    ``components`` names the unweighted terms the reward was built from (``math``, ``code``,
    ``format``; shaping adds its penalties): each is logged as ``reward/<name>``, and the GDPO
    mix normalises the weighted ones separately.
    """

    reward: float
    status: str
    correct: bool
    valid: bool = True
    components: dict[str, float] = field(default_factory=dict)
    # Seconds the sample's tests waited for a sandbox slot: high values mean graders outnumber cores.
    slot_wait_s: float = 0.0


class RewardFn(Protocol):
    def __call__(self, examples: list[Example], responses: list[str]) -> list[Scored]: ...


class VerifierReward:
    """The default reward: ``math_weight * math + code_weight * code + format_weight * format``.

    Math examples (with ``answer``) go through one ``MathVerifier`` worker pool in a batch, code
    examples (with ``tests``) through the sandbox. Use as a context manager to stop the workers.
    """

    def __init__(self, math_weight: float = 1.0, code_weight: float = 1.0, format_weight: float = 0.0,
                 format_pattern: str = "boxed", timeout: float = 5.0, workers: int = 2, sandbox: str = "process",
                 answer_format: str = "full"):
        self.math_weight = math_weight
        self.code_weight = code_weight
        self.format_weight = format_weight
        self.format_pattern = format_pattern
        self.timeout = timeout
        self.workers = workers
        self.sandbox_kind = sandbox
        self.answer_format = answer_format
        self._math = None
        self._sandbox = None

    def _math_verifier(self):
        if self._math is None:
            from rl_reason.verifiers import MathVerifier

            self._math = MathVerifier(workers=self.workers, timeout=self.timeout, answer_format=self.answer_format)
            self._math.__enter__()
        return self._math

    def _code_sandbox(self):
        if self._sandbox is None:
            from rl_reason.sandbox import get_sandbox

            self._sandbox = get_sandbox(self.sandbox_kind)
        return self._sandbox

    def __call__(self, examples: list[Example], responses: list[str]) -> list[Scored]:
        out: list[Scored | None] = [None] * len(responses)
        math_idx = [i for i, ex in enumerate(examples) if ex.task == "math"]
        if math_idx:
            results = self._math_verifier().verify_batch([responses[i] for i in math_idx],
                                                         [examples[i].answer for i in math_idx])
            for i, r in zip(math_idx, results):
                out[i] = Scored(self.math_weight * r.score, r.status, bool(r.correct), r.status not in UNSCORABLE,
                                {"math": float(r.score)})
        for i, ex in enumerate(examples):
            if ex.task != "code":
                continue
            from rl_reason.verifiers.code import verify_code

            r = verify_code(responses[i], ex.tests, sandbox=self._code_sandbox())
            out[i] = Scored(self.code_weight * r.score, r.status, r.passed == r.total > 0, r.status not in UNSCORABLE,
                            {"code": float(r.score)}, slot_wait_s=r.slot_wait_s)
        if self.format_weight:
            from rl_reason.verifiers.format import check_format

            for i, response in enumerate(responses):
                fmt = check_format(response, pattern=self.format_pattern)
                out[i].components["format"] = float(getattr(fmt, "score", fmt))
                out[i].reward += self.format_weight * out[i].components["format"]
        return out  # type: ignore[return-value]

    def close(self) -> None:
        if self._math is not None:
            self._math.__exit__(None, None, None)
            self._math = None
        close_sandbox: Callable[[], None] | None = getattr(self._sandbox, "close", None)
        if close_sandbox is not None:
            close_sandbox()
        self._sandbox = None

