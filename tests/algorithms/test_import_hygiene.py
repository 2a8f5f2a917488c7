import subprocess
import sys
from pathlib import Path


def test_algorithms_import_only_torch():
    # pure tensor functions: importing them must not pull in transformers or the upper layers
    code = ("import sys, rl_reason.algorithms; print([m for m in sys.modules if m.split('.')[0] in "
            "('transformers', 'trl', 'deepspeed', 'vllm') or m.startswith(('rl_reason.config', "
            "'rl_reason.models', 'rl_reason.trainers', 'rl_reason.rollout'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
