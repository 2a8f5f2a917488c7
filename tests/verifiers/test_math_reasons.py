"""Grades whose reason or status the math verifier used to get wrong, through `rl-reason verify math`."""

import json

import pytest

from rl_reason.cli.main import main


def _verify(capsys, response: str, gold: str) -> dict:
    assert main(["verify", "math", "--response", response, "--gold", gold, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_plain_numbers_are_not_called_base_b_numbers(capsys):
    r = _verify(capsys, "The answer is 7", "8")
    assert r["status"] == "wrong" and "base" not in r["reason"]


def test_base_subscript_golds_still_compare_digits(capsys):
    assert _verify(capsys, "The answer is 52", "52_8")["reason"] == "same base-8 digits"
    assert _verify(capsys, "The answer is 42", "52_8")["status"] == "wrong"


@pytest.mark.parametrize("gold", ["1/0", "\\frac{3}{0}"])
def test_a_gold_dividing_by_zero_is_invalid_gold_not_a_wrong_answer(capsys, gold):
    r = _verify(capsys, "The answer is 7", gold)
    assert (r["status"], r["score"]) == ("invalid_gold", 0.0)
    assert "division by zero" in r["reason"]
