"""`rl-reason verify math`: one pair, and a JSONL file with malformed rows."""

import json
import subprocess
import sys

from rl_reason.cli.main import main


def test_single_pair_readme_quickstart(capsys):
    assert main(["verify", "math", "--response", "so the answer is $\\boxed{\\frac{1}{2}}$", "--gold", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("correct")
    assert "\\frac{1}{2}" in out


def test_single_pair_json(capsys):
    assert main(["verify", "math", "--response", "I think 0.33", "--gold", "1/3", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["status"] == "wrong" and r["extracted"] == "0.33" and r["extracted_by"] == "last_number"


def test_strict_answer_format_flag(capsys):
    argv = ["verify", "math", "--response", "I think 0.33", "--gold", "1/3", "--json", "--answer-format", "strict"]
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["status"] == "no_answer" and r["correct"] is False and r["extracted"] is None


def test_module_entry_point_runs_in_a_fresh_process():
    out = subprocess.run(
        [sys.executable, "-m", "rl_reason", "verify", "math", "--response", "Final answer: $\\sqrt{8}$", "--gold", "2\\sqrt2", "--json"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    assert json.loads(out.stdout)["status"] == "correct"


def test_batch_file_with_malformed_rows(tmp_path, capsys):
    src = tmp_path / "samples.jsonl"
    rows = [
        json.dumps({"id": 1, "completion": "so $\\boxed{\\frac{\\sqrt3}{2}}$", "answer": "\\sin(\\pi/3)"}),
        json.dumps({"id": 2, "completion": "#### 71", "answer": "72"}),
        "{not json",
        json.dumps({"id": 4, "completion": "#### 5"}),
        json.dumps({"id": 5, "completion": ["list"], "answer": "5"}),
        "",
        json.dumps({"id": 7, "completion": "no idea", "answer": "3"}),
    ]
    src.write_text("\n".join(rows) + "\n")
    out = tmp_path / "graded.jsonl"
    code = main(["verify", "math", "--input", str(src), "--output", str(out), "--response-key", "completion",
                 "--gold-key", "answer", "--workers", "1", "--timeout", "20"])
    assert code == 0
    captured = capsys.readouterr()
    assert f"{src}:3: invalid JSON" in captured.err
    assert f"{src}:4: missing key(s) ['answer']" in captured.err
    assert f"{src}:5: key(s) ['completion'] are not strings" in captured.err
    assert "throughput" in captured.out and "accuracy" in captured.out

    graded = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g.get("id", g.get("line")) for g in graded] == [1, 2, 3, 4, 5, 7]
    assert [g["verify"]["status"] for g in graded] == ["correct", "wrong", "error", "error", "error", "no_answer"]
    assert graded[0]["completion"].startswith("so")  # input fields are kept


def test_usage_errors(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["verify", "math", "--response", "x"])
    with pytest.raises(SystemExit):
        main(["verify", "math", "--input", "a.jsonl"])
    assert main(["verify", "math", "--input", "/nonexistent.jsonl", "--output", "o.jsonl"]) == 2
