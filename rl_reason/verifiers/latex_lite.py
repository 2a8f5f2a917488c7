"""A small recursive-descent LaTeX parser for plain algebraic answers, building sympy objects
directly (nothing is evaluated as code). Worker-only (imports sympy).

math-verify parses through an ANTLR grammar that costs tens of milliseconds per answer, which
dominates the symbolic path. Most answers that reach it are single expressions built from
numbers, variables, ``+ - * /``, powers, ``\\frac``, ``\\sqrt`` and ``\\pi``; those are parsed
here in well under a millisecond. Anything outside that subset (sets, tuples, intervals,
functions, ``e``, units, percent) raises ``Unsupported`` and goes to math-verify.

``parse_structure`` adds the usual answer shapes around such expressions: tuples and
intervals (brackets kept), comma lists and ``\\{...\\}`` sets, unions of intervals, ``\\pm``
pairs, column/row matrices and equations.
"""

from __future__ import annotations

import re

import sympy
from sympy import Rational

from rl_reason.verifiers.fastpath import normalize_latex


class Unsupported(ValueError):
    """The answer is outside the subset this parser handles."""


_TOKEN_RE = re.compile(r"\s*(\d+\.\d+|\.\d+|\d+|\\[A-Za-z]+|[A-Za-z]|[-+*/^(){}])")
# Letters that are constants or ambiguous in math-verify's reading: left to it.
_RESERVED_LETTERS = set("eEIjO")
_MAX_TOKENS = 400


def _tokenize(s: str) -> list[str]:
    tokens, pos = [], 0
    s = s.strip()
    while pos < len(s):
        m = _TOKEN_RE.match(s, pos)
        if not m:
            raise Unsupported(f"character {s[pos]!r}")
        tokens.append(m.group(1))
        pos = m.end()
        if len(tokens) > _MAX_TOKENS:
            raise Unsupported("too long")
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], exact_decimals: bool):
        self.toks = tokens
        self.i = 0
        self.exact = exact_decimals
        self.symbols: dict[str, sympy.Symbol] = {}

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise Unsupported(f"expected {expected or 'more'}, got {tok!r}")
        self.i += 1
        return tok

    def parse(self):
        expr = self.expr()
        if self.peek() is not None:
            raise Unsupported(f"unexpected {self.peek()!r}")
        return expr

    def expr(self):
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term()
            value = value + rhs if op == "+" else value - rhs
        return value

    def _starts_atom(self, tok: str | None) -> bool:
        return tok is not None and (tok[0].isdigit() or tok[0] == "." or tok.isalpha() or tok in ("(", "{", "\\frac", "\\sqrt", "\\pi", "\\infty"))

    def term(self):
        value = self.unary()
        while True:
            tok = self.peek()
            if tok in ("*", "\\cdot", "\\times"):
                self.take()
                value = value * self.unary()
            elif tok == "/":
                self.take()
                value = value / self.unary()
            elif self._starts_atom(tok):
                if (tok[0].isdigit() or tok == "\\frac") and self.toks[self.i - 1][0].isdigit():
                    # "2 3" or "2\frac{1}{2}": a mixed number or a typo, not a product
                    raise Unsupported("a number followed by a number or fraction")
                value = value * self.power()
            else:
                return value

    def unary(self):
        if self.peek() == "-":
            self.take()
            return -self.unary()
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek() == "^":
            self.take()
            return base ** self.argument()
        return base

    def argument(self):
        """A command argument: a braced group, or a single token (``\\sqrt2``, ``x^23`` = x^2 * 3)."""
        tok = self.peek()
        if tok == "{":
            return self.group()
        if tok is not None and tok.isdigit() and len(tok) > 1:
            self.toks[self.i] = tok[1:]
            return sympy.Integer(tok[0])
        return self.atom()

    def group(self):
        self.take("{")
        value = self.expr()
        self.take("}")
        return value

    def atom(self):
        tok = self.take()
        if tok[0].isdigit() or tok[0] == ".":
            if "." in tok:
                return Rational(tok) if self.exact else sympy.Float(tok)
            return sympy.Integer(tok)
        if tok == "(":
            value = self.expr()
            self.take(")")
            return value
        if tok == "{":
            self.i -= 1
            return self.group()
        if tok == "\\frac":
            num = self.argument()
            return num / self.argument()
        if tok == "\\sqrt":
            return sympy.sqrt(self.argument())
        if tok == "\\pi":
            return sympy.pi
        if tok == "\\infty":
            return sympy.oo
        if tok == "i":  # the imaginary unit, as math-verify reads it in complex answers
            return sympy.I
        if tok.isalpha() and len(tok) == 1 and tok not in _RESERVED_LETTERS:
            return self.symbols.setdefault(tok, sympy.Symbol(tok))
        raise Unsupported(f"token {tok!r}")


