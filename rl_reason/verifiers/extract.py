"""Find the final answer of a response (stdlib only, linear time, runs in the caller).

Two answer formats:

- ``"full"`` (the default, for rewards and grading) reads the answer a careful human grader
  would take, by this ordered chain; the first rule that finds something wins:

  1. a commitment, the LAST one in the response: ``\\boxed{}``/``\\fbox{}`` (``boxed``; boxes
     joined by "and", commas, ``\\quad``, ``\\text{ and }`` are one multi-part answer), an
     answer phrase in English or another common language of math data ("The answer is",
     "Final Answer:", "Answer:", "the result is", "答案是", "la réponse est", "la respuesta
     es", "die Antwort ist", "Ответ:", ...; ``phrase``; when the phrase is a sentence, the math
     or number it states: "Final Answer: The largest $n$ is 34." gives ``34``), a GSM8K
     ``#### n`` line (``gsm8k``) or a bold span on the last line (``bold``);
  2. the last display or inline math (``\\[..\\]``, ``\\(..\\)``, ``$$..$$``, ``$..$``) of the
     final statement (``final_math``);
  3. the last number of the final statement, number words ("five") included (``last_number``).

- ``"strict"`` runs step 1 only, with the English phrases: a response that never commits to
  an answer gives ``None``, for rewards that want to teach the format.

In both formats, when the response closes a ``<think>`` block only the text after the last
``</think>`` counts (an answer abandoned while thinking never overrides a later one), a
chat-template leak (``<|im_start|>user ...`` written after the answer) is cut off, and two
different values offered as alternatives ("3 or 4", ``$x=3$ or $x=4$``) are returned as
``parts`` so that the grader can judge the hedge wrong.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Literal

AnswerFormat = Literal["full", "strict"]
ANSWER_FORMATS: tuple[str, ...] = ("full", "strict")
# The rules of the chain, in order (``MathResult.extracted_by`` is one of these).
RULES: tuple[str, ...] = ("boxed", "phrase", "gsm8k", "bold", "final_math", "last_number")

# An answer longer than this is not a final answer but a pasted derivation.
MAX_ANSWER_CHARS = 1000
# The final statement is searched only in this many trailing characters.
_TAIL_CHARS = 4000

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b\s*")
_BRACE_RE = re.compile(r"\\.|[{}]", re.S)
_COPULA = r"(?:(?:equals|is|are|was|ist|est|es|è|é)(?!\w)|равен|равно|是|为|為)"
_PHRASE_RE = re.compile(
    r"(?:\bfinal\s+answer|\bthe\s+answer|\bcorrect\s+answer|\bcorrect\s+(?:option|choice)|^[ \t>#*]*answer)"
    r"\s*(?:\*\*)?\s*(?:is\s*:?|:)[ \t]*(?:\*\*)?[ \t]*",
    re.I | re.M,
)
_PHRASE_FULL_RE = re.compile(
    r"(?:\bfinal\s+answer|\bthe\s+answer|\bcorrect\s+answer|\bcorrect\s+(?:option|choice)|\bthe\s+(?:final\s+)?result"
    r"|^[ \t>#*]*(?:final\s+)?answer"
    r"|\bla\s+(?:bonne\s+)?réponse(?:\s+finale)?|^[ \t>#*]*réponse(?:\s+finale)?"
    r"|\bla\s+respuesta(?:\s+final)?|^[ \t>#*]*respuesta(?:\s+final)?|\ba\s+resposta(?:\s+final)?|^[ \t>#*]*resposta"
    r"|\bdie\s+(?:endgültige\s+)?antwort|^[ \t>#*]*antwort|\bla\s+risposta(?:\s+finale)?|^[ \t>#*]*risposta"
    r"|(?:окончательный\s+)?ответ"
    r"|最终答案|答案|最後の答え|答え)"
    r"\s*(?:\*\*)?\s*(?:" + _COPULA + r"\s*:?|:|：)[ \t]*(?:\*\*)?[ \t]*"
    r"|^[ \t>#*]*(?:final\s+)?answer\s*(?=\\\[|\$|\\\()",
    re.I | re.M,
)
_GSM8K_RE = re.compile(r"^[ \t]*####[ \t]*(\S[^\n]*)", re.M)
_BOLD_RE = re.compile(r"\*\*([^*\n]{1,300})\*\*")
# Sentence end inside a phrase answer: a period, then space and a capital, or a line end.
_SENTENCE_END_RE = re.compile(r"[.。](?=\s+[A-Z])|[.。]\s*$|\n", re.M)
_HOPE_RE = re.compile(r"\s*I hope it is correct\.?\s*$", re.I)
# What may sit between two boxes (or two math spans) that state one multi-part (or hedged) answer.
_JOINER_RE = re.compile(
    r"^[\s$,;]*(?:(?:or|and|et|ou|y|o|und|oder|和|或|\\text\{\s*(?:or|and)\s*\}|\\q?quad|\\[,;:]|\\mbox\{\s*(?:or|and)\s*\})[\s$,;]*)*$",
    re.I,
)
_TOP_LEVEL_OR_RE = re.compile(r"\s+or\s+|\\(?:text|mbox|textrm)\{\s*or\s*\}|\\quad\s*\\text\{or\}", re.I)
# Chat-template markers: everything from the first one after the answer is a leak.
_TEMPLATE_RE = re.compile(
    r"<\|(?:im_start|im_end|endoftext|eot_id|start_header_id|end_header_id|user|assistant|system|end)\|>"
    r"|<(?:start|end)_of_turn>|</s>|\[/?INST\]|\n(?:Human|User):",
)
_ROLE_RE = re.compile(r"[ \t]*(?:assistant|model)\b")
_MATH_SPAN_RE = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<![\\$])\$([^$]+?)(?<!\\)\$", re.S)
_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        (
            "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
            "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
        )
    )
}
_NUMBER_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100})
# A number as prose writes it: mixed numbers "4 4/9", fractions, thousands "7,425,000",
# decimals, a percent, or a number word.
_NUMBER_RE = re.compile(
    r"(?<![\w.])[-−]?(?:\d+\s+\d+/\d+|\d+/\d+|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:\s*(?:%|percent\b))?"
    r"|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b",
    re.I,
)
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?。])\s+(?=[A-Z])|\n")
_PROSE_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-zÀ-ÿ]{3,}")
_COPULA_SPLIT_RE = re.compile(r"\s(?:is|are|was|equals|=|est|es|ist|è)\s|是|为|為|=", re.I)
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_ZERO_WIDTH.update({0xA0: " ", 0x202F: " ", 0x2009: " ", 0x3000: " "})
_ZERO_WIDTH.update({c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)})  # full-width ASCII


@dataclass(frozen=True)
class Extraction:
    """The answer (``None`` when there is none), the rule that found it (or, without an answer,
    why not), and, when the response states several values at once (``\\boxed{2} or
    \\boxed{3}``), the parts."""

    answer: str | None
    how: str
    parts: tuple[str, ...] = field(default=())


def normalize_chars(text: str) -> str:
    """Zero-width characters dropped, non-breaking spaces made spaces, full-width ASCII
    (``３``, ``：``) made ASCII: spellings a reader does not see."""
    return text.translate(_ZERO_WIDTH)


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
        if s.endswith((".", "。")):
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


def cut_template_leak(response: str) -> str:
    """The response up to the first chat-template marker that follows some text (a leading
    ``<|im_start|>assistant`` header is skipped, not cut)."""
    start = 0
    while True:
        m = _TEMPLATE_RE.search(response, start)
        if m is None:
            return response
        if response[start : m.start()].strip():
            return response[: m.start()]
        start = m.end()
        role = _ROLE_RE.match(response, start)
        if role:
            start = role.end()


def answer_region(response: str, answer_format: AnswerFormat = "strict") -> str:
    """The part of the response that may state an answer: after the last ``</think>``. In the
    full format a response that ends its thinking and says nothing after it is read inside."""
    idx = response.lower().rfind("</think>")
    if idx < 0:
        return response
    after = response[idx + len("</think>") :]
    if answer_format == "full" and not after.strip():
        return response[:idx]
    return after


def split_alternatives(answer: str) -> tuple[str, ...]:
    """``"3 or 4"`` -> ``("3", "4")``; a single answer -> ``()``."""
    parts = [p.strip() for p in _TOP_LEVEL_OR_RE.split(answer) if p.strip()]
    return tuple(parts) if len(parts) > 1 else ()


def _joined_group(spans: list[tuple[int, int, str]], text: str) -> list[tuple[int, int, str]]:
    """The last span together with the spans written back to back before it."""
    group = [spans[-1]]
    for prev in reversed(spans[:-1]):
        gap = text[prev[1] : group[0][0]]
        if len(gap) <= 80 and _JOINER_RE.match(gap):
            group.insert(0, prev)
        else:
            break
    return group


def _spans_answer(group: list[tuple[int, int, str]], text: str, how: str) -> tuple[int, str, str, tuple[str, ...]]:
    contents = tuple(g[2].strip() for g in group)
    if len(group) == 1:
        return (group[0][0], how, contents[0], ())
    return (group[-1][0], how, ", ".join(contents), contents)


def _math_spans(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), next(g for g in m.groups() if g is not None)) for m in _MATH_SPAN_RE.finditer(text)]


def _statement_value(sentence: str) -> str | None:
    """The value a prose sentence states: "The largest $n$ is 34." -> ``34``; the math or
    number after its last copula, else its last math span or number."""
    spans = _math_spans(sentence)
    cut = [m.end() for m in _COPULA_SPLIT_RE.finditer(_mask(sentence, spans))]
    if cut:
        rest = sentence[cut[-1] :]
        found = _first_value(rest)
        if found is not None:
            return found
    if spans:
        return spans[-1][2]
    numbers = list(_NUMBER_RE.finditer(sentence))
    return numbers[-1].group() if numbers else None


def _first_value(text: str) -> str | None:
    spans = _math_spans(text)
    number = _NUMBER_RE.search(_mask(text, spans))
    if spans and (number is None or spans[0][0] < number.start()):
        return spans[0][2]
    return number.group() if number else None


def _mask(text: str, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with the math spans blanked out (same length), so prose rules skip them."""
    if not spans:
        return text
    out, last = [], 0
    for s, e, _ in spans:
        out += [text[last:s], " " * (e - s)]
        last = e
    return "".join(out + [text[last:]])


