"""Find the final answer a response commits to (stdlib only, linear time, runs in the caller).

The rule: the answer is the LAST committed one, where a commitment is a ``\\boxed{}`` /
``\\fbox{}``, a "final answer is ..." / "the answer is ..." / "Answer: ..." statement, a GSM8K
``#### n`` line, or a bold span ending the response. When the response closes a ``<think>``
block, only the text after the last ``</think>`` counts: a box the model wrote while thinking
and then abandoned must not override what it states afterwards. A response with no commitment
gives ``None``: guessing from the last number of a long text rewards rambling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# An answer longer than this is not a final answer but a pasted derivation.
MAX_ANSWER_CHARS = 1000

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b\s*")
_BRACE_RE = re.compile(r"\\.|[{}]", re.S)
_PHRASE_RE = re.compile(
    r"(?:\bfinal\s+answer|\bthe\s+answer|\bcorrect\s+answer|\bcorrect\s+(?:option|choice)|^[ \t>#*]*answer)"
    r"\s*(?:\*\*)?\s*(?:is\s*:?|:)[ \t]*(?:\*\*)?[ \t]*",
    re.I | re.M,
)
_GSM8K_RE = re.compile(r"^[ \t]*####[ \t]*(\S[^\n]*)", re.M)
_BOLD_RE = re.compile(r"\*\*([^*\n]{1,300})\*\*")
# Sentence end inside a phrase answer: a period, then space and a capital, or a line end.
_SENTENCE_END_RE = re.compile(r"\.(?=\s+[A-Z])|\.\s*$|\n", re.M)
_HOPE_RE = re.compile(r"\s*I hope it is correct\.?\s*$", re.I)
# What may sit between two boxes that together state one multi-part (or hedged) answer.
_BOX_JOINER_RE = re.compile(r"^[\s$,;]*(?:(?:or|and|\\text\{\s*(?:or|and)\s*\}|\\quad|\\qquad)[\s$,;]*)?$", re.I)
_TOP_LEVEL_OR_RE = re.compile(r"\s+or\s+|\\(?:text|mbox|textrm)\{\s*or\s*\}|\\quad\s*\\text\{or\}", re.I)


@dataclass(frozen=True)
class Extraction:
    """The committed answer (``None`` when there is none), how it was found, and, when the
    response commits to several values at once (``\\boxed{2} or \\boxed{3}``), the parts."""

    answer: str | None
    how: str
    parts: tuple[str, ...] = field(default=())


def _brace_matches(text: str) -> dict[int, int]:
    """Index of every unescaped ``{`` -> index of its matching ``}``, in one pass."""
    matches: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACE_RE.finditer(text):
        tok = m.group()
        if tok == "{":
            stack.append(m.start())
        elif tok == "}" and stack:
            matches[stack.pop()] = m.start()
    return matches


def find_boxes(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every well-formed box, in order of appearance."""
    out = []
    braces = None
    for m in _BOX_RE.finditer(text):
        i = m.end()
        if i < len(text) and text[i] == "{":
            if braces is None:
                braces = _brace_matches(text)
            j = braces.get(i)
            if j is None:  # unclosed box: malformed, not a commitment
                continue
            out.append((m.start(), j + 1, text[i + 1 : j]))
        else:  # "\boxed 5": the argument is the next token
            tok = re.match(r"[^\s$.,]+", text[i:])
            if tok:
                out.append((m.start(), i + tok.end(), tok.group()))
    return out


def _delimited_math(s: str) -> str | None:
    """If ``s`` starts with a math delimiter, the math inside it (possibly spanning lines)."""
    for open_, close in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")):
        if s.startswith(open_):
            end = s.find(close, len(open_))
            while end > 0 and close == "$" and s[end - 1] == "\\":  # "\$" is a dollar sign
                end = s.find(close, end + 1)
            return s[len(open_) : end] if end > 0 else None
    return None


