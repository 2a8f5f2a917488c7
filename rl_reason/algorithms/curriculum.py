"""Online difficulty curriculum: a prompt's pass rate from its rollout groups, and how much a
sampler should want the prompt given that rate. Plain floats: no tensors are involved.

A prompt whose group is all correct or all wrong gives GRPO no gradient (every advantage is 0);
sampling toward prompts the policy solves sometimes keeps the batch informative without the
extra rollouts that dynamic sampling spends on discarding such groups.
"""

from __future__ import annotations

from rl_reason.algorithms.registry import Registry

CURRICULUM_WEIGHTS = Registry("curriculum mode")


def update_pass_rate(previous: float | None, correct: int, total: int, ema: float) -> float | None:
    """The prompt's pass rate after a group with `correct` of `total` scorable answers right.

        p' = correct / total                          the first time (previous is None)
        p' = (1 - ema) * p + ema * correct / total     afterwards
    ema = 1 keeps only the latest group. A group with no scorable answer (total 0) changes nothing.
    """
    if not 0.0 < ema <= 1.0:
        raise ValueError(f"ema must be in (0, 1], got {ema}")
    if total <= 0:
        return previous
    if not 0 <= correct <= total:
        raise ValueError(f"correct must be in [0, total={total}], got {correct}")
    rate = correct / total
    return rate if previous is None else (1.0 - ema) * previous + ema * rate


@CURRICULUM_WEIGHTS.register("skip")
def skip_weight(rate: float | None, *, solved: float = 1.0, hopeless: float = 0.0, floor: float = 0.0) -> float:
    """0 for a prompt measured as solved (rate >= solved) or hopeless (rate <= hopeless), else 1.
    An unmeasured prompt (rate None) is always wanted. `floor` is unused."""
    if rate is None:
        return 1.0
    return 0.0 if rate >= solved or rate <= hopeless else 1.0


@CURRICULUM_WEIGHTS.register("middle")
def middle_weight(rate: float | None, *, solved: float = 1.0, hopeless: float = 0.0, floor: float = 0.05) -> float:
    """floor + (1 - floor) * 4 p (1 - p): 1 at p = 0.5, `floor` at p = 0 or 1.

    4p(1-p) is the variance of a correct/wrong reward scaled to [0, 1]: the expected share of
    the group that carries signal. An unmeasured prompt gets 1, so every prompt is measured;
    `floor` > 0 keeps re-measuring the solved and hopeless ones (the policy changes).
    `solved` / `hopeless` are unused.
    """
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must be in [0, 1], got {floor}")
    if rate is None:
        return 1.0
    return floor + (1.0 - floor) * 4.0 * rate * (1.0 - rate)
