import subprocess
import sys


def test_eval_and_grade_cli_do_not_import_torch():
    code = (
        "import sys, rl_reason.eval, rl_reason.cli.eval, rl_reason.cli.data; "
        "print([m for m in ('torch', 'transformers', 'vllm') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
