import pytest

from rl_reason.algorithms import ADVANTAGES, KL_ESTIMATORS, POLICY_LOSSES, REWARD_MIXES, UNPAIRED_LOSSES, Registry
from rl_reason.algorithms.curriculum import CURRICULUM_WEIGHTS


def test_register_and_get():
    reg = Registry("thing")

    @reg.register("a")
    def a():
        return 1

    assert reg.get("a") is a and "a" in reg and reg.names() == ["a"]


def test_duplicate_name_is_rejected():
    reg = Registry("thing")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        reg.register("a")(lambda: 2)


def test_unknown_name_lists_valid_names():
    with pytest.raises(KeyError, match="unknown advantage estimator 'grp0'; valid: dr_grpo, gae, grpo, reinforce_pp"):
        ADVANTAGES.get("grp0")


def test_shipped_registries():
    assert set(ADVANTAGES.names()) == {"grpo", "dr_grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "gae"}
    assert set(POLICY_LOSSES.names()) == {"ppo_clip", "gspo", "gmpo", "clip_cov", "kl_cov", "reinforce"}
    assert {"k1", "k2", "k3"} <= set(KL_ESTIMATORS.names())
    assert UNPAIRED_LOSSES.names() == ["kto"]
    assert REWARD_MIXES.names() == ["gdpo", "weighted_sum"]
    assert CURRICULUM_WEIGHTS.names() == ["middle", "skip"]


def test_config_choices_name_registered_functions():
    from typing import get_args, get_type_hints

    from rl_reason.trainers.grpo_config import AlgorithmConfig, CurriculumConfig, ShapingConfig

    def choices(cls, name):
        return set(get_args(get_type_hints(cls)[name]))

    assert choices(AlgorithmConfig, "policy_loss") == set(POLICY_LOSSES.names())
    assert choices(AlgorithmConfig, "advantage") <= set(ADVANTAGES.names())
    assert choices(ShapingConfig, "mix") == set(REWARD_MIXES.names())
    assert choices(CurriculumConfig, "mode") == set(CURRICULUM_WEIGHTS.names()) | {"off"}
