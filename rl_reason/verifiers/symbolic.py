"""Symbolic equivalence with math-verify and sympy. Runs only inside a verifier worker process
(``rl_reason.verifiers._worker``), which the caller kills on timeout: math-verify's own
``signal.alarm`` timeouts are turned off here (``parsing_timeout=None``,
``timeout_seconds=None``) because the process kill is the bound, and SIGALRM fails off the
main thread.

math-verify is lenient about approximations by design (``0.333333 == 1/3``, and its numeric
check rounds ``1/2^99 - 1/2^98`` to zero). The grading rules want exact answers, so decimals
are turned into exact rationals before comparing, and math-verify's numeric comparison is
replaced (in this process only) by an exact one with an optional relative tolerance.
"""

from __future__ import annotations

import functools
import logging

import sympy
from math_verify import grader, parse, verify
from math_verify.parser import ExprExtractionConfig, LatexExtractionConfig
from sympy import Float, MatrixBase, Number, Rational, UnevaluatedExpr
from sympy.core.relational import Equality, Relational

from rl_reason.verifiers.fastpath import normalize_latex
from rl_reason.verifiers.latex_lite import Unsupported, parse_structure

logging.getLogger("math_verify").setLevel(logging.CRITICAL)

# The math-verify internals replaced or used below; tested against math-verify 0.9.
for _name in ("sympy_numeric_eq", "sympy_symbolic_eq", "safe_sympy_doit", "INVERSE_RELATIONS"):
    if not hasattr(grader, _name):
        raise ImportError(f"math_verify.grader.{_name} is missing: this math-verify version is not supported")

_EXTRACTION = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
# Digits for deciding that two exact, non-rational constants (radicals, pi) are equal.
_EXACT_DIGITS = 60
_EXACT_REL = sympy.Float(10) ** -45
_rel_tol: float | None = None


def _pct_value(expr):
    if isinstance(expr, sympy.Mul) and len(expr.args) == 2 and expr.args[1] == UnevaluatedExpr(Rational(1, 100)):
        return expr.args[0]
    return None


def _numbers_equal(a, b) -> bool:
    """Exact equality of two constant expressions (relative tolerance when enabled)."""
    a = grader.safe_sympy_doit(a)
    b = grader.safe_sympy_doit(b)
    if a.free_symbols or b.free_symbols:
        return False
    if isinstance(a, Number) and isinstance(b, Number) and not _rel_tol:
        return bool(a == b)
    va, vb = a.evalf(_EXACT_DIGITS), b.evalf(_EXACT_DIGITS)
    if not (va.is_number and vb.is_number) or va.has(sympy.zoo, sympy.nan) or vb.has(sympy.zoo, sympy.nan):
        return False
    tol = sympy.Float(_rel_tol) if _rel_tol else _EXACT_REL
    return bool(abs(va - vb) <= tol * max(abs(va), abs(vb)))


def exact_numeric_eq(a, b, float_rounding: int, numeric_precision: int) -> bool:
    """Drop-in for ``math_verify.grader.sympy_numeric_eq`` that never rounds."""
    if isinstance(a, MatrixBase) and isinstance(b, MatrixBase):
        return a.shape == b.shape and all(exact_numeric_eq(x, y, 0, 0) for x, y in zip(a, b))
    try:
        pa, pb = _pct_value(a), _pct_value(b)
        if (pa is None) != (pb is None):  # 28% vs 28, or 28% vs 0.28
            pct, bare = (pa, b) if pa is not None else (pb, a)
            return _numbers_equal(pct, bare) or _numbers_equal(pct / 100, bare)
        return _numbers_equal(a, b)
    except Exception:
        return False


_simplify_eq = grader.sympy_symbolic_eq


