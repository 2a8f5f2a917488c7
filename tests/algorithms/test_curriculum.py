import pytest

from rl_reason.algorithms.curriculum import CURRICULUM_WEIGHTS, update_pass_rate


def test_update_pass_rate():
    assert update_pass_rate(None, 3, 4, ema=0.5) == 0.75  # first group sets it
    assert update_pass_rate(0.75, 1, 4, ema=0.5) == pytest.approx(0.5)  # 0.5 * 0.75 + 0.5 * 0.25
    assert update_pass_rate(0.75, 0, 4, ema=1.0) == 0.0  # ema 1: the latest group only
    assert update_pass_rate(0.75, 0, 0, ema=0.5) == 0.75  # nothing scorable: unchanged
    with pytest.raises(ValueError, match="ema"):
        update_pass_rate(None, 1, 2, ema=0.0)
    with pytest.raises(ValueError, match="correct"):
        update_pass_rate(None, 3, 2, ema=1.0)


def test_skip_weight():
    skip = CURRICULUM_WEIGHTS.get("skip")
    assert [skip(r, solved=0.9, hopeless=0.1) for r in (None, 0.0, 0.1, 0.5, 0.9, 1.0)] == [1, 0, 0, 1, 0, 0]


def test_middle_weight():
    middle = CURRICULUM_WEIGHTS.get("middle")
    assert middle(None, floor=0.1) == 1.0
    assert middle(0.5, floor=0.1) == pytest.approx(1.0)
    assert middle(0.0, floor=0.1) == pytest.approx(0.1) and middle(1.0, floor=0.1) == pytest.approx(0.1)
    assert middle(0.25, floor=0.1) == pytest.approx(0.1 + 0.9 * 0.75)
