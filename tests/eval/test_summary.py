import pytest

from rl_reason.data_pipelines import Example
from rl_reason.eval import summarize


def rec(pid, i, correct, extracted, status=None, finish="stop"):
    return {"id": pid, "sample": i, "text": "", "extracted": extracted, "correct": correct, "score": float(correct),
            "status": status or ("correct" if correct else "wrong"), "tokens": 10, "finish_reason": finish}


EXAMPLES = {
    "p1": Example("p1", "q1", "4", metadata={"level": 1, "subject": "Algebra"}),
    "p2": Example("p2", "q2", "9", metadata={"level": 2, "subject": "Algebra"}),
}


def test_summary_metrics_breakdowns_and_counts():
    records = [
        rec("p1", 0, True, "4"), rec("p1", 1, False, "5"), rec("p1", 2, True, "4"), rec("p1", 3, False, None, "no_answer", "length"),
        rec("p2", 0, False, "1"), rec("p2", 1, False, "1"), rec("p2", 2, False, None, "timeout"), rec("p2", 3, True, "9"),
        rec("p2", 0, True, "9"),  # a repeated (id, sample): the first record wins
    ]
    s = summarize(records, EXAMPLES, ks=[1, 2, 4])
    assert s["num_problems"] == 2 and s["num_samples"] == 8
    m = s["metrics"]
    # p1: c=2 of 4; p2: c=1 of 4
    assert m["pass@1"]["mean"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert m["pass@2"]["mean"] == pytest.approx(((1 - 1 / 6) + (1 - 3 / 6)) / 2)
    assert m["pass@4"]["mean"] == 1.0
    assert m["avg@n"]["mean"] == m["pass@1"]["mean"]
    # maj@4: p1 votes 4,5,4 -> "4" correct; p2 votes 1,1,9 -> "1" wrong
    assert m["maj@4"]["mean"] == 0.5
    assert m["maj@1"]["mean"] == 0.5
    assert s["status_counts"] == {"correct": 3, "no_answer": 1, "timeout": 1, "wrong": 3}
    assert s["finish_reasons"] == {"length": 1, "stop": 7}
    assert s["breakdown"]["level"]["1"]["avg@n"] == 0.5 and s["breakdown"]["level"]["2"]["count"] == 1
    assert s["breakdown"]["subject"] == {"Algebra": {"count": 2, **{k: pytest.approx(v["mean"]) for k, v in m.items()}}}
    lo, hi = m["pass@1"]["ci95"]
    assert lo <= m["pass@1"]["mean"] <= hi


def test_summary_rejects_partial_runs_and_large_k():
    records = [rec("p1", i, True, "4") for i in range(2)]
    with pytest.raises(ValueError, match="no graded samples"):
        summarize(records, EXAMPLES, ks=[1])
    records += [rec("p2", i, True, "9") for i in range(2)]
    with pytest.raises(ValueError, match="k=4 exceeds"):
        summarize(records, EXAMPLES, ks=[4])
    with pytest.raises(ValueError, match="not in the suite"):
        summarize(records + [rec("p3", 0, True, "1")], EXAMPLES, ks=[1])
