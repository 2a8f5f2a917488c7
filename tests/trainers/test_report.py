from rl_reason.cli.main import main
from rl_reason.io import JsonlAppender


def test_report_draws_png_and_summarises(tmp_path, capsys):
    with JsonlAppender(tmp_path / "metrics.jsonl") as out:
        out.write({"step": 0, "eval/pass@1": 0.2, "eval/mean_tokens": 45.0, "eval/status/passed": 0.2})
        for step in range(1, 6):
            out.write({"step": step, "reward/mean": 0.1 * step, "reward/accuracy": 0.1 * step,
                       "response/length_mean": 30.0, "actor/entropy": 1.0, "actor/grad_norm": 0.5,
                       "verifier/passed": 0.1 * step, "verifier/compile_error": 0.1})
        out.write({"step": 5, "eval/pass@1": 0.45, "eval/mean_tokens": 31.0})
    assert main(["report", str(tmp_path)]) == 0
    png = (tmp_path / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    out = capsys.readouterr().out
    assert "eval/pass@1: 0.2000 (step 0) -> 0.4500 (step 5)" in out and "held-out eval" in out
    # token counts get their own panel: on the rates' axis they would flatten them to a line at 0
    assert "held-out response tokens" in out
    # statuses have panels of their own, and are not listed as eval results
    assert "verifier statuses (train)" in out and "verifier statuses (held-out)" in out
    assert "eval/status/passed:" not in out


def test_report_names_missing_metrics(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "metrics.jsonl not found" in capsys.readouterr().err
