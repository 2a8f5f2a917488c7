"""Answer extraction: which span of a response is its committed final answer."""

import pytest

from rl_reason.verifiers.extract import MAX_ANSWER_CHARS, extract_answer, extract_gold


@pytest.mark.parametrize(
    "response,answer,how",
    [
        ("so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}", "boxed"),
        ("so $\\boxed{\\{1, 2\\}}$", "\\{1, 2\\}", "boxed"),
        ("nested $\\boxed{\\frac{a^{2}}{b_{1}}}$", "\\frac{a^{2}}{b_{1}}", "boxed"),
        ("The final answer is $\\$18.90$.", "\\$18.90", "phrase"),
        ("The answer is \\(x^2\\).", "x^2", "phrase"),
        ("The final answer is\n$$\n3\\sqrt{2}\n$$", "3\\sqrt{2}", "phrase"),
        ("The answer is 12. Then we check it.", "12", "phrase"),
        ("ANSWER: 7", "7", "phrase"),
        ("> **Answer:** $5$", "5", "phrase"),
        ("#### 1,234", "1,234", "gsm8k"),
        ("so we get\n**$x = 4$**", "x = 4", "bold"),
        ("<think>The answer is 3.</think>", None, None),
        ("<think>I try $\\boxed{3}$", "3", "boxed"),
    ],
)
def test_extract(response, answer, how):
    ex = extract_answer(response)
    assert ex.answer == answer, ex
    if how:
        assert ex.how == how


def test_boxes_joined_by_and_or_commas_are_parts():
    assert extract_answer("$\\boxed{2}$ and $\\boxed{3}$").parts == ("2", "3")
    assert extract_answer("$\\boxed{2}$, $\\boxed{3}$").parts == ("2", "3")
    assert extract_answer("first $\\boxed{2}$. Later, after more work, $\\boxed{3}$").parts == ()
    assert extract_answer("The answer is 2 or 3.").parts == ("2", "3")


def test_bold_counts_only_on_the_last_line():
    assert extract_answer("**Step 1** compute the sum.\nIt is 5.").answer is None


def test_overlong_answers_are_not_answers():
    ex = extract_answer("$\\boxed{" + "1+" * MAX_ANSWER_CHARS + "1}$")
    assert ex.answer is None and "characters long" in ex.how


def test_gold_may_be_a_solution():
    assert extract_gold("We find $x=\\boxed{\\dfrac{3}{4}}$.") == "\\dfrac{3}{4}"
    assert extract_gold("  $42$ ") == "42"