def parse_lite(answer: str, exact_decimals: bool = True):
    """A sympy expression for a plain algebraic answer; raises ``Unsupported`` otherwise."""
    return _Parser(_tokenize(normalize_latex(answer)), exact_decimals).parse()


def _split_top_level(s: str, sep: str) -> list[str]:
    """Split on ``sep`` outside any brackets (``\\{`` and ``\\}`` count as brackets)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        if s.startswith("\\{", i) or s.startswith("\\}", i):
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        ch = s[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            start = i + len(sep)
            i = start
            continue
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _wraps_whole(s: str) -> bool:
    """True when the bracket opening ``s`` closes at its very end."""
    depth = 0
    for i, ch in enumerate(s):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0:
            return i == len(s) - 1
    return False


_MATRIX_RE = re.compile(r"^\\begin\{([pbv]?matrix)\}(.*)\\end\{\1\}$", re.S)


def parse_structure(answer: str, exact_decimals: bool = True) -> tuple:
    """A comparable shape: ``("expr", e)``, ``("eq", lhs, rhs)``, ``("seq", "(", ")", [e..])``,
    ``("set", [e..])``, ``("union", [seq..])`` or ``("matrix", [[e..]..])``; raises
    ``Unsupported`` for anything else."""
    s = normalize_latex(answer)
    expr = lambda t: _Parser(_tokenize(t), exact_decimals).parse()  # noqa: E731
    m = _MATRIX_RE.match(s)
    if m:
        rows = [[expr(c) for c in _split_top_level(r, "&")] for r in m.group(2).split("\\\\") if r.strip()]
        if len({len(r) for r in rows}) != 1:
            raise Unsupported("ragged matrix")
        return ("matrix", rows)
    if "\\cup" in s:
        parts = [parse_structure(p, exact_decimals) for p in _split_top_level(s, "\\cup")]
        if not all(p[0] == "seq" and len(p[3]) == 2 for p in parts):
            raise Unsupported("union of non-intervals")
        return ("union", parts)
    if s.startswith("\\{") and s.endswith("\\}"):
        return ("set", [e for p in _split_top_level(s[2:-2], ",") for e in _plus_minus(p, expr)])
    if s[:1] in "([" and s[-1:] in ")]" and _wraps_whole(s):
        items = _split_top_level(s[1:-1], ",")
        if len(items) > 1:
            return ("seq", s[0], s[-1], [expr(p) for p in items])
    items = _split_top_level(s, ",")
    if len(items) > 1 or "\\pm" in s:
        return ("set", [e for p in items for e in _plus_minus(p, expr)])
    sides = _split_top_level(s, "=")
    if len(sides) == 2:
        return ("eq", expr(sides[0]), expr(sides[1]))
    return ("expr", expr(s))


def _plus_minus(s: str, expr) -> list:
    """``a \\pm b`` -> [a + b, a - b]."""
    parts = _split_top_level(s, "\\pm")
    if len(parts) == 1:
        return [expr(s)]
    if len(parts) != 2:
        raise Unsupported("several \\pm")
    a, b = expr(parts[0]) if parts[0] else sympy.Integer(0), expr(parts[1])
    return [a + b, a - b]
