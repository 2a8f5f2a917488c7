"""Cheap guards run in the caller before any symbolic work (stdlib only, linear time).

sympy evaluates integer powers and factorials eagerly, so ``9^{9^{9^{9}}}`` or
``(10^{6})!`` would run a worker into its timeout. Such terms are found here from the text: a
numeric power tower or factorial whose value would have more than ``MAX_DIGITS`` digits is
replaced, in both answers, by an opaque symbol (the same term spelled the same way gets the same
symbol). The comparison then stays exact and fast: ``10^{10^{10^{10}}} - 10^{10^{10^{10}}} + 5``
equals ``5``, ``9^{9^{9^{9}}}`` is not ``3``. Answers nested deeper than ``MAX_DEPTH`` brackets
are rejected outright.
"""

from __future__ import annotations

import math
import re

from rl_reason.verifiers.fastpath import normalize_latex

MAX_DIGITS = 10_000
MAX_DEPTH = 40
_POWER_START_RE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*\^\s*(?=[{\d])")
_FACTORIAL_RE = re.compile(r"(?<![\w.])(\d+)\s*!|(\((?:[^()]{0,200})\))\s*!")
_NUMBER_RE = re.compile(r"\s*\{?\s*(\d+(?:\.\d+)?)\s*\}?\s*")


def _group_end(s: str, i: int) -> int | None:
    """Index after the brace group starting at ``s[i] == "{"``, or None when unbalanced."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "{":
            depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return None


def _log10(s: str) -> float | None:
    """log10 of a number or numeric power tower written in ``s`` (``inf`` when even that
    overflows); None for anything else."""
    s = s.strip()
    m = _NUMBER_RE.fullmatch(s)
    if m:
        v = float(m.group(1))
        return math.log10(v) if v > 0 else None
    if s.startswith("(") and s.endswith(")"):
        return _log10(s[1:-1])
    if s.startswith("{") and _group_end(s, 0) == len(s):
        return _log10(s[1:-1])
    m = _POWER_START_RE.match(s)
    if not m:
        return None
    base = float(m.group(1))
    exp_text = s[m.end() :]
    exp = _log10(exp_text) if exp_text[:1] == "{" else (_log10(exp_text[:1]) if len(exp_text) == 1 else None)
    if exp is None or base <= 1:
        return None
    if exp > 300:
        return math.inf
    return 10**exp * math.log10(base)


def _huge_terms(s: str) -> list[tuple[int, int]]:
    """Spans of power towers and factorials too large to evaluate, outermost first."""
    spans: list[tuple[int, int]] = []
    for m in _POWER_START_RE.finditer(s):
        if spans and m.start() < spans[-1][1]:
            continue
        j = m.end()
        end = _group_end(s, j) if s[j] == "{" else j + 1
        if end is not None:
            size = _log10(s[m.start() : end])
            if size is not None and size > MAX_DIGITS:
                spans.append((m.start(), end))
    for m in _FACTORIAL_RE.finditer(s):
        if any(a <= m.start() < b for a, b in spans):
            continue
        arg = m.group(1) or m.group(2)
        size = _log10(arg)
        if size is not None and size > math.log10(MAX_DIGITS):
            spans.append((m.start(), m.end()))
    return sorted(spans)


def wraps_whole(s: str, open_: str = "(", close: str = ")") -> bool:
    """Whether the bracket opening ``s`` closes at its very end (``(a)(b)`` is not wrapped)."""
    if not (s.startswith(open_) and s.endswith(close)):
        return False
    depth = 0
    for i, ch in enumerate(s):
        depth += ch == open_
        depth -= ch == close
        if depth == 0:
            return i == len(s) - 1
    return False


def unwrap(s: str) -> str:
    """``((((x))))`` -> ``x``: parentheses around the whole answer never change its value (a
    tuple or an interval keeps them)."""
    s = s.strip()
    while wraps_whole(s) and "," not in s[1:-1]:
        s = s[1:-1].strip()
    return s


def nesting_depth(s: str) -> int:
    depth = deepest = 0
    for ch in s:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def defuse(pred: str, gold: str) -> tuple[str, str, int]:
    """``pred`` and ``gold`` with every huge term replaced by an opaque symbol, and how many
    distinct terms were replaced."""
    names: dict[str, str] = {}

    def rewrite(s: str) -> str:
        spans = _huge_terms(s)
        if not spans:
            s = normalize_latex(s)  # "\\left(10^{6}\\right)!"
            spans = _huge_terms(s)
        if not spans:
            return s
        out, last = [], 0
        for a, b in spans:
            key = re.sub(r"\s+", "", s[a:b])
            out += [s[last:a], names.setdefault(key, f"\\mho_{{{len(names) + 1}}}")]
            last = b
        return "".join([*out, s[last:]])

    return rewrite(pred), rewrite(gold), len(names)
