"""Generated small programming tasks with sandbox tests: the code quickstart's training set.

Each task is one rule with one integer parameter ``k`` ("returns x plus 7"), stated as a Python
function ``f`` to write (``call`` tests) or as a program reading standard input (``stdio``
tests). A task is the pair (rule, k); the train and held-out splits never share one (a stable
hash of the pair decides its split), so held-out tasks are unseen rule/parameter pairs of the
same rules. The rules are sized for the bundled SmolLM2-135M: one-line arithmetic, comparison,
string and list rules, of which it solves some greedily and not others.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import Any

from rl_reason.data_pipelines.schema import Example

HELDOUT_SHARE = 0.2
K_RANGE = range(2, 31)
CASES = 4  # test inputs per task


@dataclass(frozen=True)
class Rule:
    """One task rule. ``text`` states it (after "returns" / "prints"); ``expr`` computes it from
    the argument (``x``, ``s`` or ``xs`` by ``arg``) and ``k``: the expected outputs and the
    reference solution both come from it."""

    name: str
    text: str
    arg: str  # "int", "str" or "list": what the tests pass in
    expr: str

    def apply(self, value: Any, k: int) -> Any:
        # Our own constant expressions, evaluated on the host to compute expected outputs.
        names = {"__builtins__": {"max": max, "len": len, "sum": sum}, _PARAM[self.arg]: value, "k": k}
        return eval(self.expr, names)


FUNCTION_RULES = (
    Rule("add", "x plus {k}", "int", "x + k"),
    Rule("sub", "x minus {k}", "int", "x - k"),
    Rule("mul", "x multiplied by {k}", "int", "x * k"),
    Rule("mod", "the remainder of x divided by {k}", "int", "x % k"),
    Rule("floordiv", "x divided by {k}, rounded down (integer division)", "int", "x // k"),
    Rule("gt", "True if x is greater than {k}, otherwise False", "int", "x > k"),
    Rule("max", "the larger of x and {k}", "int", "max(x, k)"),
    Rule("square_plus", "x squared plus {k}", "int", "x * x + k"),
    Rule("repeat", "the string s repeated {k} times", "str", "s * k"),
    Rule("len_plus", "the length of the string s plus {k}", "str", "len(s) + k"),
    Rule("list_add", "a list with {k} added to every element of the list xs", "list", "[v + k for v in xs]"),
    Rule("list_sum", "the sum of the numbers in the list xs plus {k}", "list", "sum(xs) + k"),
)

STDIO_RULES = (
    Rule("add", "the number plus {k}", "int", "x + k"),
    Rule("mul", "the number multiplied by {k}", "int", "x * k"),
    Rule("sub", "the number minus {k}", "int", "x - k"),
)

STYLES = ("function", "stdio")
_PARAM = {"int": "x", "str": "s", "list": "xs"}
_WORDS = ("cat", "sun", "ab", "tree", "x", "hello", "go", "data")


def _inputs(rng: random.Random, arg: str, k: int) -> list[Any]:
    if arg == "int":  # half at most k, half above: comparisons with k are tested both ways
        values = rng.sample(range(k - 25, k + 1), CASES // 2) + rng.sample(range(k + 1, k + 40), CASES - CASES // 2)
        rng.shuffle(values)
        return values
    if arg == "str":
        return rng.sample(_WORDS, CASES)
    return [[rng.randint(-9, 20) for _ in range(rng.randint(1, 4))] for _ in range(CASES)]


def _task(style: str, rule: Rule, k: int, rng: random.Random) -> tuple[str, list[dict[str, Any]]]:
    inputs = _inputs(rng, rule.arg, k)
    statement = rule.text.format(k=k)
    if style == "function":
        param = _PARAM[rule.arg]
        prompt = f"Write a Python function `f({param})` that returns {statement}."
        outputs = [rule.apply(x, k) for x in inputs]
        return prompt, [{"kind": "call", "fn_name": "f", "inputs": [[x] for x in inputs], "outputs": outputs}]
    prompt = f"Write a Python program that reads one integer from standard input and prints {statement}."
    return prompt, [{"kind": "stdio", "input": f"{x}\n", "output": f"{rule.apply(x, k)}\n"} for x in inputs]


def reference_solution(style: str, rule: Rule, k: int) -> str:
    """A correct program for the task (the tests' own check that they are right)."""
    if style == "function":
        return f"def f({_PARAM[rule.arg]}):\n    k = {k}\n    return {rule.expr}\n"
    return f"k = {k}\nx = int(input())\nprint({rule.expr})\n"


def _all_keys(styles: tuple[str, ...]) -> list[tuple[str, str, int]]:
    rules = {"function": FUNCTION_RULES, "stdio": STDIO_RULES}
    return [(style, rule.name, k) for style in styles for rule in rules[style] for k in K_RANGE]


def hash_bucket(key: tuple[str, str, int]) -> float:
    """A stable value in [0, 1) per task (Python's ``hash`` of str is salted per process)."""
    return zlib.crc32(repr(key).encode()) / 2**32


def split_keys(split: str, styles: tuple[str, ...] = STYLES) -> list[tuple[str, str, int]]:
    """Every task key of ``split`` in a fixed order; the two splits partition ``_all_keys``."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    return [key for key in _all_keys(styles) if (hash_bucket(key) < HELDOUT_SHARE) == (split == "heldout")]


def make_code_tasks(n: int | None = None, split: str = "train", seed: int = 0,
                    styles: tuple[str, ...] = STYLES) -> list[Example]:
    """``n`` tasks of ``split`` (all of them when ``n`` is None) as Examples with sandbox tests,
    in a seeded order; test inputs are drawn per task from the same seed."""
    for style in styles:
        if style not in STYLES:
            raise ValueError(f"unknown task style {style!r}; choose from {STYLES}")
    keys = split_keys(split, tuple(styles))
    if n is not None and n > len(keys):
        raise ValueError(f"only {len(keys)} distinct {split} code tasks exist, asked for {n}")
    random.Random(f"code-tasks-{seed}-{split}").shuffle(keys)
    rules = {("function", r.name): r for r in FUNCTION_RULES} | {("stdio", r.name): r for r in STDIO_RULES}
    out = []
    for style, name, k in keys[:n]:
        prompt, tests = _task(style, rules[style, name], k, random.Random(f"code-task-{seed}-{style}-{name}-{k}"))
        out.append(Example(id=f"code-{split}-{style}-{name}-{k}", prompt=prompt, tests=tests, source="code_tasks",
                           metadata={"style": style, "rule": name}))
    return out
