"""Every command treats user mistakes early and clearly: one ``error:`` line naming the file, line,
key or flag, exit status 2, no traceback, and nothing half-written.

All tests go through the real entry point (``rl_reason.cli.main.main`` or ``python3 -m
rl_reason``). The first test runs every sub-command against the same four mistakes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rl_reason.cli.main import build_parser, main

REPO = Path(__file__).resolve().parents[2]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``rl-reason argv`` run in this process."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse errors exit from parse_args
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture
def ws(tmp_path):
    """A workspace: an empty file, a plain file to misuse as a folder, fake model folders, a recipe."""
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "empty.yaml").write_text("\n# nothing\n")
    (tmp_path / "empty.py").write_text("   \n")
    (tmp_path / "afile").write_text("x\n")
    (tmp_path / "rows.jsonl").write_text(json.dumps({"response": "The answer is 2", "gold": "2"}) + "\n")
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (tmp_path / "rm").mkdir()
    (tmp_path / "rm" / "config.json").write_text(json.dumps({"architectures": ["LlamaForSequenceClassification"]}))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text("")
    (tmp_path / "recipe.yaml").write_text(
        f"trainer: grpo\noutput_dir: {tmp_path / 'trainrun'}\nmodel: {{name: 'tiny:llama'}}\n"
        "data: {train: 'arithmetic:train', template: base_boxed, train_limit: 32}\n"
        "rollout: {n: 4, max_new_tokens: 8}\ntrain: {prompts_per_step: 2, micro_batch_size: 8, steps: 1}\n"
        "log: {tensorboard: false, progress: false, samples_every: 0}\ncheckpoint: {every: 1}\n")
    return tmp_path


def _reads_and_writes(base: list[str], inp: str, out: str, number: list[str], good: str = "{ws}/rows.jsonl",
                      out_name: str = "out") -> dict[str, tuple[list[str], str]]:
    """The four mistakes of a command that reads flag ``inp`` and writes flag ``out``; ``good``
    is a valid input, ``number`` a zero or negative numeric flag and its value."""
    return {
        "missing": ([*base, inp, "{ws}/nope.jsonl", out, f"{{ws}}/{out_name}"], inp),
        "empty": ([*base, inp, "{ws}/empty.jsonl", out, f"{{ws}}/{out_name}"], "is empty"),
        "unwritable": ([*base, inp, good, out, f"{{ws}}/afile/{out_name}"], out),
        "number": ([*base, inp, good, out, f"{{ws}}/{out_name}", *number], number[0]),
    }


# sub-command -> {mistake: (argv with {ws} placeholders, text the error line must contain)}.
# "missing"/"empty": the main input; "unwritable": an output under a plain file; "number": a
# zero or negative numeric flag. Sub-commands without such an input/output/flag say so (None).
MISTAKES: dict[str, dict[str, tuple[list[str], str] | None]] = {
    "train": {
        "missing": (["train", "--config", "{ws}/nope.yaml", "--validate"], "nope.yaml"),
        "empty": (["train", "--config", "{ws}/empty.yaml", "--validate"], "holds no settings"),
        "unwritable": (["train", "--config", "{ws}/recipe.yaml", "output_dir={ws}/afile/run"], "output_dir"),
        "number": (["train", "--config", "{ws}/recipe.yaml", "train.steps=0"], "train.steps"),
    },
    "eval": _reads_and_writes(["eval", "--model", "{ws}/policy"], "--suite", "--out", ["--n", "0"], good="math500"),
    "grade": _reads_and_writes(["grade", "--suite", "math500"], "--samples", "--out", ["--k", "0"]),
    "verify math": _reads_and_writes(["verify", "math"], "--input", "--output", ["--timeout", "0"], out_name="o.jsonl"),
    "verify code": _reads_and_writes(["verify", "code"], "--input", "--output", ["--workers", "-1"], out_name="o.jsonl"),
    "data list": {
        "missing": (["data", "list", "--data-dir", "{ws}/nope"], "--data-dir"),
        "empty": None, "unwritable": None, "number": None,  # reads a folder, writes nothing, no numbers
    },
    "data prepare": _reads_and_writes(["data", "prepare"], "--dataset", "--out", ["--ngram", "0"]),
    "pairs": _reads_and_writes(["pairs", "--model", "{ws}/policy"], "--data", "--out", ["--n", "0"], good="gsm8k"),
    "prm-label": _reads_and_writes(["prm-label", "--model", "{ws}/policy"], "--data", "--out", ["--k", "0"], good="gsm8k"),
    "score": _reads_and_writes(["score", "--model", "{ws}/rm"], "--data", "--out", ["--batch-size", "0"], out_name="o.jsonl"),
    "sandbox run": {
        "missing": (["sandbox", "run", "{ws}/nope.py"], "nope.py"),
        "empty": (["sandbox", "run", "{ws}/empty.py"], "is empty"),
        "unwritable": None,  # prints, writes no file
        "number": (["sandbox", "run", "{ws}/empty.py", "--wall-s", "0"], "--wall-s"),
    },
    "report": {
        "missing": (["report", "{ws}/nope"], "nope"),
        "empty": (["report", "{ws}/run"], "no known metrics"),
        "unwritable": (["report", "{ws}/run", "--out", "{ws}/afile/curves.png"], "--out"),
        "number": None,  # no numeric flag
    },
    "export": {
        "missing": (["export", "{ws}/nope", "--out", "{ws}/out"], "nope"),
        "empty": (["export", "{ws}/run", "--out", "{ws}/out"], "no config.yaml"),
        "unwritable": (["export", "{ws}/run", "--out", "{ws}/afile/out"], "--out"),
        "number": None,  # no numeric flag
    },
    # No inputs, outputs or numeric flags: a wrong flag is their only mistake.
    "sandbox doctor": {"missing": (["sandbox", "doctor", "--bogus"], "--bogus"), "empty": None, "unwritable": None, "number": None},
    "sandbox build-image": {"missing": (["sandbox", "build-image", "--bogus"], "--bogus"), "empty": None,
                            "unwritable": None, "number": None},
}
CASES = [(cmd, kind) for cmd, table in MISTAKES.items() for kind, case in table.items() if case is not None]


def _leaf_commands() -> set[str]:
    """Every runnable sub-command of the parser, e.g. 'verify math', 'sandbox run'."""
    import argparse

    def walk(parser, prefix):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return {prefix}
        return {c for name, p in subs[0].choices.items() for c in walk(p, f"{prefix} {name}".strip())}

    return walk(build_parser(), "")


def test_the_table_covers_every_subcommand():
    assert set(MISTAKES) == _leaf_commands()


@pytest.mark.parametrize(("command", "mistake"), CASES, ids=[f"{c}-{k}" for c, k in CASES])
def test_every_subcommand_reports_a_mistake_in_one_line(ws, capsys, command, mistake):
    argv, needle = MISTAKES[command][mistake]
    before = sorted(p.name for p in ws.iterdir())
    code, _, err = run([a.replace("{ws}", str(ws)) for a in argv], capsys)
    assert_one_line_error(code, err, needle)
    assert sorted(p.name for p in ws.iterdir()) == before, "a failed command left files behind"


# ---------------------------------------------------------------- 1. a changed config


def _fake_run(ws, capsys) -> Path:
    """The run folder a first `train` would leave: its config.yaml and a checkpoint."""
    import yaml

    code, out, _ = run(["train", "--config", str(ws / "recipe.yaml"), "--validate"], capsys)
    assert code == 0
    run_dir = ws / "trainrun"
    (run_dir / "checkpoints" / "step_000001").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(yaml.safe_load(out), sort_keys=False))
    return run_dir


def test_a_changed_config_does_not_silently_continue_a_run(ws, capsys):
    run_dir = _fake_run(ws, capsys)
    saved = (run_dir / "config.yaml").read_text()
    recipe = ["train", "--config", str(ws / "recipe.yaml")]
    code, _, err = run([*recipe, "train.lr=1e-3", "rollout.temperature=1.5"], capsys)
    line = assert_one_line_error(code, err, "train.lr", "rollout.temperature", "resume=never", "--allow-config-change")
    assert "train.steps" not in line and (run_dir / "config.yaml").read_text() == saved
    # --validate runs the same check, so a dry run predicts the refusal
    assert run([*recipe, "--validate", "train.lr=1e-3"], capsys)[0] == 2
    # explicitly allowed keys (or whole sections) pass, and each change is noted
    code, _, err = run([*recipe, "--validate", "train.steps=3", "--allow-config-change", "train.steps"], capsys)
    assert code == 0 and "train.steps changed: 1 -> 3" in err
    assert run([*recipe, "--validate", "train.lr=1e-3", "--allow-config-change", "train"], capsys)[0] == 0
    assert run([*recipe, "--validate", "train.lr=1e-3", "--allow-config-change", "train.steps"], capsys)[0] == 2
    # starting over is always allowed
    assert run([*recipe, "--validate", "train.lr=1e-3", "resume=never"], capsys)[0] == 0
    assert run([*recipe, "--validate", "train.lr=1e-3", f"output_dir={ws / 'other'}"], capsys)[0] == 0


@pytest.mark.slow
def test_a_real_run_resumes_announced_and_refuses_other_settings(ws):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "rl_reason", "train", "--config", str(ws / "recipe.yaml"), *args],
                              capture_output=True, text=True, env=env, timeout=600, check=False)

    first = cli()
    assert first.returncode == 0, first.stderr
    assert "FutureWarning" not in first.stderr and "Setting accelerator to CPU" not in first.stderr
    assert (ws / "trainrun" / "config.yaml").stat().st_mode & 0o777 == 0o644
    refused = cli("train.lr=1e-3", "train.steps=2")
    assert refused.returncode == 2 and "train.lr: 1e-06 -> 0.001" in refused.stderr
    assert "Traceback" not in refused.stderr
    resumed = cli("train.steps=2", "--allow-config-change", "train.steps")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from step 1" in resumed.stderr


# ---------------------------------------------------------------- 2. score without a reward head


def test_score_refuses_a_model_without_a_trained_scalar_head(ws, capsys):
    (ws / "pairs.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    code, out, err = run(["score", "--model", str(ws / "policy"), "--data", str(ws / "pairs.jsonl")], capsys)
    assert_one_line_error(code, err, "--model", "no trained scalar (reward) head", "recipes/rm.yaml")
    assert out == ""
    code, _, err = run(["score", "--model", "smollm2-135m", "--data", str(ws / "pairs.jsonl")], capsys)
    assert_one_line_error(code, err, "--model smollm2-135m", "reward model folder")


@pytest.mark.slow
def test_score_runs_a_saved_reward_model(ws, capsys):
    from rl_reason.models import tiny_model
    from rl_reason.models.heads import scalar_model_from_lm

    lm, tokenizer = tiny_model()
    rm = scalar_model_from_lm(lm)
    rm.config.pad_token_id = tokenizer.pad_token_id
    rm.save_pretrained(ws / "tiny_rm")
    tokenizer.save_pretrained(ws / "tiny_rm")
    (ws / "pairs.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    capsys.readouterr()
    code, out, err = run(["score", "--model", str(ws / "tiny_rm"), "--data", str(ws / "pairs.jsonl"), "--quiet"], capsys)
    assert code == 0, err
    assert "chosen_score" in json.loads(out) and "pairwise accuracy" in err


# ---------------------------------------------------------------- 3. verify code rows


GOOD_CODE = {"id": "ok", "response": "def f(x):\n    return 2 * x", "tests": [{"kind": "call", "fn_name": "f", "inputs": [[2]], "outputs": [4]}]}
BAD_CODE = [
    ({"id": "b1", "response": 123, "tests": GOOD_CODE["tests"]}, "key 'response'"),
    ({"id": "b2", "response": "x", "tests": [{"kind": "call", "fn_name": "f", "inputs": [2], "outputs": [4]}]}, "inputs[0]"),
    ({"id": "b3", "response": "x", "tests": []}, "non-empty list"),
    ({"id": "b4", "response": "x", "tests": [{"kind": "stdio", "input": "1"}]}, "missing key(s) output"),
]


def test_verify_code_checks_every_row_before_running_and_never_appends(ws, capsys):
    src = ws / "code.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in [GOOD_CODE, *(row for row, _ in BAD_CODE)]))
    out = ws / "graded.jsonl"
    code, _, err = run(["verify", "code", "--input", str(src), "--output", str(out), "--quiet"], capsys)
    assert code == 2 and "Traceback" not in err and not out.exists()
    for line_no, (_, needle) in enumerate(BAD_CODE, start=2):
        assert any(f"code.jsonl:{line_no}: " in line and needle in line for line in err.splitlines()), (line_no, err)
    assert err.strip().splitlines()[-1].startswith("error: 4 bad row(s)")

    argv = ["verify", "code", "--input", str(src), "--output", str(out), "--quiet", "--skip-bad-rows", "--allow-unisolated"]
    for _ in range(2):  # a rerun replaces the output: one row per input line, never duplicated
        code, stdout, _ = run(argv, capsys)
        assert code == 0
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [(r["id"], r["status"]) for r in rows] == [("ok", "passed")] + [(r["id"], "bad_row") for r, _ in BAD_CODE]
        assert "all tests passed: 1/1" in stdout

    before = src.read_bytes()
    code, _, err = run(["verify", "code", "--input", str(src), "--output", str(src), "--skip-bad-rows"], capsys)
    assert_one_line_error(code, err, "also the input file")
    assert src.read_bytes() == before


def test_verify_code_help_documents_the_test_format(capsys):
    code, out, _ = run(["verify", "code", "--help"], capsys)
    assert code == 0
    for kind, keys in {"stdio": ["input", "output"], "call": ["fn_name", "inputs", "outputs"],
                       "assert": ["code", "setup", "entry_point"], "pytest": ["code"]}.items():
        line = next(line for line in out.splitlines() if line.strip().startswith(kind))
        assert all(f'"{k}"' in line for k in keys), line
    assert "tolerance" in out


# ---------------------------------------------------------------- 4. meaningless limits


LIMITS = [
    (["data", "prepare", "--dataset", "gsm8k", "--out", "{ws}/o", "--ngram", "0"], "--ngram"),
    (["data", "prepare", "--dataset", "gsm8k", "--out", "{ws}/o", "--limit", "-1"], "--limit"),
    (["data", "prepare", "--dataset", "gsm8k", "--out", "{ws}/o", "--limit", "0"], "--limit"),
    (["data", "prepare", "--dataset", "gsm8k", "--out", "{ws}/o", "--min-pass", "1.5"], "--min-pass"),
    (["train", "--config", "{ws}/recipe.yaml", "--validate", "train.lr=-1"], "train.lr"),
    (["train", "--config", "{ws}/recipe.yaml", "--validate", "data.eval_limit=-1"], "data.eval_limit"),
    (["verify", "math", "--response", "1", "--gold", "1", "--timeout", "0"], "--timeout"),
    (["verify", "math", "--response", "1", "--gold", "1", "--rel-tol", "-1"], "--rel-tol"),
    (["sandbox", "run", "{ws}/afile", "--wall-s", "0"], "--wall-s"),
    (["sandbox", "run", "{ws}/afile", "--memory-mb", "-5"], "--memory-mb"),
    (["eval", "--model", "{ws}/policy", "--suite", "math500", "--out", "{ws}/o", "--n", "0"], "--n"),
    (["eval", "--model", "{ws}/policy", "--suite", "math500", "--out", "{ws}/o", "--batch-size", "0"], "--batch-size"),
    (["eval", "--model", "{ws}/policy", "--suite", "math500", "--out", "{ws}/o", "--temperature", "-0.1"], "--temperature"),
]


@pytest.mark.parametrize(("argv", "flag"), LIMITS, ids=[f"{a[0]}{f}" for a, f in LIMITS])
def test_limits_that_mean_nothing_are_refused_naming_the_flag(ws, capsys, argv, flag):
    code, _, err = run([a.replace("{ws}", str(ws)) for a in argv], capsys)
    line = assert_one_line_error(code, err, flag)
    assert "Limits." not in line and not (ws / "o").exists()


# ---------------------------------------------------------------- 5. model-name typos


def test_a_model_typo_fails_fast_offline_with_the_aliases_and_creates_nothing(ws):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "rl_reason", "eval", "--model", "smollm2-13m", "--suite", "math500",
                          "--out", str(ws / "out")], capture_output=True, text=True, env=env, timeout=60, check=False)
    elapsed = time.perf_counter() - start
    assert_one_line_error(res.returncode, res.stderr, "smollm2-13m", "did you mean 'smollm2-135m'", "known aliases")
    assert not (ws / "out").exists()
    assert elapsed < 5, f"took {elapsed:.1f}s (interpreter start included; the check itself is offline)"


@pytest.mark.parametrize(("model", "needle"), [
    ("./no/such/model", "no such folder"),
    ("runs/x/final", "no such folder"),
    ("someorg/not-downloaded-model", "HF_HUB_OFFLINE"),
    ("{ws}/afile", "neither a model folder nor a .gguf file"),
    ("{ws}/run", "no config.json"),
    ("{ws}/missing.gguf", "no such .gguf file"),
])
def test_model_names_and_paths_are_resolved_before_anything_is_created(ws, capsys, monkeypatch, model, needle):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    code, _, err = run(["eval", "--model", model.replace("{ws}", str(ws)), "--suite", "math500", "--out", str(ws / "o")],
                       capsys)
    assert time.perf_counter() - start < 1.0
    assert_one_line_error(code, err, "--model", needle)
    assert not (ws / "o").exists()


@pytest.mark.slow
def test_a_model_folder_that_fails_to_load_leaves_no_run_folder(ws, capsys):
    code, _, err = run(["eval", "--model", str(ws / "policy"), "--suite", "math500", "--limit", "1", "--n", "1",
                        "--out", str(ws / "o")], capsys)
    assert_one_line_error(code, err, f"--model {ws / 'policy'}: cannot load it")
    assert not (ws / "o").exists()  # so the corrected command is not refused as "other settings"


# ---------------------------------------------------------------- 6. routine mistakes, real bugs


def test_routine_mistakes_print_one_line_not_a_traceback(ws, capsys):
    code, _, err = run(["grade", "--samples", str(ws / "rows.jsonl"), "--suite", "gsm8kk", "--out", str(ws / "o")], capsys)
    assert_one_line_error(code, err, "--suite", "unknown dataset 'gsm8kk'; did you mean 'gsm8k'")
    code, _, err = run(["pairs", "--model", str(ws / "policy"), "--data", "gsm8kk", "--out", str(ws / "o")], capsys)
    assert_one_line_error(code, err, "--data", "did you mean 'gsm8k'")
    code, _, err = run(["data", "prepare", "--dataset", str(ws / "rows.jsonl"), "--out", str(ws / "afile")], capsys)
    assert_one_line_error(code, err, "--out", "is a file, not a folder")
    (ws / "noid.jsonl").write_text('{"question": "x"}\n')
    code, _, err = run(["pairs", "--model", str(ws / "policy"), "--data", str(ws / "noid.jsonl"), "--out", str(ws / "o")],
                       capsys)
    assert_one_line_error(code, err, "noid.jsonl:1", "missing 'id'")
    assert not (ws / "o").exists()


def test_outputs_never_overwrite_an_input(ws, capsys):
    folder = ws / "prep"
    folder.mkdir()
    row = json.dumps({"id": "1", "prompt": "What is 1+1?", "answer": "2"}) + "\n"
    for name, command in [("train.jsonl", ["data", "prepare", "--dataset"]),
                          ("pairs.jsonl", ["pairs", "--model", str(ws / "policy"), "--data"])]:
        data = folder / name
        data.write_text(row)
        code, _, err = run([*command, str(data), "--out", str(folder)], capsys)
        assert_one_line_error(code, err, f"{name} is also the input file")
        assert data.read_text() == row


def test_a_real_bug_shows_its_traceback_and_asks_for_a_report(capsys, monkeypatch):
    import rl_reason.cli.verify as verify_cli

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(verify_cli, "_run_single", broken)
    code, _, err = run(["verify", "math", "--response", "1", "--gold", "1"], capsys)
    assert code == 1 and "Traceback" in err and "RuntimeError: boom" in err and "please report it" in err


# ---------------------------------------------------------------- 7. late validation


def test_train_validate_checks_data_model_and_output_dir(ws, capsys):
    recipe = ["train", "--config", str(ws / "recipe.yaml"), "--validate"]
    (ws / "noanswer.jsonl").write_text(json.dumps({"id": "1", "prompt": "What is 1+1?"}) + "\n")
    for override, needle in [(f"data.train={ws}/nope.jsonl", "data.train"), ("model.name=smollm2-13m", "model.name"),
                             (f"data.train={ws}/noanswer.jsonl", "noanswer.jsonl:1"),
                             (f"output_dir={ws}/afile", "output_dir"), ("data.eval=math5000", "data.eval")]:
        code, out, err = run([*recipe, override], capsys)
        assert_one_line_error(code, err, needle)
        assert out == ""
    code, _, err = run(["train", "--config", str(ws / "empty.yaml"), "--validate"], capsys)
    assert_one_line_error(code, err, "empty.yaml", "holds no settings")
    assert not (ws / "trainrun").exists()


def test_score_checks_its_output_before_loading_anything(ws):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = ("import sys; from rl_reason.cli.main import main; rc = main(sys.argv[1:]); "
            "print('torch' in sys.modules); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, "score", "--model", str(ws / "rm"), "--data", str(ws / "rows.jsonl"),
                          "--out", str(ws / "afile" / "x.jsonl")], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert_one_line_error(res.returncode, res.stderr, "--out", "afile")
    assert res.stdout.strip() == "False", "torch was imported (a model loaded) before the output was checked"


# ---------------------------------------------------------------- 8. feedback on long work


def test_verify_math_file_shows_progress_and_keeps_finished_rows_on_ctrl_c(ws, capsys, monkeypatch):
    from rl_reason.verifiers import MathVerifier

    src = ws / "many.jsonl"
    src.write_text("".join(json.dumps({"response": f"The answer is {i}", "gold": str(i)}) + "\n" for i in range(10)))
    out = ws / "graded.jsonl"
    code, _, err = run(["verify", "math", "--input", str(src), "--output", str(out), "--workers", "1"], capsys)
    assert code == 0 and "verifying" in err and "10/10" in err  # the bar is drawn even without a terminal

    def interrupted(self, responses, golds, on_result=None):
        for i in range(3):
            on_result(i, self.verify(responses[i], golds[i]))
        raise KeyboardInterrupt

    monkeypatch.setattr(MathVerifier, "verify_batch", interrupted)
    code, _, err = run(["verify", "math", "--input", str(src), "--output", str(out), "--workers", "1"], capsys)
    assert code == 130 and "interrupted" in err
    assert [json.loads(line)["gold"] for line in out.read_text().splitlines()] == ["0", "1", "2"]


@pytest.mark.slow
def test_ctrl_c_stops_verify_math_soon_and_keeps_the_finished_rows(ws):
    import signal

    src, out = ws / "slow.jsonl", ws / "graded.jsonl"  # rows that need the symbolic checker, each different
    src.write_text("".join(json.dumps({"response": f"so \\boxed{{\\sin^2({i}x) + \\cos^2({i}x) + {i}y}}", "gold": f"1 + {i}y"})
                           + "\n" for i in range(600)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # SIGINT as a terminal delivers it: a disposition the test runner's process may have set
    # (an ignored signal stays ignored across exec) must not decide the outcome.
    proc = subprocess.Popen([sys.executable, "-m", "rl_reason", "verify", "math", "--input", str(src), "--output", str(out),
                             "--workers", "1", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(4)
    start = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130 and "interrupted: wrote the" in err, err
    assert time.perf_counter() - start < 30  # one batch in flight is finished, not the whole file
    assert len(out.read_text().splitlines()) < 600


def test_verify_math_fails_when_no_row_is_usable(ws, capsys):
    src = ws / "bad.jsonl"
    src.write_text('{"answer": 1}\nnot json\n')
    code, _, err = run(["verify", "math", "--input", str(src), "--output", str(ws / "o.jsonl")], capsys)
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: --input") and not (ws / "o.jsonl").exists()


def test_known_noise_is_silenced(capsys):
    import logging
    import warnings

    from rl_reason.cli.main import silence_known_noise

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        silence_known_noise()  # main() installs the filters after any simplefilter of the caller
        warnings.warn("`past_key_values` is deprecated and will be removed", FutureWarning, stacklevel=1)
    assert caught == []
    logger = logging.getLogger("DeepSpeed")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        logger.warning("Setting accelerator to CPU. If you have GPU or other accelerator, we were unable to detect it.")
        logger.warning("something else")
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == ["something else"]


def test_report_warns_about_a_bad_line_once(ws, capsys):
    (ws / "run" / "metrics.jsonl").write_text('{"step": 1, "reward/mean": 0.5}\nnot json\n{"step": 2, "reward/mean": 0.7}\n')
    code, _, err = run(["report", str(ws / "run")], capsys)
    assert code == 0 and err.count("metrics.jsonl:2") == 1


# ---------------------------------------------------------------- 9. docs and help


@pytest.mark.parametrize("command", [["data", "list"], ["sandbox", "doctor"], ["sandbox", "build-image"], ["sandbox", "run"]])
def test_every_subcommand_has_a_description(capsys, command):
    code, out, _ = run([*command, "--help"], capsys)
    assert code == 0
    body = out.split("\n\n")
    assert len(body) > 2 and not body[1].startswith(("options:", "positional")), out


def test_docs_cover_every_subcommand_with_an_example():
    doc = (REPO / "docs" / "cli.md").read_text()
    for command in sorted(_leaf_commands()):
        assert f"## rl-reason {command}" in doc, f"docs/cli.md has no section for {command}"
        section = doc.split(f"## rl-reason {command}", 1)[1].split("\n## ", 1)[0]
        assert f"rl-reason {command}" in section.split("```", 1)[1], f"no worked example for {command}"
    for kind in ("stdio", "call", "assert", "pytest"):
        assert f'"kind": "{kind}"' in doc


def test_data_list_refuses_a_missing_data_dir(capsys, tmp_path):
    code, out, err = run(["data", "list", "--data-dir", str(tmp_path / "nope")], capsys)
    assert_one_line_error(code, err, "--data-dir")
    assert "hub" not in out


# ---------------------------------------------------------------- 10. small correctness


def test_verify_math_accepts_numeric_golds(ws, capsys):
    src = ws / "num.jsonl"
    src.write_text(json.dumps({"response": "so \\boxed{2}", "gold": 2}) + "\n" + json.dumps({"response": "The answer is 0.5", "gold": 0.5}) + "\n")
    code, _, _ = run(["verify", "math", "--input", str(src), "--output", str(ws / "o.jsonl")], capsys)
    rows = [json.loads(line)["verify"] for line in (ws / "o.jsonl").read_text().splitlines()]
    assert code == 0 and [r["status"] for r in rows] == ["correct", "correct"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_outputs_get_the_ordinary_file_mode(ws, capsys, umask, mode):
    old = os.umask(umask)
    try:
        code, _, _ = run(["verify", "math", "--input", str(ws / "rows.jsonl"), "--output", str(ws / "o.jsonl")], capsys)
    finally:
        os.umask(old)
    assert code == 0 and (ws / "o.jsonl").stat().st_mode & 0o777 == mode
