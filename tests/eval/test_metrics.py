import math

import pytest

from rl_reason.eval.metrics import avg_at_n, bootstrap_ci, maj_at_k, majority_answer, pass_at_k, roc_auc


@pytest.mark.parametrize(
    "n,c,k,expected",
    [
        (5, 2, 1, 2 / 5),  # pass@1 is the fraction correct
        (5, 2, 2, 1 - math.comb(3, 2) / math.comb(5, 2)),  # 1 - 3/10
        (10, 3, 4, 1 - math.comb(7, 4) / math.comb(10, 4)),  # 1 - 35/210
        (16, 1, 4, 4 / 16),  # one correct sample lands in a 4-subset with prob 4/16
    ],
)
def test_pass_at_k_matches_binomial_formula(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12)


def test_pass_at_k_edge_cases():
    assert pass_at_k(4, 0, 1) == 0.0  # c = 0
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 4, 1) == 1.0  # c = n
    assert pass_at_k(4, 1, 4) == 1.0  # n = k: any correct sample is in the only subset
    assert pass_at_k(4, 3, 2) == 1.0  # n - c < k: every subset holds a correct sample
    assert pass_at_k(1000, 10, 1) == pytest.approx(0.01, rel=1e-12)  # no overflow at large n


@pytest.mark.parametrize("n,c,k", [(4, 1, 5), (4, 5, 1), (4, -1, 1), (4, 1, 0)])
def test_pass_at_k_rejects_bad_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_majority_answer_tie_goes_to_earliest_first_occurrence():
    # "3" and "5" both have two votes; "5" appears first (index 0), so it wins.
    assert majority_answer(["5", "3", "3", "5"]) == 0
    assert majority_answer(["3", "5", "5", "3"]) == 0
    # whitespace-insensitive, and None does not vote
    assert majority_answer([None, "1 / 2", "1/2", "7"]) == 1
    assert majority_answer([None, None]) is None


def test_maj_at_k_uses_first_k_samples():
    answers = ["4", "5", "5", "4", "4"]
    correct = [True, False, False, True, True]
    assert maj_at_k(answers, correct, 1) == 1.0
    assert maj_at_k(answers, correct, 3) == 0.0  # "5" has 2 of 3 votes
    assert maj_at_k(answers, correct, 4) == 1.0  # tie 2-2, "4" occurs first
    assert maj_at_k(answers, correct, 5) == 1.0
    assert maj_at_k([None, None], [False, False], 2) == 0.0
    with pytest.raises(ValueError):
        maj_at_k(answers, correct, 6)


def test_avg_at_n():
    assert avg_at_n([1, 0, 0, 1]) == 0.5
    assert avg_at_n([0.25]) == 0.25
    with pytest.raises(ValueError):
        avg_at_n([])


def test_bootstrap_ci_is_deterministic_and_brackets_the_mean():
    values = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1] * 3
    a = bootstrap_ci(values, seed=7)
    assert a == bootstrap_ci(values, seed=7)
    assert a != bootstrap_ci(values, seed=8)
    lo, hi = a
    assert lo < sum(values) / len(values) < hi
    assert 0.0 <= lo and hi <= 1.0
    assert bootstrap_ci([0.3]) == (pytest.approx(0.3), pytest.approx(0.3))


def test_roc_auc_counts_ordered_pairs_by_hand():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3 of 4
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    # every score below 0.5 still ranks perfectly: the threshold does not matter
    assert roc_auc([0.01, 0.02, 0.3], [False, False, True]) == 1.0
    assert roc_auc([0.5, 0.5], [True, False]) == 0.5  # a tie counts half


def test_roc_auc_rejects_one_class_and_mismatched_lengths():
    with pytest.raises(ValueError, match="positive and one negative"):
        roc_auc([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="3 scores but 2 labels"):
        roc_auc([0.1, 0.2, 0.3], [True, False])
