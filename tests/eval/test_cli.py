"""`rl-reason grade` on a small samples file, and `rl-reason eval` argument checks."""

import json

import pytest

from rl_reason.cli.main import main
from rl_reason.data_pipelines import load_dataset
from rl_reason.data_pipelines.registry import default_data_dir

pytest.importorskip("rl_reason.verifiers")
needs_data = pytest.mark.skipif(default_data_dir() is None, reason="no local data directory")


@needs_data
def test_grade_cli_on_a_small_samples_file(tmp_path):
    problems = load_dataset("math500", limit=3)
    rows = []
    for ex in problems:  # per problem: right, wrong, no answer
        rows += [{"id": ex.id, "text": f"So the answer is $\\boxed{{{ex.answer}}}$."},
                 {"id": ex.id, "text": "So the answer is $\\boxed{123456789}$."},
                 {"id": ex.id, "text": "I give up."}]
    samples = tmp_path / "gen.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "graded"
    assert main(["grade", "--samples", str(samples), "--suite", "math500", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())["suites"]["math500"]
    assert summary["num_problems"] == 3 and summary["ks"] == [1, 2]
    assert summary["metrics"]["avg@n"]["mean"] == pytest.approx(1 / 3)
    assert summary["metrics"]["pass@2"]["mean"] == pytest.approx(1 - 1 / 3)  # 1 - C(2,2)/C(3,2)
    assert summary["status_counts"] == {"correct": 3, "no_answer": 3, "wrong": 3}
    graded = [json.loads(line) for line in (out / "graded_samples.jsonl").read_text().splitlines()]
    assert [g["sample"] for g in graded[:3]] == [0, 1, 2]
    assert [g["correct"] for g in graded[:3]] == [True, False, False]
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_data
def test_grade_cli_rejects_unknown_ids_with_line(tmp_path, capsys):
    samples = tmp_path / "gen.jsonl"
    samples.write_text(json.dumps({"id": "test/precalculus/807.json", "text": "x"}) + "\n" + json.dumps({"id": "nope", "text": "x"}) + "\n")
    assert main(["grade", "--samples", str(samples), "--suite", "math500"]) == 2
    assert "gen.jsonl:2: id 'nope'" in capsys.readouterr().err


def test_eval_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = capsys.readouterr().out
    for flag in ("--model", "--suite", "--n", "--k", "--temperature", "--max-new-tokens", "--engine", "--out", "--limit", "--template", "--seed"):
        assert flag in text