def probing_symbolic_eq(a, b) -> bool:
    """``sympy_symbolic_eq`` that first evaluates: constants are decided by exact evaluation,
    and expressions that differ at a random rational point are different, which settles
    most wrong answers without an expensive ``simplify``."""
    if isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr):
        try:
            symbols = sorted(a.free_symbols | b.free_symbols, key=str)
            if not symbols:
                return _numbers_equal(a, b)
            for point in ((Rational(3, 7), Rational(5, 11)), (Rational(-13, 17), Rational(2, 19))):
                values = {x: point[k % 2] + k for k, x in enumerate(symbols)}
                va, vb = a.subs(values).evalf(_EXACT_DIGITS), b.subs(values).evalf(_EXACT_DIGITS)
                if va.is_finite and vb.is_finite and va.is_comparable and vb.is_comparable:
                    if abs(va - vb) > _EXACT_REL * max(abs(va), abs(vb), 1):
                        return False
        except Exception:
            pass
    return _simplify_eq(a, b)


grader.sympy_numeric_eq = exact_numeric_eq
grader.sympy_symbolic_eq = probing_symbolic_eq


def _exact(expr):
    """Decimals written in an answer denote exact values: 0.25 is 1/4, 0.33 is not 1/3."""
    if isinstance(expr, sympy.Basic) and not _rel_tol:
        floats = expr.atoms(Float)
        if floats:
            return expr.xreplace({f: Rational(str(f)) for f in floats})
    return expr


def _imaginary_exponent(expr):
    """``e^{i\\pi}``: an ``i`` in the exponent of ``e`` is the imaginary unit (math-verify reads a
    plain symbol), so Euler's identity evaluates."""
    if isinstance(expr, sympy.Basic):
        powers = [p for p in expr.atoms(sympy.exp, sympy.Pow) if isinstance(p, sympy.exp) or p.base == sympy.E]
        units = {x for p in powers for x in p.exp.free_symbols if x.name == "i"}
        if units:
            return expr.xreplace(dict.fromkeys(units, sympy.I))
    return expr


@functools.lru_cache(maxsize=4096)
def _parse(answer: str, rel_tol: float | None) -> tuple:
    # Cached: a batch grades many responses against the same gold. The key includes the
    # tolerance because it decides whether decimals are made exact.
    parsed = parse("\\boxed{" + normalize_latex(answer) + "}", _EXTRACTION, parsing_timeout=None)
    return tuple(_imaginary_exponent(_exact(x)) for x in parsed)


def _difference(rel):
    return rel.lhs - rel.rhs


def _relations_equivalent(g, p) -> bool:
    """Equations equal up to a nonzero factor; inequalities equal as solution sets or up to a
    positive factor (a negative one flips the direction)."""
    if not (isinstance(g, Relational) and isinstance(p, Relational)):
        return False
    if isinstance(g, Equality) != isinstance(p, Equality):
        return False
    if g.free_symbols != p.free_symbols or not g.free_symbols:
        return False
    ratio = sympy.simplify(_difference(g) / _difference(p))
    if ratio.free_symbols or not ratio.is_number or ratio == 0 or ratio.has(sympy.zoo, sympy.nan):
        ratio = None
    if isinstance(g, Equality):
        return ratio is not None
    flipped = type(g) is grader.INVERSE_RELATIONS.get(type(p))
    if ratio is not None and ratio.is_real:
        if (type(g) is type(p) and ratio > 0) or (flipped and ratio < 0):
            return True
    if len(g.free_symbols) == 1:
        (x,) = g.free_symbols
        x_real = sympy.Symbol(x.name, real=True)
        return bool(g.subs(x, x_real).as_set() == p.subs(x, x_real).as_set())
    return False


def _relations_equivalent_or_false(g, p) -> bool:
    try:
        return _relations_equivalent(g, p)
    except (TypeError, ValueError, NotImplementedError, AttributeError):  # e.g. x \in [a, b]
        return False


@functools.lru_cache(maxsize=4096)
def _structure_or_none(answer: str, rel_tol: float | None):
    try:
        return parse_structure(answer, exact_decimals=not rel_tol)
    except (Unsupported, ZeroDivisionError, RecursionError, TypeError, ValueError):
        return None


def _match_all(golds: list, preds: list, eq) -> bool:
    """Every gold element equals a distinct pred element and none is left over."""
    left = list(preds)
    for g in golds:
        hit = next((k for k, p in enumerate(left) if eq(g, p)), None)
        if hit is None:
            return False
        left.pop(hit)
    return not left


