"""Verifier rewards for RL: math, code and format scores combined by a weighted sum.

The math and code scores are the eval harness's grades (``rl_reason.eval.grader.Grader``), so
a training reward and an eval grade of the same answer cannot drift apart. A timed-out or
crashed verifier never turns into a silent reward of 0: the sample is marked ``valid=False``
and the trainer drops it from its group (baseline and loss) and counts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from rl_reason.data_pipelines.schema import Example
from rl_reason.eval.grader import Grader
from rl_reason.io.closing import Closing
from rl_reason.verifiers.math_verifier import VERIFY_TIMEOUT_S

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


class VerifierReward(Closing):
    """The default reward: ``math_weight * math + code_weight * code + format_weight * format``.

    Math examples (with ``answer``) go through the grader's verifier pool in a batch, code
    examples (with ``tests``) through its sandbox. Use as a context manager to stop the workers.
    """

    def __init__(self, math_weight: float = 1.0, code_weight: float = 1.0, format_weight: float = 0.0,
                 format_pattern: str = "boxed", timeout: float = VERIFY_TIMEOUT_S, workers: int = 2,
                 sandbox: str = "process", answer_format: str = "full"):
        self.weights = {"math": math_weight, "code": code_weight}
        self.format_weight = format_weight
        self.format_pattern = format_pattern
        self.answer_format = answer_format
        self.grader = Grader(timeout=timeout, workers=workers, sandbox=sandbox)

    @classmethod
    def from_config(cls, r) -> VerifierReward:
        """The reward a recipe's ``reward`` section (``RewardConfig``) describes."""
        return cls(r.math_weight, r.code_weight, r.format_weight, r.format_pattern, r.verifier_timeout,
                   r.verifier_workers, r.sandbox, r.answer_format)

    def __call__(self, examples: list[Example], responses: list[str]) -> list[Scored]:
        grades = self.grader.grade_texts(responses, examples, self.answer_format)
        out = [Scored(self.weights[ex.task] * g.score, g.status, g.correct, g.status not in UNSCORABLE,
                      {ex.task: g.score}, slot_wait_s=g.slot_wait_s) for ex, g in zip(examples, grades)]
        if self.format_weight:
            from rl_reason.verifiers.format import check_format

            for scored, response in zip(out, responses):
                fmt = check_format(response, pattern=self.format_pattern)
                scored.components["format"] = float(getattr(fmt, "score", fmt))
                scored.reward += self.format_weight * scored.components["format"]
        return out

    def close(self) -> None:
        self.grader.close()
