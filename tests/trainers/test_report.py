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


def test_report_tables_both_graders_and_no_answer_per_eval_step(tmp_path, capsys):
    with JsonlAppender(tmp_path / "metrics.jsonl") as out:
        out.write({"step": 0, "eval/pass@1": 0.29, "eval/strict/pass@1": 0.16, "eval/no_answer": 0.61})
        out.write({"step": 1, "reward/mean": 0.1, "signal/groups_with_variance": 0.0, "signal/samples_with_reward": 0.0})
        out.write({"step": 8, "eval/pass@1": 0.47, "eval/strict/pass@1": 0.45, "eval/no_answer": 0.01,
                   "signal/groups_with_variance": 0.5})
    assert main(["report", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("held-out eval per step"))
    table = [line.split() for line in lines[head + 1 : head + 4]]
    assert table == [["step", "pass@1", "strict/pass@1", "no_answer"], ["0", "0.290", "0.160", "0.610"],
                     ["8", "0.470", "0.450", "0.010"]]
    assert any("signal/groups_with_variance: 0.0000 (step 1) -> 0.5000 (step 8)" in line for line in lines)


def test_report_regrades_saved_evals_under_both_answer_formats(tmp_path, capsys):
    from rl_reason.data_pipelines import load_dataset

    a, b = load_dataset("tasks:arithmetic:heldout", limit=2)
    (tmp_path / "config.yaml").write_text("data:\n  eval: tasks:arithmetic:heldout\n  eval_limit: 2\n")
    with JsonlAppender(tmp_path / "metrics.jsonl") as out:
        out.write({"step": 0, "eval/pass@1": 0.5})
    with JsonlAppender(tmp_path / "eval" / "step_000000" / "samples.jsonl") as out:
        # committed and right; then right only if the last number counts, and cut at the budget
        out.write({"id": a.id, "sample": 0, "text": f"So the answer is $\\boxed{{{a.answer}}}$.", "finish_reason": "stop"})
        out.write({"id": b.id, "sample": 0, "text": f"We add them and get {b.answer}", "finish_reason": "length"})
    assert main(["report", str(tmp_path), "--regrade"]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines.index("saved held-out evals graded again under both answer formats:")
    assert [line.split() for line in lines[head + 1 : head + 3]] == [
        ["step", "full/pass@1", "strict/pass@1", "full/no_answer", "strict/no_answer", "truncated"],
        ["0", "1.000", "0.500", "0.000", "0.500", "0.500"]]


def test_report_says_when_step_0_is_a_warm_started_model(tmp_path, capsys):
    import json

    with JsonlAppender(tmp_path / "metrics.jsonl") as out:
        out.write({"step": 0, "eval/pass@1": 0.3})
        out.write({"step": 1, "reward/mean": 0.5})
    assert main(["report", str(tmp_path)]) == 0
    assert "warm start" not in capsys.readouterr().out
    folder = tmp_path / "warm_start" / "rejection_sampling"
    folder.mkdir(parents=True)
    samples = [{"id": f"p{i // 4}", "sample": i % 4, "correct": i % 3 == 0} for i in range(12)]
    (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (folder / "sft.jsonl").write_text('{"prompt": "a", "completion": "b"}\n' * 4)
    (tmp_path / "warm_start" / "task_eval.jsonl").write_text(json.dumps(
        {"stage": "before", "task/pass@1": 0.1, "task/strict/pass@1": 0.05, "task/strict/no_answer": 0.5}) + "\n")
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "warm start: fine-tuned on 4 distinct verified-correct answers out of 12 samples of 3 prompts" in out
    assert "base model before the warm start: full 10.0%, strict 5.0%, no committed answer (strict) 50.0%" in out
