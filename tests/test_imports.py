"""Import hygiene: the verifier library, sandbox and data pipelines must never load torch."""

import subprocess
import sys

import pytest

TORCH_FREE = ["rl_reason", "rl_reason.verifiers", "rl_reason.sandbox", "rl_reason.data_pipelines", "rl_reason.io", "rl_reason.config",
              "rl_reason.model_names"]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_does_not_import_torch(module):
    code = f"import sys, {module}; heavy = [m for m in ('torch', 'transformers', 'vllm', 'deepspeed') if m in sys.modules]; print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"{module} imported {out.stdout.strip()}"


def test_verifier_import_is_fast():
    code = "import time; t = time.perf_counter(); import rl_reason.verifiers; print(time.perf_counter() - t)"
    times = [float(subprocess.run([sys.executable, "-X", "frozen_modules=on", "-c", code], capture_output=True, text=True, check=True).stdout) for _ in range(3)]
    assert min(times) < 1.0, f"import rl_reason.verifiers took {min(times):.2f}s"
