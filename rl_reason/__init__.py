"""rl-reason: reinforcement learning from verifiable rewards for reasoning LLMs.

Importing this package never imports torch: the verifier library, the sandbox and the data
pipelines work after a plain ``pip install rl-reason``. The verifier entry points are
re-exported lazily so that ``import rl_reason`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

_VERIFIER_EXPORTS = ("verify_math", "MathVerifier", "MathResult", "verify_code", "CodeResult")


def __getattr__(name: str):
    if name in _VERIFIER_EXPORTS:
        from rl_reason import verifiers

        return getattr(verifiers, name)
    raise AttributeError(f"module 'rl_reason' has no attribute {name!r}")


__all__ = ["__version__", *_VERIFIER_EXPORTS]
