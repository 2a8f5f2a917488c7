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


def _rules(table: str) -> tuple[Rule, ...]:
    """Rules from a table of ``name | arg | expr | text`` lines."""
    return tuple(Rule(name, text, arg, expr)
                 for name, arg, expr, text in (map(str.strip, line.split("|")) for line in table.strip().splitlines()))


FUNCTION_RULES = _rules("""
    add         | int  | x + k               | x plus {k}
    sub         | int  | x - k               | x minus {k}
    mul         | int  | x * k               | x multiplied by {k}
    mod         | int  | x % k               | the remainder of x divided by {k}
    floordiv    | int  | x // k              | x divided by {k}, rounded down (integer division)
    gt          | int  | x > k               | True if x is greater than {k}, otherwise False
    max         | int  | max(x, k)           | the larger of x and {k}
    square_plus | int  | x * x + k           | x squared plus {k}
    repeat      | str  | s * k               | the string s repeated {k} times
    len_plus    | str  | len(s) + k          | the length of the string s plus {k}
    list_add    | list | [v + k for v in xs] | a list with {k} added to every element of the list xs
    list_sum    | list | sum(xs) + k         | the sum of the numbers in the list xs plus {k}
""")

STDIO_RULES = _rules("""
    add | int | x + k | the number plus {k}
    mul | int | x * k | the number multiplied by {k}
    sub | int | x - k | the number minus {k}
""")

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