def _has_prose(answer: str) -> bool:
    plain = re.sub(r"\\[A-Za-z]+\s*(?:\{[^{}]*\})?", " ", _mask(answer, _math_spans(answer)))
    return len(_PROSE_RE.findall(plain)) >= 2 or bool(_COPULA_SPLIT_RE.search(plain) and _PROSE_RE.search(plain))


def _final_statement(text: str) -> list[str]:
    """The last paragraphs of ``text``, latest first (the final statement and the one before)."""
    tail = text[-_TAIL_CHARS:].rstrip()
    paragraphs = [p for p in re.split(r"\n\s*\n", tail) if p.strip()]
    return paragraphs[::-1][:2]


def _final_candidate(text: str) -> tuple[int, str, str, tuple[str, ...]] | None:
    """Rules 2 and 3: the last math span, else the last number, of the final statement."""
    for para in _final_statement(text):
        spans = _math_spans(para)
        masked = _mask(para, spans)
        # The last sentence holding math or a number is the statement of the answer.
        bounds = [0] + [m.end() for m in _SENTENCE_SPLIT_RE.finditer(masked)] + [len(para)]
        for lo, hi in reversed(list(itertools.pairwise(bounds))):
            in_sent = [s for s in spans if lo <= s[0] < hi]
            if in_sent:
                return _spans_answer(_joined_group(in_sent, para), para, "final_math")
            numbers = [(m.start(), m.end(), m.group()) for m in _NUMBER_RE.finditer(masked, lo, hi)]
            if numbers:
                group = _joined_group(numbers, para)
                return _spans_answer(group, para, "last_number")
    return None


