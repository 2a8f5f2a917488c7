"""The one grader on real suites: math through MathVerifier, code through verify_code + sandbox."""

import importlib.util
import json

import pytest

from rl_reason.data_pipelines import Example, load_dataset
from rl_reason.data_pipelines.registry import default_data_dir
from rl_reason.eval import Grader, grade_records

pytest.importorskip("rl_reason.verifiers")
needs_data = pytest.mark.skipif(default_data_dir() is None, reason="no local data directory")
needs_sandbox = pytest.mark.skipif(importlib.util.find_spec("rl_reason.sandbox") is None, reason="rl_reason.sandbox not installed")


def raw_rows(file, n):
    with open(default_data_dir() / file) as f:
        return [json.loads(next(f)) for _ in range(n)]


def test_math_statuses():
    examples = {"q": Example("q", "What is half of one?", answer="\\frac{1}{2}")}
    records = [{"id": "q", "sample": i, "text": t} for i, t in enumerate(["so $\\boxed{0.5}$", "$\\boxed{2}$", "no idea"])]
    graded = grade_records(records, examples)
    assert [(g["correct"], g["status"]) for g in graded] == [(True, "correct"), (False, "wrong"), (False, "no_answer")]
    assert graded[0]["extracted"] is not None and graded[2]["extracted"] is None
    assert records[0] == {"id": "q", "sample": 0, "text": "so $\\boxed{0.5}$"}  # inputs are not modified
    with pytest.raises(KeyError, match="'other' is not a problem"):
        grade_records([{"id": "other", "text": ""}], examples)


def test_math_records_carry_both_graders():
    examples = {"q": Example("q", "What is half of one?", answer="\\frac{1}{2}")}
    texts = ["so $\\boxed{0.5}$", "Half of one is 0.5.", "It is 0.7."]
    graded = grade_records([{"id": "q", "sample": i, "text": t} for i, t in enumerate(texts)], examples)
    assert [g["correct"] for g in graded] == [True, True, False]
    assert [g["correct_strict"] for g in graded] == [True, False, False]
    assert [g["status_strict"] for g in graded] == ["correct", "no_answer", "no_answer"]
    assert [g["extracted_by"] for g in graded] == ["boxed", "last_number", "last_number"]


@needs_data
@needs_sandbox
def test_code_suites_grade_reference_solutions_as_correct():
    humaneval = load_dataset("humaneval", limit=2)
    mbpp = load_dataset("mbpp", limit=2)
    examples = {ex.id: ex for ex in humaneval + mbpp}
    records = []
    for ex, row in zip(humaneval, raw_rows("humaneval.jsonl", 2)):
        records.append({"id": ex.id, "sample": 0, "text": f"```python\n{row['prompt']}{row['canonical_solution']}```"})
        records.append({"id": ex.id, "sample": 1, "text": f"```python\n{row['prompt']}    return None\n```"})
    for ex, row in zip(mbpp, raw_rows("mbpp.jsonl", 2)):
        records.append({"id": ex.id, "sample": 0, "text": f"```python\n{row['solution']}\n```"})
    with Grader() as grader:
        graded = grader.grade(records, examples)
    assert [g["correct"] for g in graded] == [True, False, True, False, True, True]
    assert all(g["extracted"] is None and g["tests_total"] >= 1 for g in graded)


@needs_sandbox
def test_stdio_suite_grading():
    ex = Example("s", "Print n squared.", tests=[{"kind": "stdio", "input": "3\n", "output": "9\n"},
                                                   {"kind": "stdio", "input": "4\n", "output": "16\n"}])
    good = "```python\nn = int(input())\nprint(n * n)\n```"
    half = "```python\nn = int(input())\nprint(9)\n```"
    graded = grade_records([{"id": "s", "sample": 0, "text": good}, {"id": "s", "sample": 1, "text": half}], {"s": ex})
    assert [(g["correct"], g["score"]) for g in graded] == [(True, 1.0), (False, 0.5)]