def _phrase_answer(after: str) -> str:
    """The answer stated right after a commitment phrase: delimited math, else up to the
    end of the sentence."""
    after = after[: MAX_ANSWER_CHARS * 2]
    math = _delimited_math(after.lstrip())
    if math is not None:
        return math
    m = _SENTENCE_END_RE.search(after)
    return after[: m.start()] if m else after


def clean_answer(s: str) -> str:
    """Strip wrappers that never change the value: math delimiters, bold, trailing period."""
    s = _HOPE_RE.sub("", s.strip())
    for _ in range(3):
        prev = s
        s = s.strip().strip("*").strip()
        if s.endswith("."):
            s = s[:-1].rstrip()
        math = _delimited_math(s)
        if math is not None and len(math) + 2 >= len(s) - 2:
            s = math
        s = s.strip().rstrip(".,;").strip()
        m = re.fullmatch(r"\\(?:boxed|fbox)\s*\{(.*)\}", s, re.S)
        if m and find_boxes(s) and find_boxes(s)[0][2] == m.group(1):
            s = m.group(1)
        if s == prev:
            break
    return s


def answer_region(response: str) -> str:
    """The part of the response that may commit to an answer: after the last ``</think>``."""
    idx = response.lower().rfind("</think>")
    return response[idx + len("</think>") :] if idx >= 0 else response


def split_alternatives(answer: str) -> tuple[str, ...]:
    """``"3 or 4"`` -> ``("3", "4")``; a single answer -> ``()``."""
    parts = [p.strip() for p in _TOP_LEVEL_OR_RE.split(answer) if p.strip()]
    return tuple(parts) if len(parts) > 1 else ()


def extract_answer(response: str) -> Extraction:
    """The final answer the response commits to; see the module docstring for the rules."""
    text = answer_region(response)
    candidates: list[tuple[int, str, str, tuple[str, ...]]] = []  # (position, how, answer, parts)

    boxes = find_boxes(text)
    if boxes:
        # Boxes written back to back ("\boxed{2} and \boxed{3}") state one answer with parts.
        group = [boxes[-1]]
        for prev in reversed(boxes[:-1]):
            if _BOX_JOINER_RE.match(text[prev[1] : group[0][0]]):
                group.insert(0, prev)
            else:
                break
        contents = tuple(b[2].strip() for b in group)
        if len(group) > 1:
            candidates.append((group[-1][0], "boxed", ", ".join(contents), contents))
        else:
            candidates.append((group[0][0], "boxed", contents[0], ()))

    # Only the last phrase that states something can win, so scan them from the end.
    for m in reversed(list(_PHRASE_RE.finditer(text))):
        ans = _phrase_answer(text[m.end() : m.end() + MAX_ANSWER_CHARS * 2])
        if ans.strip():
            candidates.append((m.end(), "phrase", ans, ()))
            break
    for m in _GSM8K_RE.finditer(text):
        candidates.append((m.start(1), "gsm8k", m.group(1), ()))

    lines = [ln for ln in text.rstrip().splitlines() if ln.strip()]
    if lines:
        bolds = _BOLD_RE.findall(lines[-1])
        if bolds:
            candidates.append((len(text) - len(lines[-1]), "bold", bolds[-1], ()))

    if not candidates:
        return Extraction(None, "no committed answer (no \\boxed{}, 'answer is', '####' or bold final line)")
    pos, how, ans, parts = max(candidates, key=lambda c: c[0])
    if how == "phrase" and find_boxes(ans):
        # "The final answer is $\boxed{5}$" committed through its box.
        ans = find_boxes(ans)[-1][2]
    ans = clean_answer(ans)
    if not ans:
        return Extraction(None, f"empty {how} answer")
    if len(ans) > MAX_ANSWER_CHARS:
        return Extraction(None, f"{how} answer is {len(ans)} characters long, not a final answer")
    if not parts:
        parts = split_alternatives(ans)
    return Extraction(ans, how, tuple(clean_answer(p) for p in parts))


def extract_gold(gold: str) -> str:
    """A reference answer, given bare or as a solution ending in a box."""
    boxes = find_boxes(gold)
    return clean_answer(boxes[-1][2] if boxes else gold)
