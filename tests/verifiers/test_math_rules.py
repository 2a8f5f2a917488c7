"""The math grading rules, one table per rule, each with cases that must be wrong."""

import pytest

from rl_reason.verifiers import verify_math


def boxed(ans: str) -> str:
    return f"Putting it together, the answer is $\\boxed{{{ans}}}$."


def grade(response: str, gold: str):
    return verify_math(response, gold, timeout=20.0)


def check(response: str, gold: str, expected: bool):
    r = grade(response, gold)
    assert r.status in ("correct", "wrong"), r
    assert r.correct is expected, r
    assert r.score == (1.0 if expected else 0.0)


EXTRACTION = [
    # the last committed answer wins
    ("First I thought $\\boxed{3}$ but rechecking, the answer is $\\boxed{4}$.", "4", True),
    ("First I thought $\\boxed{3}$ but rechecking, the answer is $\\boxed{4}$.", "3", False),
    ("We get \\fbox{12}.", "12", True),
    ("So \\boxed 7.", "7", True),
    ("I boxed $\\boxed{3}$ earlier. The final answer is 5.", "5", True),
    ("Final answer: 9", "9", True),
    ("Answer: $\\frac{3}{4}$", "\\frac34", True),
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72", True),
    ("Final Answer: The final answer is $5$. I hope it is correct.", "5", True),
    ("Final Answer: The final answer is $5$. I hope it is correct.", "6", False),
    ("**Answer:** 17", "17", True),
    ("Adding everything up gives\n\n**17**", "17", True),
    ("The final answer is **$\\frac{1}{2}$**.", "0.5", True),
    # multiple choice
    ("The correct option is (B).", "\\text{(B)}", True),
    ("Answer: (C) 42", "C", True),
    ("$\\boxed{\\text{(D)}}$", "D", True),
    ("$\\boxed{C}$", "\\text{(B)}", False),
    # <think>: an abandoned box inside thinking does not override the answer after it
    ("<think>maybe $\\boxed{3}$</think>\nThe answer is $\\boxed{4}$", "4", True),
    ("<think>maybe $\\boxed{3}$</think>\nSo the answer is 4.", "4", True),
    ("<think>maybe $\\boxed{3}$</think>\nSo the answer is 4.", "3", False),
]

EQUIVALENCE = [
    (boxed("x^2+2x+1"), "(x+1)^2", True),
    (boxed("2x+1"), "1+2x", True),
    (boxed("\\frac{2}{4}"), "\\frac12", True),
    (boxed("0.25"), "\\frac{1}{4}", True),
    (boxed("\\dfrac{3}{4}"), "\\tfrac34", True),
    (boxed("\\sqrt{8}"), "2\\sqrt2", True),
    (boxed("\\frac{1}{\\sqrt2}"), "\\frac{\\sqrt2}{2}", True),
    (boxed("\\sin^2 x + \\cos^2 x"), "1", True),
    (boxed("\\frac{\\sqrt{3}}{2}"), "\\sin(\\pi/3)", True),
    (boxed("\\cot x"), "\\frac{\\cos x}{\\sin x}", True),
    (boxed("1{,}000"), "1000", True),
    (boxed("1,\\!000"), "1000", True),
    (boxed("10\\,000"), "10000", True),
    (boxed("11,111,111,100"), "11,\\! 111,\\! 111,\\! 100", True),
    (boxed("5\\text{ cm}"), "5", True),
    (boxed("864 \\text{ inches}^2"), "864 \\mbox{ inches}^2", True),
    (boxed("90^\\circ"), "90", True),
    (boxed("90"), "90^\\circ", True),
    ("The angle is $\\boxed{90°}$", "90^\\circ", True),
    (boxed("x = 5"), "5", True),
    (boxed("\\left( 1, 2 \\right)"), "(1,2)", True),
    (boxed("\\text{Evelyn}"), "\\text{Evelyn}", True),
    (boxed("\\mbox{east}"), "\\text{east}", True),
    (boxed("18.9"), "\\$18.90", True),
    ("The answer is π/2.", "\\frac{\\pi}{2}", True),
    ("Answer: √2", "\\sqrt{2}", True),
    (boxed("1+2i"), "1+2i", True),
    (boxed("1-2i"), "1+2i", False),
    (boxed("\\frac{20000}{\\pi}"), "\\frac{20000}{\\pi}", True),
    (boxed("2x+2"), "2x+1", False),
    (boxed("\\frac{9}{4}"), "2\\frac{1}{4}", True),
    (boxed("2\\frac{1}{4}"), "\\frac{9}{4}", True),
    (boxed("\\frac{1}{2}"), "2\\frac{1}{4}", False),
    (boxed("\\log_2 8"), "3", True),
    (boxed("x \\in [-2,7]"), "[-2,7]", True),
]

APPROXIMATIONS = [
    (boxed("0.33"), "\\frac13", False),
    (boxed("0.333333"), "\\frac13", False),
    (boxed("3.14"), "\\pi", False),
    (boxed("3.14159265358979"), "\\pi", False),
    (boxed("1.414"), "\\sqrt{2}", False),
    (boxed("1/2^{99}"), "1/2^{98}", False),
    (boxed("2^{-99}"), "\\frac{1}{2^{99}}", True),
    (boxed("10^{30}+1"), "10^{30}", False),
    (boxed("0.5"), "\\frac{1}{2}", True),
]

