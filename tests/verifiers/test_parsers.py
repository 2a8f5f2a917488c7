"""The caller-side exact-number parser and the worker-side lite LaTeX parser."""

from fractions import Fraction

import pytest

from rl_reason.verifiers.fastpath import canonical_spelling, parse_exact_number


@pytest.mark.parametrize(
    "text,value,percent",
    [
        ("1{,}000", Fraction(1000), False),
        ("11,\\!111", Fraction(11111), False),
        ("-\\frac{3}{4}", Fraction(-3, 4), False),
        ("\\dfrac{6}{8}", Fraction(3, 4), False),
        ("\\frac12", Fraction(1, 2), False),
        ("0.25", Fraction(1, 4), False),
        ("28\\%", Fraction(28), True),
        ("28 percent", Fraction(28), True),
        ("90^\\circ", Fraction(90), False),
        ("x = 5", Fraction(5), False),
        ("\\$18.90", Fraction(189, 10), False),
        ("5 \\text{ cm}", Fraction(5), False),
        ("2\\frac{1}{4}", Fraction(9, 4), False),
        ("−7", Fraction(-7), False),
    ],
)
def test_exact_numbers(text, value, percent):
    n = parse_exact_number(text)
    assert n is not None and n.value == value and n.percent is percent


@pytest.mark.parametrize("text", ["1,2", "1,00", "\\sqrt{2}", "2^{10}", "1/0", "\\frac{1}{0}", "x+1", "(1,2)", "3.1.4"])
def test_not_plain_numbers(text):
    assert parse_exact_number(text) is None


def test_canonical_spelling_keeps_tuples_and_letter_spacing():
    assert canonical_spelling("\\left( x+1 \\right)") == "x+1"
    assert canonical_spelling("(1, 2)") == "(1,2)"
    assert canonical_spelling("(a)(b)") == "(a)(b)"
    assert canonical_spelling("\\pi x") != canonical_spelling("\\pix")


def test_lite_shapes():
    sympy = pytest.importorskip("sympy")
    from rl_reason.verifiers.latex_lite import Unsupported, parse_structure

    x = sympy.Symbol("x")
    assert parse_structure("\\frac{3\\sqrt{3}}{4}") == ("expr", 3 * sympy.sqrt(3) / 4)
    assert parse_structure("x^23") == ("expr", 3 * x**2)  # LaTeX: x^2 times 3
    assert parse_structure("0.25x") == ("expr", x / 4)
    assert parse_structure("6-5i") == ("expr", 6 - 5 * sympy.I)
    assert parse_structure("(-\\infty, 0]") == ("seq", "(", "]", [-sympy.oo, 0])
    assert parse_structure("\\{1\\pm\\sqrt{5},-2\\}") == ("set", [1 + sympy.sqrt(5), 1 - sympy.sqrt(5), -2])
    assert parse_structure("(0,9) \\cup (9,36)")[0] == "union"
    assert parse_structure("\\begin{pmatrix} 1 & 0 \\\\ 0 & -1 \\end{pmatrix}") == ("matrix", [[1, 0], [0, -1]])
    assert parse_structure("y = 2x + 3")[0] == "eq"
    for text in ["\\sin x", "e^2", "\\sqrt[3]{2}", "5\\%", "2 3", "2\\frac{1}{2}", "x > 2", "__import__('os')", "(" * 500 + "1"]:
        with pytest.raises((Unsupported, RecursionError)):
            parse_structure(text)
