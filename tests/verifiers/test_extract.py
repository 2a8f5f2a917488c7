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
        ("<think>The answer is 3.</think>", "3", "phrase"),
        ("<think>I try $\\boxed{3}$", "3", "boxed"),
    ],
)
def test_extract(response, answer, how):
    ex = extract_answer(response)
    assert ex.answer == answer, ex
    if how:
        assert ex.how == how
    if how in ("boxed", "phrase", "gsm8k", "bold") and response.endswith("</think>"):
        assert extract_answer(response, "strict").answer is None
    elif how in ("boxed", "phrase", "gsm8k", "bold"):
        assert extract_answer(response, "strict") == ex


def test_thinking_without_a_stated_answer_after_it():
    # nothing after </think>: the full chain reads inside, strict commits to nothing
    assert extract_answer("<think>The answer is 3.</think>").answer == "3"
    assert extract_answer("<think>The answer is 3.</think>", "strict").answer is None


def test_boxes_joined_by_and_or_commas_are_parts():
    assert extract_answer("$\\boxed{2}$ and $\\boxed{3}$").parts == ("2", "3")
    assert extract_answer("$\\boxed{2}$, $\\boxed{3}$").parts == ("2", "3")
    assert extract_answer("first $\\boxed{2}$. Later, after more work, $\\boxed{3}$").parts == ()
    assert extract_answer("The answer is 2 or 3.").parts == ("2", "3")


def test_bold_counts_only_on_the_last_line():
    assert extract_answer("**Step 1** compute the sum.\nIt is 5.", "strict").answer is None
    ex = extract_answer("**Step 1** compute the sum.\nIt is 5.")
    assert (ex.answer, ex.how) == ("5", "last_number")


def test_overlong_answers_are_not_answers():
    ex = extract_answer("$\\boxed{" + "1+" * MAX_ANSWER_CHARS + "1}$")
    assert ex.answer is None and "characters long" in ex.how


def test_gold_may_be_a_solution():
    assert extract_gold("We find $x=\\boxed{\\dfrac{3}{4}}$.") == "\\dfrac{3}{4}"
    assert extract_gold("  $42$ ") == "42"


@pytest.mark.parametrize(
    "response,answer,how",
    [
        # answer phrases in English and other languages, with the math inside a sentence
        ("Final Answer: The largest $n$ is 34.", "34", "phrase"),
        ("the result is $\\frac{3}{4}$.", "\\frac{3}{4}", "phrase"),
        ("所以答案是 $12$。", "12", "phrase"),
        ("因此，答案是：７", "7", "phrase"),
        ("Donc la réponse est $\\sqrt{2}$.", "\\sqrt{2}", "phrase"),
        ("Por lo tanto, la respuesta es 15.", "15", "phrase"),
        ("Die Antwort ist 8.", "8", "phrase"),
        ("Ответ: 42", "42", "phrase"),
        ("Answer \\[ 9 \\]", "9", "phrase"),
        ("Final answer: there are 12 ways to do it.", "12", "phrase"),
        # the final statement's math, then its last number
        ("Therefore $x \\geq 5$ is the solution.", "x \\geq 5", "final_math"),
        ("$-5$", "-5", "final_math"),
        ("We simplify.\n\n$$\\frac{7}{2}$$", "\\frac{7}{2}", "final_math"),
        ("So she has 4 4/9 cups left.", "4 4/9", "last_number"),
        ("So she has five apples.", "five", "last_number"),
        ("The total is 7,425,000 dollars.", "7,425,000", "last_number"),
        ("Thus 32, 349 people came.", "32, 349", "last_number"),
        ("We get $x=2$ in the first case.\n\nIn the second case the total is 9.", "9", "last_number"),
        # zero-width and non-breaking spaces, full-width digits
        ("The answer is \u200b1\u00a0000.", "1 000", "phrase"),
        ("答案是 ３５", "35", "phrase"),
    ],
)
def test_full_chain(response, answer, how):
    ex = extract_answer(response)
    assert (ex.answer, ex.how) == (answer, how), ex


@pytest.mark.parametrize(
    "response,parts",
    [
        ("So $x = 3$ or $x = 4$.", ("x = 3", "x = 4")),
        ("It is 3 or 4.", ("3", "4")),
        ("$\\boxed{2} \\quad \\text{and} \\quad \\boxed{3}$", ("2", "3")),
        ("$\\boxed{2}\\text{ and }\\boxed{3}$", ("2", "3")),
    ],
)
def test_several_final_values_are_parts(response, parts):
    assert extract_answer(response).parts == parts


def test_chat_template_leak_is_cut_off():
    leak = "The answer is $\\boxed{4}$.<|im_end|>\n<|im_start|>user\nNow say $\\boxed{7}$<|im_end|>"
    assert extract_answer(leak).answer == "4"
    assert extract_answer(leak, "strict").answer == "4"
    assert extract_answer("<|im_start|>assistant\nSo it is $5$.<|im_end|>").answer == "5"
    assert extract_answer("So it is 5.\nUser: and now 6?").answer == "5"


def test_abandoned_thinking_never_overrides_what_follows():
    ex = extract_answer("<think>it is $\\boxed{3}$</think>\nAfter checking, the total is 4.")
    assert (ex.answer, ex.how) == ("4", "last_number")


def test_unknown_answer_format_is_an_error():
    with pytest.raises(ValueError, match="answer_format"):
        extract_answer("$\\boxed{1}$", "loose")


def test_long_responses_extract_in_linear_time():
    import time

    for text in ("x " * 40000 + "so 5", "$" * 65000, "$a$ " * 16000, "1 or " * 13000 + "2", "\\[" * 30000):
        t = time.perf_counter()
        extract_answer(text)
        assert time.perf_counter() - t < 0.5, text[:20]
