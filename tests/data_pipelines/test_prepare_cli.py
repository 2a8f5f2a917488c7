"""`rl-reason data prepare` end to end on a constructed file: bad rows, dedup, leak, pass rates, pairs."""

import json

from rl_reason.cli.main import main

EVAL_PROBLEM = "Compute the number of ordered pairs of positive integers whose product equals exactly one thousand and whose sum is even."


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_prepare_runs_every_step_and_reports(tmp_path):
    train = tmp_path / "train_raw.jsonl"
    write_jsonl(train, [
        {"id": "a", "question": "What is 2 + 3?", "final": "5"},
        {"id": "b", "question": "what is 2+3 ?", "final": "5"},  # normalised duplicate of a
        {"id": "c", "question": "Warm up. " + EVAL_PROBLEM, "final": "8"},  # leaks the eval problem
        {"id": "d", "question": "What is 7 * 6?", "final": "42"},
        {"id": "e", "question": "What is 9 - 4?"},  # bad: no answer
        {"id": "f", "question": "What is 1 + 1?", "final": "2"},
    ])
    evalset = tmp_path / "evalset.jsonl"
    write_jsonl(evalset, [{"id": "E1", "problem": EVAL_PROBLEM, "answer": "8"}])
    graded = tmp_path / "samples.jsonl"
    write_jsonl(graded, [
        {"id": "a", "sample": 0, "text": "5", "correct": True, "score": 1.0},
        {"id": "a", "sample": 1, "text": "6", "correct": False, "score": 0.0},
        {"id": "d", "sample": 0, "text": "42", "correct": True, "score": 1.0},
        {"id": "d", "sample": 1, "text": "42!", "correct": True, "score": 1.0},
        {"id": "f", "sample": 0, "text": "3", "correct": False, "score": 0.0},
    ])
    out = tmp_path / "out"
    # data_dir points at tmp_path, so the eval suite named by path is our constructed file
    code = main(["data", "prepare", "--dataset", str(train), "--fields", "prompt=question,answer=final",
                 "--decontaminate", str(evalset), "--pass-rates", str(graded), "--pairs-from", str(graded), "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    steps = report["steps"]
    assert len(steps["load"]["bad_rows"]) == 1 and steps["load"]["bad_rows"][0].startswith(f"{train}:5:")
    assert steps["dedup"]["dropped"] == [{"id": "b", "reason": "normalized_duplicate", "duplicate_of": "a"}]
    [leak] = steps["decontaminate"]["dropped"]
    assert (leak["id"], leak["eval_set"], leak["eval_id"]) == ("c", str(evalset), "E1")
    assert {r["id"]: r["reason"] for r in steps["difficulty"]["dropped"]} == {"d": "too_easy", "f": "too_hard"}
    kept = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert [k["id"] for k in kept] == ["a"] and report["kept"] == 1
    [pair] = [json.loads(line) for line in (out / "dpo_pairs.jsonl").read_text().splitlines()]
    assert (pair["id"], pair["chosen"], pair["rejected"]) == ("a", "5", "6")
    assert pair["prompt"].endswith("What is 2 + 3?") and "\\boxed{}" in pair["prompt"]


def test_prepared_code_file_loads_as_training_data(tmp_path):
    raw = tmp_path / "my_tasks.jsonl"
    tests = [{"kind": "call", "fn_name": "f", "inputs": [[1], [2]], "outputs": [3, 4]}]
    write_jsonl(raw, [{"id": "t1", "prompt": "Write f(x) returning x + 2.", "tests": tests},
                      {"id": "t2", "prompt": "Write f(x) returning x * 3.", "tests": tests}])
    out = tmp_path / "out"
    assert main(["data", "prepare", "--dataset", str(raw), "--fields", "tests=as_is", "--decontaminate", "none",
                 "--out", str(out)]) == 0
    from rl_reason.data_pipelines import load_dataset

    loaded = load_dataset(str(out / "train.jsonl"))  # no mapping: what data.train=<file> does
    assert [(e.id, e.task, e.tests) for e in loaded] == [("t1", "code", tests), ("t2", "code", tests)]
