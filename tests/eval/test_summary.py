import pytest

from rl_reason.data_pipelines import Example
from rl_reason.eval import flat_metrics, summarize


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


def test_summary_reports_full_chain_and_strict_side_by_side():
    def graded(pid, i, correct, strict, by):
        r = rec(pid, i, correct, "4" if correct else None)
        r.update(correct_strict=strict, status_strict="correct" if strict else "no_answer", extracted_by=by)
        return r

    records = [graded("p1", 0, True, True, "boxed"), graded("p1", 1, True, False, "last_number"),
               graded("p2", 0, True, False, "final_math"), graded("p2", 1, False, False, None)]
    records[3]["status"] = "no_answer"
    s = summarize(records, EXAMPLES, ks=[1])
    assert s["metrics"]["pass@1"]["mean"] == pytest.approx((1 + 0.5) / 2)
    assert s["strict"]["metrics"]["pass@1"]["mean"] == pytest.approx((0.5 + 0) / 2)
    assert s["strict"]["status_counts"] == {"correct": 1, "no_answer": 3}
    assert s["extracted_by"] == {"boxed": 0.25, "final_math": 0.25, "last_number": 0.25, "none": 0.25}
    flat = flat_metrics(s)
    assert flat["pass@1"] == pytest.approx(0.75) and flat["strict/pass@1"] == pytest.approx(0.25)
    assert flat["no_answer"] == 0.25 and flat["strict/no_answer"] == 0.75
    assert flat["extracted_by/boxed"] == 0.25


def test_records_graded_before_strict_existed_have_no_strict_section():
    s = summarize([rec("p1", 0, True, "4"), rec("p2", 0, False, "1")], EXAMPLES, ks=[1])
    assert s["strict"] is None and "strict/pass@1" not in flat_metrics(s)