def _dedupe(items: list) -> list:
    out: list = []
    for x in items:
        if not any(probing_symbolic_eq(x, y) for y in out):
            out.append(x)
    return out


def structures_equal(g: tuple, p: tuple) -> bool | None:
    """Equality of two ``parse_structure`` shapes; ``None`` when the shapes differ in a way
    math-verify should judge (a tuple against a set, say)."""
    eq = probing_symbolic_eq
    if g[0] == "expr" and p[0] == "eq" and isinstance(p[1], sympy.Symbol):  # "x = 5" for 5
        return eq(g[1], p[2])
    if {g[0], p[0]} == {"expr", "set"}:  # a one-element set is its element
        s, e = (g, p) if g[0] == "set" else (p, g)
        return eq(s[1][0], e[1]) if len(_dedupe(s[1])) == 1 else False
    if g[0] != p[0]:
        return None
    kind = g[0]
    if kind == "expr":
        return eq(g[1], p[1])
    if kind == "eq":
        return _relations_equivalent_or_false(sympy.Eq(g[1], g[2], evaluate=False), sympy.Eq(p[1], p[2], evaluate=False))
    if kind == "seq":
        return g[1:3] == p[1:3] and len(g[3]) == len(p[3]) and all(eq(a, b) for a, b in zip(g[3], p[3]))
    if kind == "set":
        return _match_all(_dedupe(g[1]), _dedupe(p[1]), eq)
    if kind == "union":
        return _match_all(g[1], p[1], lambda a, b: bool(structures_equal(a, b)))
    if kind == "matrix":
        return len(g[1]) == len(p[1]) and len(g[1][0]) == len(p[1][0]) and all(
            eq(a, b) for ga, pa in zip(g[1], p[1]) for a, b in zip(ga, pa)
        )
    return None


def _undefined(shape) -> bool:
    """Whether a parsed structure holds complex infinity or NaN (what ``1/0`` parses to)."""
    if isinstance(shape, sympy.Basic):
        return shape.has(sympy.zoo, sympy.nan)
    if isinstance(shape, (tuple, list)):
        return any(_undefined(part) for part in shape)
    return False


def compare(pred: str, gold: str, rel_tol: float | None = None) -> tuple[str, str]:
    """``(status, reason)`` with status ``correct``, ``wrong`` or ``invalid_gold``."""
    global _rel_tol
    _rel_tol = rel_tol
    gold_shape = _structure_or_none(gold, rel_tol)
    if gold_shape is not None and _undefined(gold_shape):
        return "invalid_gold", f"gold {gold[:200]!r} is undefined (a division by zero)"
    pred_shape = _structure_or_none(pred, rel_tol) if gold_shape is not None else None
    if pred_shape is not None:  # both in the plain subset: no ANTLR parse needed
        same = structures_equal(gold_shape, pred_shape)
        if same is not None:
            return ("correct", "equal") if same else ("wrong", f"{pred[:200]!r} is not equal to {gold[:200]!r}")
    golds = list(_parse(gold, rel_tol))
    gold_exprs = [g for g in golds if not isinstance(g, str)]
    if not golds:
        return "invalid_gold", f"could not parse gold {gold!r}"
    preds = list(_parse(pred, rel_tol))
    if not preds:
        return "wrong", f"could not parse answer {pred!r}"
    pred_exprs = [p for p in preds if not isinstance(p, str)]
    if gold_exprs and pred_exprs and _relations_equivalent_or_false(gold_exprs[0], pred_exprs[0]):
        return "correct", "equivalent relations"
    # allow_set_relation_comp: "x < 2" answers "(-\\infty, 2)" as much as the reverse does.
    if verify(golds, preds, timeout_seconds=None, float_rounding=0, allow_set_relation_comp=True):
        return "correct", "symbolically equal"
    # Printing a parsed expression can itself blow up (10^{10^{10}}), so the reason quotes the input.
    return "wrong", f"{pred[:200]!r} is not equivalent to {gold[:200]!r}"
