"""Format checks and the TRL / verl reward shapes."""

import pytest

from rl_reason.verifiers import MathVerifier, check_format, compute_score, format_reward, math_accuracy_reward


@pytest.mark.parametrize(
    "response,pattern,ok",
    [
        ("so $\\boxed{5}$", "boxed", True),
        ("so the answer is 5", "boxed", False),
        ("so $\\boxed{}$", "boxed", False),
        ("so $\\boxed{5", "boxed", False),
        ("<think>2+3=5</think> The answer is $\\boxed{5}$.", "boxed", True),
        ("<think>maybe \\boxed{5}</think> I give up.", "boxed", False),
        ("<think>2+3=5</think>\nThe answer is $\\boxed{5}$.", "think_answer", True),
        ("  <think>\n2+3=5\n</think>\n$\\boxed{5}$", "think_answer", True),
        ("The answer is $\\boxed{5}$.", "think_answer", False),
        ("<think></think>$\\boxed{5}$", "think_answer", False),
        ("<think>2+3=5</think>", "think_answer", False),
        ("<think>a</think><think>b</think>$\\boxed{5}$", "think_answer", False),
        ("preamble <think>2+3</think>$\\boxed{5}$", "think_answer", False),
        ("<think>2+3=5 $\\boxed{5}$</think> so five", "think_answer", False),
    ],
)
def test_check_format(response, pattern, ok):
    r = check_format(response, pattern)
    assert r.ok is ok, r
    assert r.score == (1.0 if ok else 0.0)


def test_think_opened_by_prompt():
    assert check_format("2+3=5</think> $\\boxed{5}$", "think_answer", prompt_opens_think=True).ok
    assert not check_format("<think>2+3=5</think> $\\boxed{5}$", "think_answer", prompt_opens_think=True).ok


def test_unknown_pattern_is_an_error():
    with pytest.raises(ValueError, match="think_answer"):
        check_format("x", "xml")


def test_trl_reward_plain_and_conversational():
    completions = [
        "The answer is $\\boxed{\\frac{1}{2}}$",
        [{"role": "assistant", "content": "so $\\boxed{x^2-1}$"}],
        [{"role": "assistant", "content": [{"type": "text", "text": "I think it's 7."}]}],
        [{"role": "assistant", "content": "$\\boxed{3}$"}],
    ]
    golds = ["0.5", "(x-1)(x+1)", "7", ""]
    # TRL passes prompts, completion_ids, other dataset columns and trainer_state as kwargs.
    rewards = math_accuracy_reward(completions, answer=golds, prompts=["p"] * 4, completion_ids=[[1]] * 4, trainer_state=None)
    assert rewards == [1.0, 1.0, 1.0, None]
    assert math_accuracy_reward(completions, answer=golds, answer_format="strict") == [1.0, 1.0, 0.0, None]
    assert math_accuracy_reward(["$\\boxed{2}$"], solution=["2"]) == [1.0]
    assert format_reward(completions) == [1.0, 1.0, 0.0, 1.0]


def test_trl_reward_timeout_is_none_not_zero():
    with MathVerifier(workers=1, timeout=1.0) as v:
        rewards = math_accuracy_reward(["$\\boxed{9^{9^{9^{9}}}}$", "$\\boxed{3}$"], answer=["3", "3"], verifier=v)
    assert rewards == [None, 1.0]


def test_verl_compute_score():
    right = compute_score("lighteval/MATH", "Thus $\\boxed{\\dfrac{2}{4}}$.", "\\frac12")
    assert right == {"score": 1.0, "acc": True, "pred": "\\dfrac{2}{4}", "extracted_by": "boxed", "status": "correct"}
    wrong = compute_score("openai/gsm8k", "#### 71", "72", extra_info={"split": "test"})
    assert wrong == {"score": 0.0, "acc": False, "pred": "71", "extracted_by": "gsm8k", "status": "wrong"}
    missing = compute_score("openai/gsm8k", "no idea", "72")
    assert missing["status"] == "no_answer" and missing["score"] == 0.0


def test_verl_compute_score_strict_format():
    assert compute_score("openai/gsm8k", "So she pays 72 dollars.", "72")["extracted_by"] == "last_number"
    assert compute_score("openai/gsm8k", "So she pays 72 dollars.", "72", answer_format="strict")["status"] == "no_answer"