SETS_AND_ORDER = [
    (boxed("2, 1"), "1, 2", True),
    (boxed("\\{1, 2\\}"), "1,2", True),
    (boxed("1, 2"), "1, 2, 3", False),
    (boxed("1, 2, 3, 4"), "1, 2, 3", False),
    (boxed("3, 4"), "3", False),
    ("So $\\boxed{3}$ or $\\boxed{4}$.", "3", False),
    ("The answer is 3 or 4.", "3", False),
    ("So $x=2$ or $x=3$: $\\boxed{2}$ and $\\boxed{3}$.", "2, 3", True),
    ("So $\\boxed{1+\\sqrt{19}}$ and $\\boxed{1-\\sqrt{19}}$", "1 \\pm \\sqrt{19}", True),
    (boxed("1\\pm\\sqrt{19}"), "1 \\pm \\sqrt{19}", True),
    (boxed("(2,1)"), "(1,2)", False),
    (boxed("(1,2,3)"), "(1,2,3)", True),
    (boxed("(3,2,1)"), "(1,2,3)", False),
    (boxed("[1,2]"), "[1,2)", False),
    (boxed("(1,2]"), "(1,2]", True),
    (boxed("(-\\infty,2)\\cup(3,\\infty)"), "(-\\infty, 2) \\cup (3, \\infty)", True),
    (boxed("(-\\infty,2]\\cup(3,\\infty)"), "(-\\infty, 2) \\cup (3, \\infty)", False),
    (boxed("\\begin{pmatrix}1\\\\2\\end{pmatrix}"), "\\begin{pmatrix}1\\\\2\\end{pmatrix}", True),
    (boxed("\\begin{pmatrix}2\\\\1\\end{pmatrix}"), "\\begin{pmatrix}1\\\\2\\end{pmatrix}", False),
    (boxed("\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}"), "\\begin{pmatrix}1&0\\\\0&-1\\end{pmatrix}", False),
]

RELATIONS = [
    (boxed("2x+4y=6"), "x+2y=3", True),
    (boxed("y=2x+1"), "2y=4x+2", True),
    (boxed("-5x + 7y - 11z - 4 = 0"), "5x - 7y + 11z + 4 = 0", True),
    (boxed("x+y+z=1"), "2x+2y+2z=2", True),
    (boxed("x^2+y^2=4"), "2x^2+2y^2=8", True),
    (boxed("x+y=1"), "x+y=2", False),
    (boxed("x^2+y^2=4"), "x^2+y^2=2", False),
    (boxed("2x>4"), "x>2", True),
    (boxed("-x<-2"), "x>2", True),
    (boxed("2<x"), "x>2", True),
    (boxed("x<2"), "x>2", False),
    (boxed("x\\ge 2"), "x>2", False),
    (boxed("x<2"), "(-\\infty, 2)", True),
    (boxed("x\\le 2"), "(-\\infty, 2)", False),
    (boxed("(-\\infty, 2)"), "x<2", True),
]

PERCENT = [
    (boxed("28\\%"), "28\\%", True),
    (boxed("28"), "28\\%", True),
    ("The answer is 28 percent.", "28\\%", True),
    (boxed("0.2\\%"), "20\\%", False),
    (boxed("20\\%"), "0.2\\%", False),
    (boxed("29\\%"), "28\\%", False),
]


RULES = {
    "extraction": EXTRACTION,
    "equivalence": EQUIVALENCE,
    "approximation": APPROXIMATIONS,
    "sets-order": SETS_AND_ORDER,
    "relations": RELATIONS,
    "percent": PERCENT,
}


@pytest.mark.parametrize(
    "response,gold,expected",
    [pytest.param(*case, id=f"{rule}-{i}") for rule, cases in RULES.items() for i, case in enumerate(cases)],
)
def test_grading_rule(response, gold, expected):
    check(response, gold, expected)


@pytest.mark.parametrize(
    "response,full_status,by",
    [
        ("We compute 2+3=5 and then 5*7=35, so it is 35", "correct", "last_number"),
        ("I am not sure how to solve this.", "no_answer", None),
        ("The answer is", "no_answer", None),
        ("$\\boxed{}$", "no_answer", None),
        ("<think>the answer is \\boxed{35}</think>\nI could not finish.", "no_answer", None),
        ("", "no_answer", None),
    ],
)
def test_no_committed_answer(response, full_status, by):
    """Strict grading finds no answer in any of these; the full chain reads the final statement."""
    r = verify_math(response, "35", timeout=20.0, answer_format="strict")
    assert r.status == "no_answer", r
    assert r.extracted is None and r.extracted_by is None and r.score == 0.0 and not r.correct
    r = grade(response, "35")
    assert (r.status, r.extracted_by) == (full_status, by), r


@pytest.mark.parametrize("gold", ["", "   ", None])
def test_invalid_gold(gold):
    assert grade(boxed("3"), gold).status == "invalid_gold"


def test_relative_tolerance_is_opt_in():
    assert not verify_math(boxed("3.1416"), "\\pi").correct
    assert verify_math(boxed("3.1416"), "\\pi", rel_tol=1e-4).correct
    assert verify_math(boxed("0.3333"), "\\frac13", rel_tol=1e-3).correct
    assert not verify_math(boxed("0.3"), "\\frac13", rel_tol=1e-3).correct


def test_fast_path_needs_no_worker():
    from rl_reason.verifiers import MathVerifier

    with MathVerifier(workers=1) as v:
        results = v.verify_batch([boxed("\\frac{2}{4}"), boxed("0.25"), "#### 1,000", boxed("12\\%")], ["0.5", "\\frac14", "1000", "12"])
        assert [r.correct for r in results] == [True, True, True, True]
        assert v._pool.worker_pids() == []
