"""Cheap, exact comparisons decided in the caller without sympy or a worker round trip.

Most rewards compare plain numbers: integers, fractions, exact decimals, percentages, numbers
with thousands separators, units or degree signs. Those are parsed here to ``Fraction`` and
compared exactly. Anything else (radicals, sets, expressions) returns ``None`` and goes to the
symbolic path. A wrong "False" here would be a false negative, so every parser below only
accepts strings it fully understands.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import NamedTuple

from rl_reason.verifiers.extract import NUMBER_WORDS

_UNICODE = {
    "−": "-", "–": "-", "π": "\\pi ", "∞": "\\infty ", "×": "\\times ", "·": "\\cdot ", "÷": "\\div ",
    "≤": "\\le ", "≥": "\\ge ", "≠": "\\ne ", "°": "^\\circ", "∪": "\\cup ", "∩": "\\cap ", "…": "\\ldots ",
    "½": "\\frac{1}{2}", "¼": "\\frac{1}{4}", "¾": "\\frac{3}{4}", "⅓": "\\frac{1}{3}",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
_SQRT_RE = re.compile(r"√\s*(\{[^{}]*\}|\([^()]*\)|[0-9.]+|[A-Za-z])")
_NEG_SPACE_RE = re.compile(r"(?<!\\)\\!\s*")
_SPACING_RE = re.compile(r"(?<!\\)\\[!,;:> ]|\\q?quad\b|~|\\left\b|\\right\b|\\displaystyle\b")
_FRAC_SHORT_RE = re.compile(r"\\[dtc]?frac\s*(\d)\s*(\d)")
_FRAC_SHORT_NUM_RE = re.compile(r"\\[dtc]?frac\s*(\d)\s*\{")
_FRAC_SHORT_DEN_RE = re.compile(r"(\\[dtc]?frac\s*\{[^{}]*\})\s*(\d)")
_FRAC_CMD_RE = re.compile(r"\\[dtc]frac\b")
_DEGREE_RE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\degree\b|\s*\bdegrees?\b", re.I)
_PERCENT_RE = re.compile(r"\s*(?:\\%|%|\bper\s*cent\b|\\text\{\s*(?:\\%|%|per\s*cent)\s*\})\s*$", re.I)
_TEXT_WRAP_RE = re.compile(r"\\(?:text|mbox|textrm|mathrm|textbf|mathbf)\s*\{([^{}]*)\}")
_UNIT_TAIL_RE = re.compile(r"(?:\s*\\(?:text|mbox|textrm|mathrm|textbf|mathbf)\s*\{\s*[A-Za-z][A-Za-z .]*\}(?:\^\{?\d\}?)?|\s+[A-Za-z]{2,}(?:\s+[A-Za-z]+)*\.?(?:\^\{?\d\}?)?)\s*$")
_ASSIGN_RE = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(?=[^=]*$)")
_THOUSANDS_RE = re.compile(r"^([+-]?\d{1,3})((?:(?:\{,\}|,)\d{3})+)(\.\d+)?$")
_INT_OR_DEC_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
_FRAC_RE = re.compile(r"^([+-]?)\\frac\{\s*([+-]?\d+)\s*\}\{\s*([+-]?\d+)\s*\}$")
_MIXED_RE = re.compile(r"^([+-]?)(\d+)\\frac\{(\d+)\}\{(\d+)\}$")
_SLASH_RE = re.compile(r"^([+-]?\d+)\s*/\s*(\d+)$")
_BASE_RE = re.compile(r"^(\d+)(?:_\{?(\d+)\}?)?$")
_MIXED_PLAIN_RE = re.compile(r"^([+-]?)(\d+)\s+(\d+)\s*/\s*(\d+)$")
_SPACED_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(?: \d{3})+(?:\.\d+)?$")
_REPEATING_RE = re.compile(r"^([+-]?)(\d*)\.(\d*)\\overline\{(\d+)\}$")
_DECIMAL_COMMA_RE = re.compile(r"^([+-]?\d+),(\d{1,2})$|^([+-]?0),(\d+)$")
# A decimal written with this many digits after the point is a float rendering of a value
# ("0.0833333333333333" for 1/12), not a rounded answer.
_FLOAT_RENDERING_DIGITS = 10
_FLOAT_RENDERING_RE = re.compile(rf"^[+-]?\d*\.(\d{{{_FLOAT_RENDERING_DIGITS},}})$")
_MC_RE = re.compile(r"^\(?\s*([A-E])\s*\)?\s*[.:]?(?:\s|$)")


def normalize_latex(s: str) -> str:
    """Spelling-only rewrites shared by both paths: unicode math, spacing commands,
    ``\\dfrac``/``\\tfrac``/``\\frac12``, ``\\left``/``\\right``."""
    s = _SQRT_RE.sub(lambda m: "\\sqrt{" + m.group(1).strip("{}()") + "}", s)
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group()], s)
    s = _NEG_SPACE_RE.sub("", s)  # "32,\! 349": a negative space undoes the space after it
    s = _SPACING_RE.sub(" ", s)
    s = _FRAC_SHORT_RE.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_SHORT_NUM_RE.sub(r"\\frac{\1}{", s)
    s = _FRAC_SHORT_DEN_RE.sub(r"\1{\2}", s)
    s = _FRAC_CMD_RE.sub(r"\\frac", s)
    return re.sub(r"\s+", " ", s).strip()


class ExactNumber(NamedTuple):
    value: Fraction
    percent: bool
    unit: str  # canonical unit ("inch^2"), "" when none was written


def parse_exact_number(s: str) -> ExactNumber | None:
    """``"1{,}000"``, ``"-\\frac{3}{4}"``, ``"0.25"``, ``"28\\%"``, ``"90^\\circ"``,
    ``"x = 5"``, ``"\\$18.90"``, ``"5 \\text{ cm}"`` -> an exact value; anything else -> None."""
    s = normalize_latex(s)
    s = _ASSIGN_RE.sub("", s)
    s = s.replace("\\$", "").replace("$", "")
    percent = bool(_PERCENT_RE.search(s))
    s = _PERCENT_RE.sub("", s)
    unit_m = _UNIT_TAIL_RE.search(s)
    unit = _canonical_unit(unit_m.group()) if unit_m else ""
    s = s[: unit_m.start()] if unit_m else s
    s = _DEGREE_RE.sub("", s)
    s = _TEXT_WRAP_RE.sub(r"\1", s).strip()
    word = NUMBER_WORDS.get(s.lower())
    if word is not None:
        return ExactNumber(Fraction(word), percent, unit)
    m = _MIXED_PLAIN_RE.match(s)
    if m:  # "4 4/9" is four and four ninths
        if not int(m.group(4)):
            return None
        value = int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))
        return ExactNumber(-value if m.group(1) == "-" else value, percent, unit)
    if _SPACED_THOUSANDS_RE.match(s):  # "1 000": the space groups thousands
        s = s.replace(" ", "")
    elif re.search(r"\d[\s,]*\s[\s,]*\d", s.replace("{,}", ",")):
        return None  # "32, 349" or "2 3": two numbers, not one
    s = s.replace(" ", "")
    m = _REPEATING_RE.match(s)
    if m:  # "0.\overline{3}" is 1/3
        sign, whole, fixed, rep = m.groups()
        value = Fraction(int(whole or 0)) + Fraction(int(fixed or 0), 10 ** len(fixed)) + Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
        return ExactNumber(-value if sign == "-" else value, percent, unit)
    if s.startswith("{") and s.endswith("}") and s.count("{") == 1:
        s = s[1:-1]
    m = _THOUSANDS_RE.match(s)
    if m:
        s = m.group(1) + m.group(2).replace("{,}", "").replace(",", "") + (m.group(3) or "")
    try:
        if _INT_OR_DEC_RE.match(s):
            return ExactNumber(Fraction(s), percent, unit)
        m = _MIXED_RE.match(s)
        if m:  # "2\frac{1}{4}" is two and a quarter
            value = int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))
            return ExactNumber(-value if m.group(1) == "-" else value, percent, unit)
        m = _FRAC_RE.match(s)
        if m:
            value = Fraction(int(m.group(2)), int(m.group(3)))
            return ExactNumber(-value if m.group(1) == "-" else value, percent, unit)
        m = _SLASH_RE.match(s)
        if m:
            return ExactNumber(Fraction(int(m.group(1)), int(m.group(2))), percent, unit)
    except ZeroDivisionError:
        return None
    return None


def _canonical_unit(tail: str) -> str:
    """``"\\mbox{ inches}^2"`` -> ``"inch^2"``: case, spacing, wrappers and plurals dropped."""
    words = re.sub(r"\\[A-Za-z]+|[{}\s.]", "", _TEXT_WRAP_RE.sub(r"\1", tail)).lower()
    base, _, power = words.partition("^")
    base = re.sub(r"(?<=[a-z]{3})e?s$", "", base)
    return base + (f"^{power}" if power and power != "1" else "")


def numbers_equal(pred: ExactNumber, gold: ExactNumber, rel_tol: float | None = None) -> bool:
    """Exact equality; a percent on one side also matches the bare number (``28\\%`` vs
    ``28``) or the fraction (``28\\%`` vs ``0.28``), but two percents compare as they are."""

    def close(a: Fraction, b: Fraction) -> bool:
        if rel_tol:
            return abs(a - b) <= Fraction(rel_tol) * max(abs(a), abs(b))
        return a == b

    if pred.percent == gold.percent:
        return close(pred.value, gold.value)
    pct, bare = (pred, gold) if pred.percent else (gold, pred)
    return close(pct.value, bare.value) or close(pct.value / 100, bare.value)


def choice_letter(s: str) -> str | None:
    """A multiple-choice letter in its usual spellings: ``C``, ``(C)``, ``\\text{(C)}``,
    ``C) 42``, ``\\textbf{(C) } 42``."""
    s = _TEXT_WRAP_RE.sub(r"\1", normalize_latex(s)).strip().strip("$").strip()
    m = _MC_RE.match(s + " ")
    return m.group(1) if m else None


def text_answer(s: str) -> str | None:
    """A purely verbal answer (``\\text{Evelyn}``, ``east``) in a canonical spelling."""
    s = _TEXT_WRAP_RE.sub(r"\1", normalize_latex(s)).strip().strip("$").strip()
    if re.fullmatch(r"[A-Za-z][A-Za-z' -]*", s) and len(s) > 1:
        return " ".join(s.lower().split())
    return None


def _strip_outer_parens(s: str) -> str:
    """``(x+1)`` -> ``x+1``, but not ``(1, 2)`` (a tuple or interval) nor ``(a)(b)``."""
    if not (s.startswith("(") and s.endswith(")")):
        return s
    depth = 0
    for i, ch in enumerate(s):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and i < len(s) - 1:
            return s
        if ch == "," and depth == 1:
            return s
    return s[1:-1]


def canonical_spelling(s: str) -> str:
    """One spelling per LaTeX string up to spacing, delimiters and outer parentheses; two
    answers with the same canonical spelling are the same expression."""
    s = normalize_latex(s)
    # Spaces matter only between letters ("\pi x" is not "\pix") and digits ("2 3" is not "23").
    s = re.sub(r"(?<=\d)\s+(?=\d)", "\x00", s)
    s = re.sub(r"(?<![A-Za-z])\s+|\s+(?![A-Za-z])", "", s)
    return _strip_outer_parens(s)


def _decimal_commas(pred: str, gold: str) -> tuple[str, str]:
    """``"2,74"`` against ``"2.74"``: a comma between digits is a decimal comma when it cannot
    be a thousands separator (not three digits after it, or a leading ``0,``) and the other
    side writes a decimal point."""
    out = []
    for this, other in ((pred, gold), (gold, pred)):
        m = _DECIMAL_COMMA_RE.match(this.strip())
        if m and re.fullmatch(r"\s*[+-]?\d*\.\d+\s*", other):
            this = ".".join(g for g in m.groups() if g is not None)
        out.append(this)
    return out[0], out[1]


def fast_compare(pred: str, gold: str, rel_tol: float | None = None) -> tuple[bool, str] | None:
    """``(correct, reason)`` when both sides are the same spelling, plain numbers, choice
    letters or words; ``None`` when the symbolic path must decide."""
    if canonical_spelling(pred) == canonical_spelling(gold):
        return True, "same expression"
    gold_letter = choice_letter(gold) if len(gold) < 40 else None
    if gold_letter and not re.search(r"\d", gold):
        pred_letter = choice_letter(pred)
        if pred_letter:
            return pred_letter == gold_letter, f"choice {pred_letter} vs {gold_letter}"
    g_base = _BASE_RE.match(canonical_spelling(gold))
    if g_base and g_base.group(2):  # "52_8": the digits in that base; "52" counts, "42" (its decimal value) does not
        p_base = _BASE_RE.match(canonical_spelling(pred))
        if p_base:
            ok = p_base.group(1) == g_base.group(1) and p_base.group(2) in (None, g_base.group(2))
            return ok, "same base-" + g_base.group(2) + " digits" if ok else "different base-b numbers"
    pred, gold = _decimal_commas(pred, gold)
    g = parse_exact_number(gold)
    if g is not None:
        p = parse_exact_number(pred)
        if p is not None:
            if p.unit and g.unit and p.unit != g.unit:
                return False, f"different units: {p.unit} vs {g.unit}"
            ok = numbers_equal(p, g, rel_tol)
            rendering = _FLOAT_RENDERING_RE.match(pred.strip())
            if not ok and rendering and abs(p.value - g.value) < Fraction(1, 10 ** (len(rendering.group(1)) - 1)):
                return True, "a float rendering of the exact value"
            return ok, ("equal numbers" if ok else f"{p.value}{'%' if p.percent else ''} != {g.value}{'%' if g.percent else ''}")
        return None
    g_text = text_answer(gold)
    if g_text is not None:
        p_text = text_answer(pred)
        if p_text is not None:
            return p_text == g_text, "same words" if p_text == g_text else f"'{p_text}' != '{g_text}'"
    return None
