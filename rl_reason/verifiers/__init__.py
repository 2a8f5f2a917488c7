"""Verifiers: torch-free graders for verifiable rewards.

- ``verify_math`` / ``MathVerifier`` / ``MathResult``: final-answer equivalence for math; the
  answer is read by the extraction chain of ``rl_reason.verifiers.extract`` (``answer_format``
  ``"full"``, the default) or from committed answers only (``"strict"``).
- ``check_format`` / ``FormatResult``: format rewards (boxed answer, ``<think>`` structure).
- ``math_accuracy_reward`` / ``format_reward`` (TRL reward-function shape), ``compute_score``
  (verl shape).
- ``verify_code`` / ``CodeResult``: tests run in the sandbox (imported on first use).

math-verify and sympy load only inside worker processes, so this import stays cheap.
"""

from rl_reason.verifiers.format import FORMAT_PATTERNS, FormatResult, check_format, format_reward
from rl_reason.verifiers.math_verifier import STATUSES, VERIFY_TIMEOUT_S, MathResult, MathVerifier, verify_math
from rl_reason.verifiers.rewards import compute_score, math_accuracy_reward

__all__ = [
    "STATUSES", "VERIFY_TIMEOUT_S", "MathResult", "MathVerifier", "verify_math",
    "FORMAT_PATTERNS", "FormatResult", "check_format", "format_reward",
    "math_accuracy_reward", "compute_score",
    "verify_code", "CodeResult",
]

_LAZY = {"verify_code": "rl_reason.verifiers.code", "CodeResult": "rl_reason.verifiers.code"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rl_reason.verifiers' has no attribute {name!r}")
