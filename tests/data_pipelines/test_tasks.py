"""Generated task families: disjoint splits, correct answers, registry names."""

import re

import pytest

from rl_reason.data_pipelines import load_dataset
from rl_reason.data_pipelines.tasks import FAMILIES, make_tasks, split_of


@pytest.mark.parametrize("family", list(FAMILIES))
def test_splits_are_disjoint_and_distinct(family):
    train = make_tasks(family, 600, "train")
    heldout = make_tasks(family, 150, "heldout")
    assert len({e.prompt for e in train}) == 600 and len({e.prompt for e in heldout}) == 150
    assert not {e.prompt for e in train} & {e.prompt for e in heldout}
    assert all(e.metadata["subject"] == family and e.metadata["level"] in (1, 2) for e in train + heldout)


def _solve(prompt: str) -> int:
    """An independent solver for the prompts' wording (not the generator's code)."""
    nums = [int(x) for x in re.findall(r"-?\d+", prompt)]
    if m := re.match(r"What is (\d+) ([+-]) (\d+)\?", prompt):
        a, op, b = int(m[1]), m[2], int(m[3])
        return a + b if op == "+" else a - b
    if "next number" in prompt:
        t = nums
        if t[2] - t[1] == t[1] - t[0] == t[3] - t[2]:
            return t[3] + t[1] - t[0]
        if t[0] and t[1] * t[1] == t[0] * t[2] and t[2] * t[2] == t[1] * t[3]:
            return t[3] * (t[1] // t[0])
        return t[3] + t[2] - t[1]  # two steps taking turns
    for word, fn in (("larger", max), ("smaller", min), ("largest", max), ("smallest", min)):
        if f" {word}" in prompt:
            return fn(nums)
    factors = {
        "centimeters": ("meters", 100),
        "meters": ("kilometers", 1000),
        "minutes": ("hours", 60),
        "seconds": ("minutes", 60),
        "grams": ("kilograms", 1000),
        "inches": ("feet", 12),
        "days": ("weeks", 7),
        "hours": ("days", 24),
        "items": ("dozens", 12),
        "milliliters": ("liters", 1000),
        "feet": ("yards", 3),
    }
    if m := re.match(r"How many (\w+) are in (\d+) (\w+)\?", prompt):
        assert factors[m[1]][0] == m[3]
        return int(m[2]) * factors[m[1]][1]
    if m := re.match(r"How many (\w+) are (\d+) (\w+)\?", prompt):
        assert factors[m[3]][0] == m[1]
        return int(m[2]) // factors[m[3]][1]
    if m := re.match(r"What number goes in the blank\? (.+) = (\d+)", prompt):
        left, total = m[1], int(m[2])
        # Try every candidate: an independent check of the blank's value.
        hits = [x for x in range(0, 200) if eval(left.replace("__", str(x))) == total]  # noqa: S307 (own digits only)
        assert len(hits) == 1, prompt
        return hits[0]
    if m := re.match(r"Round (\d+) to the nearest (ten|hundred)\.", prompt):
        n, unit = int(m[1]), 10 if m[2] == "ten" else 100
        down, up = n - n % unit, n - n % unit + unit
        return down if n - down < up - n else up
    if "years old" in prompt:
        age = nums[0]
        if "older than" in prompt:
            age += nums[1]
        if "younger than" in prompt:
            age -= nums[1]
        if " in " in prompt.split(".")[-1]:
            age += nums[-1]
        if "ago" in prompt:
            age -= nums[-1]
        return age
    if "gets" in prompt:
        return nums[0] + nums[1]
    if "gives away" in prompt:
        return nums[0] - nums[1]
    if "boxes" in prompt:
        return nums[0] * nums[1]
    if "buys" in prompt and "gives" in prompt:
        return nums[0] + nums[1] - nums[2]
    if "bags" in prompt:
        return nums[0] * nums[1] + nums[2]
    raise AssertionError(f"unknown wording: {prompt}")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_answers_match_an_independent_solver(family):
    for ex in make_tasks(family, 300, "train") + make_tasks(family, 100, "heldout"):
        assert int(ex.answer) == _solve(ex.prompt), ex.prompt


def test_split_is_stable_and_near_one_fifth():
    keys = [(a, "+", b) for a in range(40) for b in range(40)]
    share = sum(split_of("arithmetic", k) == "heldout" for k in keys) / len(keys)
    assert 0.15 < share < 0.25
    assert [split_of("arithmetic", k) for k in keys[:50]] == [split_of("arithmetic", k) for k in keys[:50]]


def test_registry_names():
    wp = load_dataset("tasks:word_problems:heldout", limit=20)
    assert len(wp) == 20 and all(e.id.startswith("word_problems-heldout-") for e in wp)
    mixed = load_dataset("tasks:word_problems+sequences", limit=4)  # split defaults to train
    assert [e.metadata["subject"] for e in mixed] == ["word_problems", "sequences"] * 2
    assert {e.metadata["subject"] for e in load_dataset("tasks:all:heldout", limit=10)} == set(FAMILIES)
    assert len(load_dataset("tasks:comparisons:train")) == 1000
    with pytest.raises(ValueError, match="unknown task family"):
        load_dataset("tasks:algebra:train")
    with pytest.raises(ValueError, match="name a task family"):
        load_dataset("tasks")
    with pytest.raises(ValueError, match="split"):
        load_dataset("tasks:comparisons:test", limit=3)
