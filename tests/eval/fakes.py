"""A deterministic stand-in for a RolloutEngine: seeded, and batch-dependent like a real
batched sampler (one RNG stream per generate call), so resume tests catch seeding mistakes."""

from __future__ import annotations

import dataclasses
import random
import re


@dataclasses.dataclass
class FakeCompletion:
    text: str
    token_ids: list[int]
    finish_reason: str


@dataclasses.dataclass
class FakeSampling:
    temperature: float = 1.0
    max_new_tokens: int = 32
    seed: int | None = 0


class FakeEngine:
    """Answers "What is a + b?"-style prompts correctly with probability ``p_correct``."""

    def __init__(self, p_correct: float = 0.5, fail_after_calls: int | None = None):
        self.p_correct = p_correct
        self.fail_after_calls = fail_after_calls
        self.calls = 0

    def generate(self, prompts, n, params, on_group_done=None):
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        rng = random.Random(params.seed)
        groups = []
        for prompt in prompts:
            a, op, b = re.search(r"What is (\d+) ([-+*]) (\d+)\?", prompt).groups()
            gold = eval(f"{a}{op}{b}")  # noqa: S307 - arithmetic from our own generator
            group = []
            for _ in range(n):
                roll = rng.random()
                if roll < 0.1:
                    text, reason = "I am not sure", "length"
                else:
                    value = gold if roll < 0.1 + self.p_correct else gold + rng.randint(1, 3)
                    text, reason = f"Adding up, the final answer is $\\boxed{{{value}}}$.", "stop"
                group.append(FakeCompletion(text, list(range(len(text.split()))), reason))
            groups.append(group)
            if on_group_done is not None:
                on_group_done(len(groups) - 1)
        return groups
