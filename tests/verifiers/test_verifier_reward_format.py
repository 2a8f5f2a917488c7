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
