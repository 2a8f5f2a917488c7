import pytest

from rl_reason.eval.rerank import best_of_n


def test_best_of_n_takes_the_top_score_per_problem_ties_to_the_first_sample():
    records = [
        {"id": "a", "sample": 0, "correct": False}, {"id": "a", "sample": 1, "correct": True},
        {"id": "b", "sample": 0, "correct": True}, {"id": "b", "sample": 1, "correct": False},
        {"id": "c", "sample": 1, "correct": False}, {"id": "c", "sample": 0, "correct": True},
    ]
    scores = [0.2, 0.9, 0.1, 0.8, 0.5, 0.5]
    out = best_of_n(records, scores)
    assert out["picked"] == {"a": 1, "b": 1, "c": 0}
    assert out["accuracy"]["mean"] == pytest.approx(2 / 3) and out["num_problems"] == 3
    with pytest.raises(ValueError, match="6 records but 5 scores"):
        best_of_n(records, scores[:5])
