"""A generated arithmetic task with exact integer answers: the quickstart's training set.

Problems are drawn from a seeded generator; the train and held-out splits never share a
problem (each split draws from its own disjoint set of canonical problem keys). The defaults
(addition and subtraction of numbers up to 30) are sized for the bundled SmolLM2-135M: it starts
near 10% greedy accuracy there, low enough to leave room and high enough that groups carry
signal; multiplication and larger operands are options.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from typing import TypeVar

from rl_reason.data_pipelines.schema import Example

OPERATIONS = ("+", "-", "*")
K = TypeVar("K", bound=Hashable)


def _problem(rng: random.Random, max_operand: int, operations: tuple[str, ...]) -> tuple[int, str, int]:
    op = rng.choice(operations)
    if op == "*":
        return rng.randint(2, max(2, max_operand // 4)), op, rng.randint(2, 12)
    return rng.randint(1, max_operand), op, rng.randint(1, max_operand)


def make_arithmetic(
    n: int,
    split: str = "train",
    seed: int = 0,
    max_operand: int = 30,
    operations: tuple[str, ...] = ("+", "-"),
) -> list[Example]:
    """``n`` problems of the given split (``train`` or ``heldout``) as Examples.

    The split decides membership by a hash of the problem, so both splits can be drawn
    independently and stay disjoint whatever ``n`` is.
    """
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    for op in operations:
        if op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r}; choose from {OPERATIONS}")
    rng = random.Random(f"arithmetic-{seed}-{split}")
    keys = draw_distinct(
        lambda: _problem(rng, max_operand, tuple(operations)),
        lambda key: (hash_bucket(key) < 0.2) == (split == "heldout"),
        n,
        f"{split} problems with max_operand={max_operand}",
    )
    out: list[Example] = []
    for key in keys:
        a, op, b = key
        answer = a + b if op == "+" else a - b if op == "-" else a * b
        out.append(
            Example(
                id=f"arith-{split}-{len(out)}",
                prompt=f"What is {a} {op} {b}?",
                answer=str(answer),
                source="arithmetic",
                metadata={"operation": op},
            )
        )
    return out


def draw_distinct(draw: Callable[[], K], keep: Callable[[K], bool], n: int, what: str) -> list[K]:
    """``n`` distinct values of ``draw()`` that ``keep`` accepts, in drawing order; a clear error
    when the space runs out (``what`` names it)."""
    seen: set[K] = set()
    out: list[K] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 200 * n + 1000:
            raise ValueError(f"cannot draw {n} distinct {what}")
        value = draw()
        if value in seen or not keep(value):
            continue
        seen.add(value)
        out.append(value)
    return out


def hash_bucket(key: tuple[int, str, int]) -> float:
    """A stable value in [0, 1) per problem (Python's ``hash`` of str is salted per process)."""
    a, op, b = key
    h = (a * 1_000_003 + OPERATIONS.index(op) * 7919 + b * 104_729) % 1_000_003
    return h / 1_000_003
