"""The trainers' VerifierReward and the GRPO config pass the answer format to the math verifier."""

from rl_reason.data_pipelines.schema import Example
from rl_reason.trainers.grpo_config import RewardConfig
from rl_reason.trainers.rewards import VerifierReward


def test_verifier_reward_full_and_strict():
    examples = [Example(id="a", prompt="2+2?", answer="4"), Example(id="b", prompt="2+3?", answer="5")]
    responses = ["So the total is 4 apples.", "The answer is $\\boxed{5}$."]
    full, strict = VerifierReward(workers=1), VerifierReward(workers=1, answer_format="strict")
    try:
        assert [s.reward for s in full(examples, responses)] == [1.0, 1.0]
        scored = strict(examples, responses)
        assert [s.reward for s in scored] == [0.0, 1.0]
        assert scored[0].status == "no_answer"
    finally:
        full.close()
        strict.close()


def test_reward_config_default_is_the_full_chain():
    assert RewardConfig().answer_format == "full"


def test_training_reward_and_eval_grade_agree():
    """The reward is the eval grader's score: on a mixed set of answers (boxed, bare, wrong,
    missing; math and code) both answer formats give the same score, status and correctness."""
    from rl_reason.eval import grade_records

    half = Example(id="h", prompt="What is half of one?", answer="\\frac{1}{2}")
    sq = Example(id="s", prompt="Print n squared.", tests=[{"kind": "stdio", "input": "3\n", "output": "9\n"},
                                                           {"kind": "stdio", "input": "4\n", "output": "16\n"}])
    cases = [(half, "so $\\boxed{0.5}$"), (half, "Half of one is 0.5."), (half, "It is 0.7."), (half, "no idea"),
             (half, "The answer is $\\boxed{2/4}$."), (sq, "```python\nn = int(input())\nprint(n * n)\n```"),
             (sq, "```python\nn = int(input())\nprint(9)\n```")]
    graded = grade_records([{"id": ex.id, "text": text} for ex, text in cases], {half.id: half, sq.id: sq}, workers=1)
    for answer_format, suffix in (("full", ""), ("strict", "_strict")):
        with VerifierReward(workers=1, answer_format=answer_format) as reward:
            scored = reward([ex for ex, _ in cases], [text for _, text in cases])
        assert [s.status for s in scored] == [g["status" + suffix] for g in graded]
        assert [s.correct for s in scored] == [g["correct" + suffix] for g in graded]
        if answer_format == "full":
            assert [s.reward for s in scored] == [g["score"] for g in graded]
    # the set tells the formats and the outcomes apart: the comparison can fail
    assert [g["correct"] for g in graded] == [True, True, False, False, True, True, False]
    assert [g["correct_strict"] for g in graded] == [True, False, False, False, True, True, False]
