"""Equivalence rules for answers as models and datasets spell them, each with cases that must
be wrong; graded through the full extraction chain."""

import pytest

from rl_reason.verifiers import verify_math

CASES = {
    "thousands": [
        ("The total is $\\boxed{7,425,000}$.", "7425000", True),
        ("$\\boxed{12{,}000}$", "12000", True),
        ("It costs 1 000 euros.", "1000", True),
        ("$\\boxed{32,\\! 349}$", "32349", True),
        ("$\\boxed{32, 349}$", "32349", False),
        ("$\\boxed{3, 500}$", "3500", False),
        ("$\\boxed{2 3}$", "23", False),
    ],
    "mixed numbers": [
        ("She has 4 4/9 cups left.", "\\frac{40}{9}", True),
        ("$\\boxed{2 1/2}$", "5/2", True),
        ("$\\boxed{2 1/2}$", "21/2", False),
        ("$\\boxed{2\\frac{1}{4}}$", "\\frac94", True),
    ],
    "multi-part": [
        ("$\\boxed{1,2}$", "$\\boxed{1}\\boxed{2}$", True),
        ("$\\boxed{-2,1}$.", "\\(\\boxed{1}\\) and \\(\\boxed{-2}\\).", True),
        ("$\\boxed{1} and \\boxed{2} and \\boxed{3}$", "{1,2,3}", True),
        ("$\\boxed{1},\\boxed{2},\\boxed{3}$", "{1,2,3}", True),
        ("$${2, 3, 5, 7, 13}$$", "$$\\boxed{2}, \\boxed{3}, \\boxed{5}, \\boxed{7}, \\boxed{13}$$", True),
        ("$\\boxed{1,2}$", "{1,2,3}", False),
        ("$\\boxed{1} or \\boxed{2}$", "1", False),
        ("The probability is 1/4 or 25%.", "\\frac14", True),
        ("It lies between $12$ and $13$.", "12\\text{ and }13", True),
        ("It lies between $12$ and $14$.", "12\\text{ and }13", False),
        ("The probability is 1/4 or 1/3.", "\\frac14", False),
    ],
    "fraction spellings": [
        ("$\\boxed{\\cfrac{1}{2}}$", "0.5", True),
        ("$\\boxed{\\frac13}$", "\\frac{1}{3}", True),
        ("$\\boxed{\\frac3{3}}$", "1", True),
        ("$\\boxed{\\frac{3}3}$", "1", True),
        ("$\\boxed{\\frac3{4}}$", "1", False),
        ("\\frac{10}{9}", "10/9", True),
        ("-\\frac{10}{9}", "-10/9", True),
        ("$\\boxed{\\left( \\frac{1}{2} \\right)}$", "\\frac12", True),
    ],
    "units": [
        ("$\\boxed{5 \\textbf{ cm}}$", "5", True),
        ("$\\boxed{5\\text{ cm}}$", "5\\text{ cm}", True),
        ("$\\boxed{6\\text{ cm}}$", "5\\text{ cm}", False),
    ],
    "invisible and full-width characters": [
        ("答案是 ３５", "35", True),
        ("The answer is \u200b12\u200b.", "12", True),
        ("The answer is 1\u00a0000.", "1000", True),
        ("答案是 ３６", "35", False),
    ],
    "decimal commas": [
        ("Soucis : 2,74 $ a..", "2.74", True),
        ("$\\boxed{1000,99}$", "1000.99", True),
        ("$\\boxed{0.111}$", "0,111", True),
        ("$\\boxed{2,75}$", "2.74", False),
        ("$\\boxed{1,2}$", "12", False),
    ],
    "percent": [
        ("The answer is 28 percent.", "28", True),
        ("The answer is 28 percent.", "0.28", True),
        ("The answer is 28 percent.", "29", False),
        ("$\\boxed{28\\%}$", "28", True),
    ],
    "repeating decimals": [
        ("$\\boxed{0.\\overline{3}}$", "\\frac13", True),
        ("$\\boxed{0.1\\overline{6}}$", "\\frac16", True),
        ("$\\boxed{0.\\overline{3}}$", "0.3", False),
    ],
    "float renderings": [
        ("$0.0833333333333333$", "$\\frac{1}{12}$", True),
        ("$\\boxed{0.083}$", "$\\frac{1}{12}$", False),
        ("$\\boxed{0.0833333333333}$", "$\\frac{1}{11}$", False),
    ],
    "number words": [
        ("So she has five apples.", "5", True),
        ("So she has five apples.", "6", False),
        ("Here is a zero matrix: $ \\begin{pmatrix}0 & 0 \\\\0 & 0\\end{pmatrix} $", "$\\begin{bmatrix}0 & 0 \\\\0 & 0\\end{bmatrix}$", True),
    ],
    "multiple choice": [
        ("the answer is D", "D", True),
        ("the answer is D", "(C)", False),
        ("The correct option is (B).", "\\text{(B)}", True),
        ("D. It can't be A, since the sum is odd.", "D", True),
        ("D. It can't be A, since the sum is odd.", "A", False),
    ],
    "relations": [
        ("Therefore $x \\geq 5$ is the solution.", "x \\geq 5", True),
        ("Therefore $x \\geq 5$ is the solution.", "x > 5", False),
        ("Therefore $x \\geq 5$ is the solution.", "[5, \\infty)", True),
    ],
    "matrices": [
        ("$\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}$", "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}", True),
        ("$\\boxed{\\left(\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right)}$", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", True),
        ("$\\boxed{2\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}$", "\\begin{pmatrix} 2 \\\\ 4 \\end{pmatrix}", True),
        ("$\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}}$", "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}", False),
    ],
    "exact constants": [
        ("$\\boxed{e^{i\\pi}}$", "-1", True),
        ("$\\boxed{e^{i\\pi}}$", "1", False),
        ("$\\boxed{\\ln e^2}$", "2", True),
        ("$\\boxed{2.718}$", "e", False),
    ],
}


@pytest.mark.parametrize(
    "response,gold,expected",
    [pytest.param(*case, id=f"{rule}-{i}") for rule, cases in CASES.items() for i, case in enumerate(cases)],
)
def test_answer_spelling(response, gold, expected):
    r = verify_math(response, gold, timeout=20.0)
    assert r.status in ("correct", "wrong"), r
    assert r.correct is expected, r
