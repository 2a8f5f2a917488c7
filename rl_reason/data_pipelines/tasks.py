"""Small generated task families with exact integer answers, for checking that a recipe transfers.

Families: ``arithmetic`` (``+``/``-`` up to 30, the quickstart's task), ``word_problems`` (one or
two steps), ``unit_conversions``, ``comparisons``, ``sequences``, ``missing_number`` (fill the
blank in ``a + _ = c``), ``rounding`` (to the nearest ten or hundred) and ``ages`` (age word
problems, one or two steps). Each problem has a canonical
key; a stable hash of the key puts it in the train or the held-out split, so the splits never
share a problem whatever sizes are drawn. ``metadata["level"]`` is the number of steps (1 or 2),
``metadata["subject"]`` the family (the eval summary breaks accuracy down by both).

Registered as ``tasks:FAMILY[:SPLIT]``; ``FAMILY`` may join several with ``+`` (``tasks:word_problems+sequences:heldout``)
or be ``all``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from rl_reason.data_pipelines.arithmetic import draw_distinct
from rl_reason.data_pipelines.schema import Example

# A family draws (key, prompt, answer, level) from a seeded generator; the key decides the split.
Problem = tuple[tuple, str, int, int]

HELDOUT_SHARE = 0.2
SPLITS = ("train", "heldout")

_NAMES = ("Tom", "Sara", "Ali", "Mia", "Ben", "Lena", "Omar", "Yuki", "Ravi", "Ana")
_ITEMS = ("apples", "stickers", "marbles", "books", "pencils", "coins", "cards", "shells")


def _arithmetic(rng: random.Random) -> Problem:
    a, b, op = rng.randint(1, 30), rng.randint(1, 30), rng.choice("+-")
    return (a, op, b), f"What is {a} {op} {b}?", a + b if op == "+" else a - b, 1


def _word_problem(rng: random.Random) -> Problem:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    kind = rng.randrange(5)
    a, b = rng.randint(5, 40), rng.randint(2, 20)
    if kind == 0:
        text, answer, level = (
            f"{name} has {a} {item}. {name} gets {b} more. How many {item} does {name} have now?",
            a + b,
            1,
        )
    elif kind == 1:
        a = a + b  # never negative
        text, answer, level = f"{name} has {a} {item} and gives away {b}. How many {item} are left?", a - b, 1
    elif kind == 2:
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        text, answer, level = (
            f"There are {a} boxes with {b} {item} in each box. How many {item} are there in all?",
            a * b,
            1,
        )
    elif kind == 3:
        c = rng.randint(2, 15)
        a = a + c
        text = f"{name} has {a} {item}, buys {b} more and then gives {c} to a friend. How many {item} does {name} have now?"
        answer, level = a + b - c, 2
    else:
        a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 20)
        text = f"{name} buys {a} bags with {b} {item} in each bag and already had {c} {item}. How many {item} does {name} have in total?"
        answer, level = a * b + c, 2
    return (text,), text, answer, level


# (from unit, to unit, factor): "How many <to> are in <n> <from>?" -> n * factor.
_CONVERSIONS = (
    ("meters", "centimeters", 100),
    ("kilometers", "meters", 1000),
    ("hours", "minutes", 60),
    ("minutes", "seconds", 60),
    ("kilograms", "grams", 1000),
    ("feet", "inches", 12),
    ("weeks", "days", 7),
    ("days", "hours", 24),
    ("dozens", "items", 12),
    ("liters", "milliliters", 1000),
    ("yards", "feet", 3),
)


def _unit_conversion(rng: random.Random) -> Problem:
    src, dst, factor = rng.choice(_CONVERSIONS)
    n = rng.randint(2, 99)
    if rng.random() < 0.5:
        return (src, dst, n), f"How many {dst} are in {n} {src}?", n * factor, 1
    return (dst, src, n), f"How many {src} are {n * factor} {dst}?", n, 1


def _comparison(rng: random.Random) -> Problem:
    if rng.random() < 0.5:
        a, b = rng.sample(range(1, 100), 2)
        word = rng.choice(("larger", "smaller"))
        answer = max(a, b) if word == "larger" else min(a, b)
        return (word, a, b), f"Which number is {word}: {a} or {b}?", answer, 1
    nums = rng.sample(range(1, 100), 3)
    word = rng.choice(("largest", "smallest"))
    answer = max(nums) if word == "largest" else min(nums)
    return (word, *nums), f"What is the {word} of the numbers {nums[0]}, {nums[1]} and {nums[2]}?", answer, 1


def _sequence(rng: random.Random) -> Problem:
    kind = rng.random()
    if kind < 0.6:  # constant step
        start, step = rng.randint(1, 50), rng.choice([s for s in range(-9, 13) if s])
        terms, level = [start + i * step for i in range(5)], 1
    elif kind < 0.9:  # two steps taking turns: +a, +b, +a, ...
        a, b = rng.sample(range(1, 10), 2)
        terms, level = [rng.randint(1, 30)], 2
        for i in range(4):
            terms.append(terms[-1] + (a if i % 2 == 0 else b))
    else:  # doubling or tripling
        start, ratio = rng.randint(1, 12), rng.choice((2, 3))
        terms, level = [start * ratio**i for i in range(5)], 2
    shown = ", ".join(map(str, terms[:4]))
    return tuple(terms), f"What is the next number in the sequence {shown}, ...?", terms[4], level


def _missing_number(rng: random.Random) -> Problem:
    a, b = rng.randint(1, 40), rng.randint(1, 40)
    form = rng.randrange(4)
    if form == 0:
        return (a, "+_", a + b), f"What number goes in the blank? {a} + __ = {a + b}", b, 1
    if form == 1:
        return ("_+", b, a + b), f"What number goes in the blank? __ + {b} = {a + b}", a, 1
    if form == 2:
        return (a + b, "-_", a), f"What number goes in the blank? {a + b} - __ = {a}", b, 1
    return ("_-", b, a), f"What number goes in the blank? __ - {b} = {a}", a + b, 1


def _rounding(rng: random.Random) -> Problem:
    if rng.random() < 0.5:
        n, unit = rng.randint(11, 999), 10
    else:
        n, unit = rng.randint(101, 9999), 100
    n += n % unit == unit // 2  # no ties: the rounding rule for halves is not the point
    answer = (n + unit // 2) // unit * unit
    return (n, unit), f"Round {n} to the nearest {'ten' if unit == 10 else 'hundred'}.", answer, 1


def _ages(rng: random.Random) -> Problem:
    name, other = rng.sample(_NAMES, 2)
    age, gap, years = rng.randint(5, 40), rng.randint(2, 30), rng.randint(2, 15)
    kind = rng.randrange(5)
    if kind == 0:
        return (kind, name, age, years), f"{name} is {age} years old. How old will {name} be in {years} years?", age + years, 1
    if kind == 1:
        age += years
        return (kind, name, age, years), f"{name} is {age} years old. How old was {name} {years} years ago?", age - years, 1
    if kind == 2:
        text = f"{name} is {age} years old. {other} is {gap} years older than {name}. How old is {other}?"
        return (kind, name, other, age, gap), text, age + gap, 1
    if kind == 3:
        age += gap
        text = f"{name} is {age} years old. {other} is {gap} years younger than {name}. How old is {other}?"
        return (kind, name, other, age, gap), text, age - gap, 1
    text = (f"{name} is {age} years old. {other} is {gap} years older than {name}. "
            f"How old will {other} be in {years} years?")
    return (kind, name, other, age, gap, years), text, age + gap + years, 2


FAMILIES: dict[str, Callable[[random.Random], Problem]] = {
    "arithmetic": _arithmetic,
    "word_problems": _word_problem,
    "unit_conversions": _unit_conversion,
    "comparisons": _comparison,
    "sequences": _sequence,
    "missing_number": _missing_number,
    "rounding": _rounding,
    "ages": _ages,
}


def split_of(family: str, key: tuple) -> str:
    """``train`` or ``heldout`` for a problem key: a stable hash (not Python's salted ``hash``)."""
    digest = hashlib.sha256(repr((family, key)).encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < HELDOUT_SHARE else "train"


def parse_families(spec: str) -> list[str]:
    """``"all"`` or ``"a+b"`` to a list of family names; unknown names are an error."""
    names = list(FAMILIES) if spec == "all" else [s for s in spec.split("+") if s]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown or not names:
        raise ValueError(
            f"unknown task family {', '.join(unknown) or spec!r}; choose from {', '.join(FAMILIES)}, all, or a+b"
        )
    return names


def make_tasks(family: str, n: int, split: str = "train", seed: int = 0) -> list[Example]:
    """``n`` distinct problems of one family (or ``a+b`` / ``all``, interleaved) in ``split``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    names = parse_families(family)
    per = [n // len(names) + (i < n % len(names)) for i in range(len(names))]
    parts = [_draw(name, k, split, seed) for name, k in zip(names, per)]
    # Interleave so any prefix (data.train_limit, eval_limit) holds every family.
    out = [ex for row in zip(*[p + [None] * (max(per) - len(p)) for p in parts]) for ex in row if ex is not None]
    return out


def _draw(family: str, n: int, split: str, seed: int) -> list[Example]:
    rng = random.Random(f"tasks-{family}-{seed}-{split}")
    # A problem's key determines its text and answer, so distinct draws are distinct problems.
    problems = draw_distinct(
        lambda: FAMILIES[family](rng),
        lambda p: split_of(family, p[0]) == split,
        n,
        f"{split} problems of task family {family!r}",
    )
    return [
        Example(
            id=f"{family}-{split}-{i}",
            prompt=prompt,
            answer=str(answer),
            source=f"tasks:{family}",
            metadata={"subject": family, "level": level},
        )
        for i, (_, prompt, answer, level) in enumerate(problems)
    ]
