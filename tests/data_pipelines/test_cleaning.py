import json

import pytest

from rl_reason.data_pipelines import (
    Example,
    build_dpo_pairs,
    build_unpaired_rows,
    decontaminate,
    dedup,
    difficulty_filter,
    normalize_text,
    pass_rates_from_samples,
)

LEAKED = (
    "Let $f(x) = 3x^2 - 5$. The function is evaluated at many points on the interval from zero to ten, "
    "and we want the largest value it takes there."
)


def ex(i, prompt, answer="1"):
    return Example(id=str(i), prompt=prompt, answer=answer, source="t")


def test_dedup_exact_then_normalized():
    items = [ex(0, "What is 1+1?"), ex(1, "What is 1+1?"), ex(2, "what  is 1 + 1 ?"), ex(3, "What is 2+2?")]
    kept, report = dedup(items)
    assert [e.id for e in kept] == ["0", "3"]
    assert report == [
        {"id": "1", "reason": "exact_duplicate", "duplicate_of": "0"},
        {"id": "2", "reason": "normalized_duplicate", "duplicate_of": "0"},
    ]
    kept, _ = dedup(items, normalized=False)
    assert [e.id for e in kept] == ["0", "2", "3"]


def test_decontamination_drops_a_constructed_leak_and_names_the_eval_item():
    eval_sets = {"math500": [ex("test/x.json", LEAKED)], "aime24": [ex("aime-1", "Find 7.")]}
    train = [
        ex("clean", "A train has 12 cars and each car has 4 wheels; how many wheels are there in total on the train?"),
        # the leak: the eval problem's text paraphrased at the ends but sharing a 13-word span
        ex("leak", "Consider this. " + LEAKED.upper().replace("$", " ") + " Explain."),
        ex("short", "find 7"),  # equal (normalised) to a short eval problem
        ex("near", "Let f(x) = 3x^2 - 5. The function is evaluated at some points."),
    ]
    kept, report = decontaminate(train, eval_sets, n=13)
    assert [e.id for e in kept] == ["clean", "near"]
    by_id = {r["id"]: r for r in report}
    assert by_id["leak"]["eval_set"] == "math500" and by_id["leak"]["eval_id"] == "test/x.json"
    assert len(by_id["leak"]["ngram"].split()) == 13 and by_id["leak"]["ngram"] in normalize_text(LEAKED)
    assert by_id["short"]["eval_id"] == "aime-1"


def test_difficulty_filter_keeps_only_sometimes_solved():
    items = [ex(i, f"p{i}") for i in range(4)]
    rates = {"0": 0.0, "1": 0.5, "2": 1.0}
    kept, report = difficulty_filter(items, rates)
    assert [e.id for e in kept] == ["1"]
    assert [r["reason"] for r in report] == ["too_hard", "too_easy", "unmeasured"]
    kept, _ = difficulty_filter(items, rates, keep_unmeasured=True)
    assert [e.id for e in kept] == ["1", "3"]
    kept, _ = difficulty_filter(items, rates, low=0.0, high=0.4)
    assert kept == []
    with pytest.raises(ValueError):
        difficulty_filter(items, rates, low=0.6, high=0.5)


def test_pass_rates_from_samples_file(tmp_path):
    path = tmp_path / "samples.jsonl"
    rows = [{"id": "a", "score": 1.0}, {"id": "a", "score": 0.0}, {"id": "b", "correct": True}, {"id": "a", "correct": False}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert pass_rates_from_samples(path) == {"a": pytest.approx(1 / 3), "b": 1.0}
    path.write_text(json.dumps({"id": "a"}) + "\n")
    with pytest.raises(ValueError, match="samples.jsonl:1"):
        pass_rates_from_samples(path)


def test_dpo_pairs_are_deterministic_and_prompt_matched():
    samples = [
        {"id": "q1", "sample": 3, "text": "right B", "correct": True},
        {"id": "q1", "sample": 0, "text": "wrong A", "correct": False},
        {"id": "q1", "sample": 1, "text": "right A", "correct": True},
        {"id": "q1", "sample": 2, "text": "wrong A", "correct": False},  # duplicate text: counted once
        {"id": "q1", "sample": 4, "text": "wrong B", "correct": False},
        {"id": "q2", "sample": 0, "text": "only right", "correct": True},
        {"id": "q0", "sample": 0, "text": "r", "correct": True},
        {"id": "q0", "sample": 1, "text": "w", "correct": False},
    ]
    prompts = {"q0": "P0", "q1": "P1", "q2": "P2"}
    pairs = build_dpo_pairs(samples, prompts)
    assert pairs == [
        {"id": "q0", "prompt": "P0", "chosen": "r", "rejected": "w"},
        {"id": "q1", "prompt": "P1", "chosen": "right A", "rejected": "wrong A"},
        {"id": "q1", "prompt": "P1", "chosen": "right B", "rejected": "wrong B"},
    ]
    assert build_dpo_pairs(list(reversed(samples)), prompts) == pairs
    assert len(build_dpo_pairs(samples, prompts, max_pairs_per_prompt=1)) == 2
    with pytest.raises(KeyError):
        build_dpo_pairs(samples, {"q1": "P1"})


def test_build_unpaired_rows_labels_every_distinct_sample_by_correctness():
    samples = [
        {"id": "q1", "sample": 2, "text": "wrong A", "correct": False},
        {"id": "q1", "sample": 0, "text": "wrong A", "correct": False},  # duplicate text: one row
        {"id": "q1", "sample": 1, "text": "right", "correct": True},
        {"id": "q2", "sample": 0, "text": "only wrong", "correct": False},  # no pair, still a row
        {"id": "q0", "sample": 0, "text": "r", "correct": True},
    ]
    rows = build_unpaired_rows(samples, {"q0": "P0", "q1": "P1", "q2": "P2"})
    assert rows == [
        {"id": "q0", "prompt": "P0", "completion": "r", "label": True},
        {"id": "q1", "prompt": "P1", "completion": "right", "label": True},
        {"id": "q1", "prompt": "P1", "completion": "wrong A", "label": False},
        {"id": "q2", "prompt": "P2", "completion": "only wrong", "label": False},
    ]
    with pytest.raises(KeyError, match="q2"):
        build_unpaired_rows(samples, {"q0": "P0", "q1": "P1"})
