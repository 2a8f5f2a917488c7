"""What every rollout engine takes and returns, and the protocol trainers and eval code against."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``temperature=0`` means greedy; ``top_k=0`` and ``top_p=1`` disable those filters.

    ``stop`` strings end a completion (the text is cut before the stop string; the token ids keep
    the tokens that produced it). ``seed`` makes a run repeat exactly; None draws the seed from
    torch's global RNG, so ``torch.manual_seed`` also gives repeatable runs.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 256
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"SamplingParams.top_k must be >= 0 (0 disables it), got {self.top_k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"SamplingParams.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if isinstance(self.stop, str) or any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"SamplingParams.stop must be a list of non-empty strings, got {self.stop!r}")


@dataclass
class Completion:
    """One sampled response.

    ``logprobs[i]`` is the log-prob of ``token_ids[i]`` under the temperature-scaled distribution
    ``log_softmax(logits / temperature)`` *before* top-k/top-p truncation (raw logits when greedy),
    i.e. what ``rl_reason.models.token_logprobs(..., temperature=temperature)`` recomputes.
    ``finish_reason`` is "stop" (EOS or a stop string) or "length" (``max_new_tokens`` reached).
    """

    text: str
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: Literal["stop", "length"]
    prompt_token_ids: list[int]


@runtime_checkable
class RolloutEngine(Protocol):
    def generate(self, prompts: list[str], n: int, params: SamplingParams,
                 on_group_done: Callable[[int], None] | None = None) -> list[list[Completion]]:
        """``n`` completions per prompt, as one group per prompt in input order;
        ``on_group_done(i)`` is called once prompt ``i``'s group is complete (progress bars)."""
        ...

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load new policy weights given as (parameter name, tensor) pairs in HF naming."""
        ...

    def load_state_from(self, model: torch.nn.Module) -> None:
        """Load all weights of a trainer's policy module."""
        ...

    def sleep(self, level: int = 1) -> None:
        """Release accelerator memory between rollouts (colocated training)."""
        ...

    def wake_up(self) -> None:
        """Undo ``sleep`` before the next ``generate``."""
        ...
