import json

import pytest

from rl_reason.data_pipelines import (
    REGISTRY,
    Example,
    load_dataset,
    parse_field_map,
    save_examples,
)
from rl_reason.data_pipelines.registry import default_data_dir, last_boxed

# Row counts from /work/shared/data/README.md.
README_ROWS = {
    "math500": 500, "aime24": 30, "aime25": 30, "amc23": 40, "gsm8k": 1319, "minerva_math": 272,
    "olympiadbench": 675, "math_train": 2000, "humaneval": 164, "mbpp": 500, "stdio": 165,
}

needs_data = pytest.mark.skipif(default_data_dir() is None, reason="no local data directory (../shared/data)")


@needs_data
@pytest.mark.parametrize("name", sorted(README_ROWS))
def test_every_local_dataset_loads_with_readme_row_count(name):
    errors = []
    examples = load_dataset(name, errors=errors)
    assert errors == []
    assert len(examples) == README_ROWS[name]
    assert len({ex.id for ex in examples}) == len(examples)
    for ex in examples:
        assert ex.source == name and ex.prompt.strip()
        assert (ex.answer is not None) != (ex.tests is not None)


def test_registry_covers_the_named_datasets():
    assert set(REGISTRY) == set(README_ROWS)


@needs_data
def test_math500_metadata_and_code_test_formats():
    ex = load_dataset("math500", limit=1)[0]
    assert ex.id == "test/precalculus/807.json"
    assert ex.metadata == {"level": 2, "subject": "Precalculus"}
    he = load_dataset("humaneval", limit=1)[0]
    assert he.tests[0]["kind"] == "assert" and he.tests[0]["entry_point"] == "has_close_elements"
    assert "def check(candidate):" in he.tests[0]["code"]
    mbpp = load_dataset("mbpp", limit=1)[0]
    assert mbpp.tests == [{"kind": "assert", "code": 'assert remove_Occ("hello","l") == "heo"\nassert remove_Occ("abcda","a") == "bcd"\nassert remove_Occ("PHP","P") == "H"\n'}]
    assert "Your code should pass these tests:" in mbpp.prompt
    stdio = load_dataset("stdio", limit=1)[0]
    assert stdio.tests[0] == {"kind": "stdio", "input": "5 2\nAA\nAB\nBB\nBA\nAZ\n", "output": "5 2 1 3 4 \n"}


def test_data_dir_env_var_is_used(tmp_path, monkeypatch):
    (tmp_path / "aime24.jsonl").write_text(json.dumps({"id": "a", "problem": "1+1?", "answer": 2, "year": 2024, "contest": "X"}) + "\n")
    monkeypatch.setenv("RL_REASON_DATA_DIR", str(tmp_path))
    [ex] = load_dataset("aime24")
    assert (ex.id, ex.answer, ex.metadata) == ("a", "2", {"year": 2024, "contest": "X"})
    with pytest.raises(ValueError, match="only the 'train' split"):
        load_dataset("aime24", split="test")


def test_bad_rows_are_reported_with_file_and_line_and_skipped(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [
        '{"q": "What is 2+2?", "a": "4"}',
        '{"q": "No answer here"}',
        '{"q": "Answer is a list", "a": [1, 2]}',
        "not json",
        '{"q": 5, "a": "5"}',
        '{"q": "Float answer", "a": 3.0}',
    ]
    path.write_text("\n".join(rows) + "\n")
    errors = []
    examples = load_dataset(str(path), field_map="prompt=q,answer=a,id=", errors=errors)
    assert [(e.id, e.answer) for e in examples] == [("mine-0", "4"), ("mine-5", "3")]
    assert len(errors) == 4
    for line_no, err in zip((2, 3, 4, 5), errors):
        assert err.startswith(f"{path}:{line_no}:")
    assert "missing 'a'" in errors[0] and "list" in errors[1] and "invalid JSON" in errors[2]
    with pytest.raises(ValueError, match=r"mine.jsonl:2:"):
        load_dataset(str(path), field_map={"prompt": "q", "answer": "a", "id": ""})


def test_field_map_parsing():
    fm = parse_field_map("prompt=question,answer=final,meta.level=difficulty")
    assert (fm.prompt, fm.answer, fm.id, fm.metadata) == ("question", "final", "id", {"level": "difficulty"})
    assert parse_field_map(None).prompt is None  # first of prompt, problem, question
    assert (parse_field_map(None).answer, parse_field_map(None).tests) == ("answer", "as_is")  # either will do
    assert parse_field_map("tests=as_is").answer is None
    assert parse_field_map("answer=final").tests is None
    with pytest.raises(ValueError, match="unknown field mapping keys"):
        parse_field_map("question=prompt")
    with pytest.raises(ValueError, match="choose a rule"):
        parse_field_map("tests=nope")


def test_arithmetic_splits_and_unknown_names():
    train = load_dataset("arithmetic:train", limit=50)
    heldout = load_dataset("arithmetic", split="heldout", limit=50)
    assert len(train) == len(heldout) == 50
    assert not {e.prompt for e in train} & {e.prompt for e in heldout}
    with pytest.raises(ValueError, match="unknown dataset 'math5000'"):
        load_dataset("math5000")


def test_last_boxed_handles_nesting():
    assert last_boxed(r"so \boxed{1} then \boxed{\frac{1}{2}}.") == r"\frac{1}{2}"
    assert last_boxed(r"\fbox{x^{2}}") == "x^{2}"
    assert last_boxed("no box") is None
    assert last_boxed(r"\boxed{unclosed") is None


def test_example_schema_file_with_code_and_math_rows_loads_without_a_mapping(tmp_path):
    tests = [{"kind": "call", "fn_name": "f", "inputs": [[1]], "outputs": [2]}]
    save_examples(tmp_path / "mixed.jsonl", [
        Example(id="c1", prompt="Write f(x) returning x + 1.", tests=tests),
        Example(id="m1", prompt="What is 2 + 2?", answer="4"),
        Example(id="both", prompt="Print 4.", answer="4", tests=[{"kind": "stdio", "input": "", "output": "4"}]),
    ])
    with open(tmp_path / "mixed.jsonl", "a") as f:
        f.write('{"id": "bad", "prompt": "Neither", "answer": null, "tests": null}\n')
        f.write('{"id": "bad2", "prompt": "Neither, keys absent"}\n')
    errors = []
    loaded = load_dataset(str(tmp_path / "mixed.jsonl"), errors=errors)
    assert [(e.id, e.task, e.answer, e.tests) for e in loaded] == [
        ("c1", "code", None, tests), ("m1", "math", "4", None), ("both", "code", "4", [{"kind": "stdio", "input": "", "output": "4"}])]
    assert errors[0].startswith(f"{tmp_path / 'mixed.jsonl'}:4:") and "neither an answer nor tests" in errors[0]
    assert errors[1].startswith(f"{tmp_path / 'mixed.jsonl'}:5:") and "needs 'answer' (math) or tests (code)" in errors[1]


def test_a_math_only_mapping_still_requires_the_answer(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "a", "q": "2+2?", "tests": [{"kind": "stdio", "input": "", "output": "4"}]}\n')
    with pytest.raises(ValueError, match="missing 'final'"):
        load_dataset(str(path), field_map="prompt=q,answer=final")
