import json

import pytest

from rl_reason.data_pipelines.step_labels import (
    StepRowError,
    load_step_rows,
    mc_labels,
    split_steps,
)


def _write(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return str(path)


def test_stepwise_rows_load_as_they_are(tmp_path):
    path = _write(tmp_path, "steps.jsonl", [
        {"prompt": "2+3*4?", "completions": ["3*4 = 12", "2 + 12 = 14"], "labels": [True, True], "id": "a"},
        {"prompt": "1+1?", "completions": ["1+1 = 3"], "labels": [0]},
    ])
    rows = load_step_rows(path)
    assert rows == [{"prompt": "2+3*4?", "completions": ["3*4 = 12", "2 + 12 = 14"], "labels": [True, True], "id": "a"},
                    {"prompt": "1+1?", "completions": ["1+1 = 3"], "labels": [False]}]
    assert load_step_rows(path, limit=1) == rows[:1]


def test_math_shepherd_raw_tags_become_steps_and_labels(tmp_path):
    text = "Janet has 3 apples and buys 2. How many? Step 1: 3 + 2 = 5 ки\nStep 2: The answer is 6 ки"
    label = "Janet has 3 apples and buys 2. How many? Step 1: 3 + 2 = 5 +\nStep 2: The answer is 6 -"
    path = _write(tmp_path, "shepherd.jsonl", [{"input": text, "label": label, "task": "GSM8K"}])
    assert load_step_rows(path) == [{"prompt": "Janet has 3 apples and buys 2. How many?",
                                     "completions": ["Step 1: 3 + 2 = 5", "Step 2: The answer is 6"],
                                     "labels": [True, False]}]


def test_prm800k_alternatives_end_their_own_solutions(tmp_path):
    row = {"question": {"problem": "What is 1+2+3?", "ground_truth_answer": "6"},
           "label": {"steps": [
               {"completions": [{"text": "1+2 = 3", "rating": 1}, {"text": "1+2 = 4", "rating": -1}],
                "human_completion": None, "chosen_completion": 0},
               {"completions": [{"text": "3+3 = 6", "rating": 0}], "human_completion": {"text": "3+3 = 6."},
                "chosen_completion": None},
               {"completions": [{"text": "The answer is 6", "rating": 1}], "human_completion": None,
                "chosen_completion": 0},
           ]}}
    rows = load_step_rows(_write(tmp_path, "prm800k.jsonl", [row]))
    assert rows == [
        {"prompt": "What is 1+2+3?", "completions": ["1+2 = 4"], "labels": [False]},
        # the neutral (rating 0) alternative to the human step is not counted as good
        {"prompt": "What is 1+2+3?", "completions": ["1+2 = 3", "3+3 = 6"], "labels": [True, False]},
        {"prompt": "What is 1+2+3?", "completions": ["1+2 = 3", "3+3 = 6.", "The answer is 6"],
         "labels": [True, True, True]},
    ]


@pytest.mark.parametrize("row, fmt, message", [
    ({"prompt": "p", "completions": ["a", "b"], "labels": [True]}, "auto", "equal length"),
    ({"prompt": "p", "completions": ["a"], "labels": ["yes"]}, "auto", "true/false"),
    ({"prompt": "p", "labels": [True]}, "stepwise", "no 'completions'"),
    ({"input": "q Step 1: a ки", "label": "q Step 1: a ?"}, "auto", r"expected '\+' or '-'"),
    ({"input": "q Step 1: a ки", "label": "q Step 1: a +++"}, "auto", "chars expected"),
    ({"input": "question only ки", "label": "question only +"}, "auto", "no 'Step 1:'"),
    ({"question": {"problem": "p"}, "label": {"steps": [{"completions": [{"text": "a"}, {"text": "b", "rating": 1}], "chosen_completion": 1}]}},
     "auto", r"label.steps\[0\].completions\[0\] has no 'rating'"),
    ({"question": {"problem": "p"}, "label": {"steps": [{"completions": [], "chosen_completion": 3}]}},
     "auto", "chosen_completion=3"),
    ({"text": "x"}, "auto", "cannot tell the format"),
])
def test_bad_rows_name_file_line_and_key(tmp_path, row, fmt, message):
    good = {"prompt": "p", "completions": ["a"], "labels": [True]}
    path = _write(tmp_path, "bad.jsonl", [good, row] if fmt == "auto" and "prompt" in row else [row])
    line = 2 if fmt == "auto" and "prompt" in row else 1
    with pytest.raises(StepRowError, match=message) as err:
        load_step_rows(path, fmt=fmt)
    assert f"bad.jsonl:{line}" in str(err.value)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown step-label format"):
        load_step_rows("x.jsonl", fmt="csv")
    with pytest.raises(FileNotFoundError):
        load_step_rows(str(tmp_path / "none.jsonl"))


def test_split_steps_and_mc_labels():
    assert split_steps("3 * 4 = 12\n\n 2 + 12 = 14 \n") == ["3 * 4 = 12", "2 + 12 = 14"]
    assert mc_labels([0, 2, 4], k=4) == ([False, True, True], [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="0..k=4"):
        mc_labels([5], k=4)
