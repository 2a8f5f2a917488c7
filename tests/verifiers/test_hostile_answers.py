"""Hostile answers are decided or rejected by cheap guards in well under a second, never by
running into the timeout."""

import time

import pytest

from rl_reason.verifiers import MathVerifier
from rl_reason.verifiers.guards import defuse


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(workers=1, timeout=5.0) as v:
        v.verify("$\\boxed{\\sqrt{8}}$", "2\\sqrt2")  # the worker start is not part of the bound
        yield v


@pytest.mark.parametrize(
    "answer,gold,status",
    [
        ("9^{9^{9^{9}}}", "3", "wrong"),
        ("10^{10^{10^{10}}} - 10^{10^{10^{10}}} + 5", "5", "correct"),
        ("10^{10^{10^{10}}} - 10^{10^{10^{10}}} + 5", "6", "wrong"),
        ("10^{10^{10}}", "10^{10^{10}}+1", "wrong"),
        ("2^{2^{2^{2^{2^{2}}}}}-1", "2^{2^{2^{2^{2^{2}}}}}", "wrong"),
        ("100000!", "5", "wrong"),
        ("\\left(10^{6}\\right)!", "5", "wrong"),
        ("99999999999!-99999999999!", "0", "correct"),
        ("1.5^{1000000}", "2", "wrong"),
        ("2^{2^{2^{2}}}", "65536", "correct"),
        ("(" * 200 + "1" + ")" * 200, "1", "correct"),
        ("(" * 200 + "1" + ")" * 199 + "+1)", "2", "wrong"),
        ("\\frac{1}{" * 61 + "2" + "}" * 61, "2", "wrong"),  # its value is 1/2; rejected unevaluated
    ],
)
def test_hostile_answer_is_decided_fast(verifier, answer, gold, status):
    t = time.perf_counter()
    r = verifier.verify(f"So the answer is $\\boxed{{{answer}}}$.", gold)
    assert time.perf_counter() - t < 1.0, r
    assert r.status == status, r


@pytest.mark.parametrize(
    "response,status",
    [
        ("x " * 32000 + "so the total is 5", "correct"),
        ("$\\boxed{" + "1+" * 40000 + "1}$", "no_answer"),
        (" ".join(f"$\\boxed{{{i}}}$" for i in range(300)), "no_answer"),
        ("\\frac{1}{" * 3000 + "5", "no_answer"),
    ],
    ids=["65k-filler", "65k-answer", "300-boxes", "3000-open-fracs"],
)
def test_long_responses_are_decided_fast(verifier, response, status):
    t = time.perf_counter()
    r = verifier.verify(response, "5")
    assert time.perf_counter() - t < 1.0, r
    assert r.status == status, r


def test_the_same_huge_term_gets_the_same_symbol():
    pred, gold, n = defuse("10^{10^{10^{10}}} - 10^{10^{10^{10}}} + 9^{9^{9^{9}}}", "9^{9^{9^{9}}}")
    assert n == 2 and gold in pred and "10^" not in pred
    assert defuse("2^{10} + 10!", "1") == ("2^{10} + 10!", "1", 0)
