import pytest

from rl_reason.trainers.rewards import overlong_penalty


@pytest.mark.parametrize(
    "length, expected",
    [(10, 0.0), (60, 0.0), (70, -0.5 * 10 / 40), (100, -0.5), (140, -0.5)],
)
def test_soft_overlong_penalty_is_linear_in_the_buffer(length, expected):
    # limit 100, buffer 40: no penalty up to 60 tokens, then -0.5 * (length - 60) / 40, capped.
    assert overlong_penalty(length, max_new_tokens=100, buffer=40, penalty=0.5) == pytest.approx(expected)


def test_soft_overlong_penalty_off_without_buffer():
    assert overlong_penalty(100, max_new_tokens=100, buffer=0, penalty=1.0) == 0.0