def extract_answer(response: str, answer_format: AnswerFormat = "full") -> Extraction:
    """The final answer of the response; see the module docstring for the rules."""
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
    full = answer_format == "full"
    text = answer_region(cut_template_leak(normalize_chars(response)), answer_format)
    candidates: list[tuple[int, str, str, tuple[str, ...]]] = []  # (position, how, answer, parts)

    boxes = find_boxes(text)
    if boxes:
        candidates.append(_spans_answer(_joined_group(boxes, text), text, "boxed"))

    # Only the last phrase that states something can win, so scan them from the end.
    for m in reversed(list((_PHRASE_FULL_RE if full else _PHRASE_RE).finditer(text))):
        ans = _phrase_answer(text[m.end() : m.end() + MAX_ANSWER_CHARS * 2])
        if ans.strip():
            if full and not find_boxes(ans) and not split_alternatives(ans) and _has_prose(ans):
                ans = _statement_value(ans) or ans
            candidates.append((m.end(), "phrase", ans, ()))
            break
    for m in _GSM8K_RE.finditer(text):
        candidates.append((m.start(1), "gsm8k", m.group(1), ()))

    lines = [ln for ln in text.rstrip().splitlines() if ln.strip()]
    if lines:
        bolds = _BOLD_RE.findall(lines[-1])
        if bolds:
            candidates.append((len(text) - len(lines[-1]), "bold", bolds[-1], ()))

    if not candidates and full:
        final = _final_candidate(text)
        if final is not None:
            candidates.append(final)
    if not candidates:
        if full:
            return Extraction(None, "no answer (no box, answer phrase, math or number in the final statement)")
        return Extraction(None, "no committed answer (no \\boxed{}, 'answer is', '####' or bold final line)")
    _, how, ans, parts = max(candidates, key=lambda c: c[0])
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
    gold = normalize_chars(gold)
    boxes = find_boxes(gold)
    return clean_answer(boxes[-1][2] if boxes else gold)
