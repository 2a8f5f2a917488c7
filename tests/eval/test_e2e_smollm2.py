"""End to end: `rl-reason eval` of the real SmolLM2-135M on a few MATH-500 and GSM8K problems."""

import json

import pytest

from rl_reason.cli.main import main
from rl_reason.data_pipelines.registry import default_data_dir

pytest.importorskip("rl_reason.models")
pytest.importorskip("rl_reason.rollout")
pytest.importorskip("rl_reason.verifiers")


@pytest.mark.slow
@pytest.mark.skipif(default_data_dir() is None, reason="no local data directory")
def test_eval_smollm2_on_math500_and_gsm8k(tmp_path):
    args = ["eval", "--model", "smollm2-135m", "--suite", "math500,gsm8k", "--limit", "2", "--n", "2", "--k", "1,2",
            "--temperature", "0.7", "--max-new-tokens", "32", "--batch-size", "2", "--seed", "1", "--out", str(tmp_path)]
    assert main(args) == 0
    report = json.loads((tmp_path / "summary.json").read_text())
    assert set(report["suites"]) == {"math500", "gsm8k"}
    for summary in report["suites"].values():
        assert summary["num_problems"] == 2 and summary["num_samples"] == 4
        assert sum(summary["status_counts"].values()) == 4
        assert 0.0 <= summary["metrics"]["pass@1"]["mean"] <= summary["metrics"]["pass@2"]["mean"] <= 1.0
    records = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 8
    assert all(0 < r["tokens"] <= 32 and r["finish_reason"] in ("stop", "length") for r in records)
    assert any(r["text"].strip() for r in records)
    assert (tmp_path / "plot.png").stat().st_size > 0
    # the same command again finds every sample done and reproduces the summary
    assert main(args) == 0
    assert json.loads((tmp_path / "summary.json").read_text()) == report
    assert len((tmp_path / "samples.jsonl").read_text().splitlines()) == 8
